"""Every field of an algorithm's config is a flag of `ilrl train <algorithm>`, with its doc."""

import dataclasses
import functools

from hypothesis import given, strategies as st
import pytest

from ilrl_ros.cli import build_parser
from ilrl_ros.cli.config_flags import config_overrides, field_docs
from ilrl_ros.cli.train import _config_class
from ilrl_ros.core.training import ALGORITHMS

# Fields a verb names with a flag of its own (--steps, --seed, --eval-episodes).
OWN_FLAGS = {'total_steps', 'seed', 'eval_episodes'}
DATASET_ALGORITHMS = ('bc', 'rwr', 'awr')


def _train_parser(algorithm: str):
    sub = build_parser()._subparsers._group_actions[0].choices['train']
    return sub._subparsers._group_actions[0].choices[algorithm]


def _leaf_fields(config_class, prefix=''):
    for field in dataclasses.fields(config_class):
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING \
            else field.default
        if dataclasses.is_dataclass(default):
            nested = '' if config_class.__name__ in ('RWRConfig', 'AWRConfig') else \
                f'{prefix}{field.name}_'
            yield from _leaf_fields(type(default), nested)
        else:
            yield f'{prefix}{field.name}'


@pytest.mark.parametrize('algorithm', [*DATASET_ALGORITHMS, *ALGORITHMS])
def test_every_config_field_is_a_flag_with_its_docstring_as_help(algorithm):
    config_class = _config_class(algorithm)
    parser = _train_parser(algorithm)
    flags = {option: action for action in parser._actions for option in action.option_strings}
    docs = field_docs(config_class)
    for name in _leaf_fields(config_class):
        if name in OWN_FLAGS:
            continue
        flag = '--' + name.replace('_', '-')
        assert flag in flags, f'ilrl train {algorithm} has no {flag}'
        assert flags[flag].help and 'default' in flags[flag].help
    assert docs, f'{config_class.__name__} documents no field'


def test_given_flags_become_overrides_and_others_keep_the_preset():
    args = build_parser().parse_args(['train', 'sac', '--task', 'pendulum', '--lr', '0.001',
                                      '--hidden', '64,64', '--ent-coef', 'none'])
    assert config_overrides(args, args.config_flags) == {
        'lr': 0.001, 'hidden': (64, 64), 'ent_coef': None}
    args = build_parser().parse_args(['train', 'mbrl', '--task', 'pendulum',
                                      '--planner-horizon', '7'])
    assert config_overrides(args, args.config_flags) == {'planner': {'horizon': 7}}
    args = build_parser().parse_args(['train', 'awr', '--data', 'd.npz', '-o', 'c',
                                      '--beta', '0.2', '--steps', '10', '--head',
                                      'deterministic'])
    assert config_overrides(args, args.config_flags) == {
        'beta': 0.2, 'bc': {'steps': 10, 'head': 'deterministic'}}


def test_a_malformed_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(['train', 'bc', '--data', 'd', '-o', 'c', '--hidden', 'a,b'])
    assert 'expected int values separated by commas' in capsys.readouterr().err


@functools.cache
def _parser():
    # Built once: building the whole `ilrl` parser takes a quarter of a second, and parsing
    # leaves it unchanged.
    return build_parser()


@given(lr=st.floats(1e-6, 1.0), batch=st.integers(1, 4096),
       hidden=st.lists(st.integers(1, 512), min_size=1, max_size=4).map(tuple))
def test_generated_values_round_trip_through_the_flags(lr, batch, hidden):
    args = _parser().parse_args([
        'train', 'td3', '--env', 'Pendulum-v1', '--lr', repr(lr), '--batch-size', str(batch),
        '--hidden', ','.join(map(str, hidden))])
    assert config_overrides(args, args.config_flags) == {
        'lr': lr, 'batch_size': batch, 'hidden': hidden}
