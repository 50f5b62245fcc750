"""`ilrl gridworld` solves the lectures' gridworld three ways and replays an episode.

And `ilrl train dqn|reinforce|ppo --env ilrl/Gridworld4x3-v0` trains on it.
"""

import argparse
import contextlib
import io
import re

from hypothesis import given, settings, strategies as st
import pytest

from ilrl_ros.cli import gridworld, main, train

# The lectures' 4x3 world (living reward -0.03, noise 0.2, gamma 1): utilities and policy.
VALUE_ROWS = ('0.852  0.894  0.932 +1.000', '0.814  #####  0.684 -1.000',
              '0.772  0.735  0.696  0.474')
POLICY_ROWS = ('>  >  > +1', '^ ##  ^ -1', '^  <  <  <')


def _parser(*verbs) -> argparse.ArgumentParser:
    """The ``ilrl`` parser with only these verbs: building all of them takes seconds."""
    parser = argparse.ArgumentParser(prog='ilrl')
    sub = parser.add_subparsers(dest='command', required=True)
    for verb in verbs:
        verb.add_to(sub)
    return parser


PARSERS = {}


def _run(argv) -> tuple:
    """What ``ilrl <argv>`` prints and returns, as ``ilrl_ros.cli.main`` runs a verb."""
    verb = {'gridworld': gridworld, 'train': train}[argv[0]]
    parser = PARSERS.setdefault(argv[0], _parser(verb))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = parser.parse_args(argv)
            code = args.func(args)
        except SystemExit as stop:  # argparse refuses a flag's value
            code = stop.code
        except ValueError as error:  # as main does: the sentence, no traceback
            print(f'ilrl {argv[0]}: {error}', file=err)
            code = 2
    return code, out.getvalue(), err.getvalue()


def _lines(text: str) -> list:
    return [' '.join(line.split()) for line in text.splitlines()]


def test_help_names_the_methods_the_setting_and_examples():
    code, out, _ = _run(['gridworld', '--help'])
    assert code == 0
    text = ' '.join(out.split())
    for word in ('value-iteration', 'policy-iteration', 'q-learning', '--living-reward',
                 '--noise', '--gamma', '--replay', '--replay-policy', '--lr-power',
                 '--episodes', 'examples:', 'ilrl gridworld --method q-learning'):
        assert word in text, word


@pytest.mark.parametrize('method', ['value-iteration', 'policy-iteration'])
def test_the_exact_solvers_print_the_lectures_values_and_policy(method):
    code, out, _ = _run(['gridworld', '--method', method])
    assert code == 0
    lines = _lines(out)
    assert 'living reward -0.03' in out and 'gamma 1' in out
    for row in VALUE_ROWS + POLICY_ROWS:
        assert ' '.join(row.split()) in lines, row
    if method == 'policy-iteration':
        assert 'same policy as value iteration' in out


def test_aimas_setting_is_one_flag_away():
    code, out, _ = _run(['gridworld', '--living-reward', '-0.04'])
    assert code == 0
    assert '0.812 0.868 0.918 +1.000' in _lines(out)


def test_q_learning_says_whether_and_when_it_found_the_optimal_policy():
    code, out, _ = _run(['gridworld', '--method', 'q-learning', '--episodes', '3000',
                         '--living-reward', '-0.04', '--lr-power', '0.7', '--seed', '1'])
    assert code == 0
    assert 'Q-learning (seed 1): 3000 episodes' in out
    found = re.search(r'after (\d+) episodes its greedy policy equalled it', out)
    assert found or 'did NOT find the optimal policy' in out
    if found:
        assert 1 <= int(found.group(1)) <= 3000
    assert 'max_a Q(s, a) (# wall):' in out
    # Too few episodes to learn anything: it says which cells are wrong.
    code, out, _ = _run(['gridworld', '--method', 'q-learning', '--episodes', '3'])
    assert code == 0 and re.search(r'did NOT find .*\(\d, \d\) [NESW] instead of [NESW]', out)


def test_a_replay_prints_every_step_and_the_running_return():
    code, out, _ = _run(['gridworld', '--replay', '--start', '1,1', '--seed', '2'])
    assert code == 0
    replay = out[out.index('replay of value iteration'):].splitlines()
    assert replay[1].split() == ['step', 'state', 'action', 'moved', 'to', 'reward', 'return']
    rows = [line for line in replay[2:] if re.match(r'\s+\d+\s+\(', line)]
    assert rows and rows[0].split()[1:3] == ['(1,', '1)']
    total = 0.0
    for row in rows:
        reward, ret = (float(v) for v in re.findall(r'[+-]\d\.\d{3}', row)[:2])
        total += reward
        assert ret == pytest.approx(total, abs=2e-3)
    assert 'exit +1' in rows[-1] or 'exit -1' in rows[-1] or len(rows) == 30
    assert replay[-1].startswith('return ')
    code, out, _ = _run(['gridworld', '--replay', '--replay-policy', 'random',
                         '--replay-steps', '4', '--noise', '0.5'])
    assert code == 0 and 'uniformly random policy' in out
    assert len([line for line in out.splitlines() if re.match(r'\s+\d+\s+\(', line)]) <= 4


def test_a_positive_living_reward_without_discount_is_refused(capsys):
    # Through the real entry point once: the verb is registered and its errors are sentences.
    assert main(['gridworld', '--living-reward', '0.1']) == 2
    assert 'ilrl gridworld: living reward 0.1 with gamma 1' in capsys.readouterr().err
    code, out, _ = _run(['gridworld', '--living-reward', '0.1', '--gamma', '0.9'])
    assert code == 0


FLAGS = {'--noise': st.one_of(st.floats(-5, 5), st.text(max_size=4)),
         '--gamma': st.one_of(st.floats(-2, 3), st.text(max_size=4)),
         '--living-reward': st.one_of(st.floats(-3, 1), st.text(max_size=4)),
         '--start': st.text(alphabet='0123456789,-x ', max_size=6),
         '--replay-steps': st.text(alphabet='0123456789-.x', min_size=1, max_size=4),
         '--episodes': st.text(alphabet='0123456789-.', min_size=1, max_size=3)}


@settings(max_examples=25, deadline=None)
@given(data=st.data(), flag=st.sampled_from(sorted(FLAGS)))
def test_bad_input_gets_a_sentence_not_a_traceback(data, flag):
    value = data.draw(FLAGS[flag])
    argv = ['gridworld', '--replay', '--replay-steps', '3', f'{flag}={value}']
    if flag == '--episodes':
        argv[1:1] = ['--method', 'q-learning']
    code, out, err = _run(argv)
    assert code in (0, 2), (argv, code)
    if code == 2:
        assert 'Traceback' not in err and err.strip(), argv
        # argparse names the flag; our own checks name the setting or the cell.
        name = flag.lstrip('-').replace('-', '[ _]')
        assert re.search(name, err) or 'start' in err or 'cell' in err, (argv, err)


@pytest.mark.slow  # the train verb's parser alone takes seconds to build
@pytest.mark.parametrize('algorithm, knobs', [
    ('dqn', ['--learning-starts', '50']),
    ('reinforce', ['--num-envs', '2']),
    ('ppo', ['--num-steps', '64', '--batch-size', '32', '--epochs', '2']),
])
def test_each_network_learner_trains_on_the_registered_gridworld(algorithm, knobs):
    code, out, err = _run(['train', algorithm, '--env', 'ilrl/Gridworld4x3-v0', '--steps',
                           '300', '--eval-episodes', '2', '--hidden', '16', *knobs])
    assert code == 0, err
    assert re.search(rf'{algorithm}: \d+ environment steps', out)
