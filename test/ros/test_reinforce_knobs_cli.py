"""`ilrl train reinforce` offers the policy-gradient knobs as flags, and a short run takes them."""

import contextlib
import io

from hypothesis import given, settings, strategies as st
import pytest

from ilrl_ros.cli import build_parser, main
from ilrl_ros.cli.config_flags import config_overrides

KNOB_FLAGS = ('--returns', '--baseline', '--ent-coef', '--ent-decay', '--ent-coef-end',
              '--reward-offset')


def test_the_knobs_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(['train', 'reinforce', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    for flag in KNOB_FLAGS:
        assert flag in text, flag
    for word in ('reward_to_go', 'time_mean', 'exponential', 'added to every reward'):
        assert word in text, word


def test_flags_become_config_overrides():
    args = build_parser().parse_args([
        'train', 'reinforce', '--env', 'CartPole-v1', '--returns', 'full', '--baseline',
        'time_mean', '--ent-coef', '0.02', '--ent-decay', 'linear', '--ent-coef-end', '0.001',
        '--reward-offset', '-10'])
    assert config_overrides(args, args.config_flags) == {
        'returns': 'full', 'baseline': 'time_mean', 'ent_coef': 0.02, 'ent_decay': 'linear',
        'ent_coef_end': 0.001, 'reward_offset': -10.0}


@pytest.mark.parametrize('knobs', [
    ['--returns', 'full', '--baseline', 'batch_mean'],
    ['--baseline', 'time_mean', '--reward-offset', '10'],
    ['--baseline', 'none', '--ent-coef', '0.05', '--ent-decay', 'exponential',
     '--ent-coef-end', '0.005'],
])
def test_a_short_run_with_each_knob(knobs, capsys):
    code = main(['train', 'reinforce', '--env', 'CartPole-v1', '--steps', '200',
                 '--eval-episodes', '1', '--num-envs', '2', '--hidden', '8', *knobs])
    assert code == 0
    assert 'reinforce: ' in capsys.readouterr().out


@settings(max_examples=8, deadline=None)
@given(knob=st.sampled_from(['--returns', '--baseline', '--ent-decay']),
       value=st.text(alphabet='abcdefghijklmnopqrstuvwxyz_', min_size=1, max_size=10))
def test_a_bad_knob_value_is_a_sentence_not_a_traceback(knob, value):
    if value in ('reward_to_go', 'full', 'none', 'batch_mean', 'time_mean', 'value',
                 'constant', 'linear', 'exponential'):
        return
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(['train', 'reinforce', '--env', 'CartPole-v1', '--steps', '10', knob,
                     value])
    assert code == 2
    field = knob.removeprefix('--').replace('-', '_')
    assert f'REINFORCEConfig.{field} {value!r} is not one of' in err.getvalue()


def test_a_bad_offset_is_refused(capsys):
    assert main(['train', 'reinforce', '--env', 'CartPole-v1', '--steps', '10',
                 '--reward-offset', 'nan']) == 2
    assert 'REINFORCEConfig.reward_offset must be a finite number' in capsys.readouterr().err
