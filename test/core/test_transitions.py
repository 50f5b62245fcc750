"""TransitionBuilder: the loop's separate streams paired into transitions, in any order."""

from hypothesis import given, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.episode import end_flags
from ilrl_ros.core.rl.transitions import Transition, TransitionBuilder

START = 1_000


def _feed_episode(builder, order, steps=4, episode=1, start=START, rescored=False):
    """Feed one episode and return its stamps.

    Observations with their answering commands go in time order, then the verdicts and
    rewards in ``order`` (a permutation of ``range(2 * steps)``, or of ``range(3 * steps)``
    with ``rescored``).
    """
    stamps = [start + 10 * k for k in range(steps + 1)]
    for k, stamp in enumerate(stamps):
        builder.observation(stamp, np.array([stamp, -stamp]))
        if k < steps:
            # The command answering observation k: its value says which one.
            builder.command(np.array([k + 0.5]), stamp)
    pieces = []
    for k in range(1, len(stamps)):
        last = k == len(stamps) - 1
        pieces.append(lambda k=k, last=last: builder.step(
            episode, stamps[k], stamps[k - 1], start, 'timeout' if last else None, False, last))
        pieces.append(lambda k=k: builder.reward(stamps[k], -float(k), start))
        if rescored:
            # Scored before the reward monitor knew of the episode's start: another key.
            pieces.append(lambda k=k: builder.reward(stamps[k], -99.0, 0))
    for index in order:
        pieces[index]()
    return stamps


def test_pairs_each_step_with_its_observations_reward_and_the_command_that_answered_it():
    builder = TransitionBuilder(action_size=1)
    stamps = _feed_episode(builder, range(8))
    out = builder.poll()
    assert [t.stamp_ns for t in out] == stamps[:-1]
    assert [t.next_stamp_ns for t in out] == stamps[1:]
    for k, t in enumerate(out):
        assert t.obs.tolist() == [stamps[k], -stamps[k]]
        assert t.action.tolist() == [k + 0.5]
        assert t.reward == -(k + 1)
    assert [t.truncated for t in out] == [False, False, False, True]
    assert out[-1].outcome == 'timeout' and not any(t.terminated for t in out)
    assert builder.poll() == []


@given(st.data(), st.booleans())
def test_any_arrival_order_of_verdicts_and_rewards_gives_the_same_transitions(data, rescored):
    builder = TransitionBuilder(action_size=1)
    order = data.draw(st.permutations(range(12 if rescored else 8)))
    _feed_episode(builder, order, rescored=rescored)
    out = builder.poll()
    assert [t.reward for t in out] == [-1.0, -2.0, -3.0, -4.0]
    assert [t.action.tolist() for t in out] == [[0.5], [1.5], [2.5], [3.5]]


def test_a_missed_tick_keeps_the_command_in_force():
    builder = TransitionBuilder(action_size=1)
    for stamp in (10, 20, 30):
        builder.observation(stamp, np.zeros(2))
    builder.command(np.array([1.0]), 10)      # nothing answers 20: the robot keeps 1.0
    for previous, stamp in ((10, 20), (20, 30)):
        builder.step(1, stamp, previous, 10, None, False, False)
        builder.reward(stamp, 0.0, 10)
    assert [t.action.tolist() for t in builder.poll()] == [[1.0], [1.0]]


def test_steps_whose_observation_is_gone_are_counted_lost_not_kept_forever():
    builder = TransitionBuilder(action_size=1, horizon=3)
    builder.step(1, 20, 10, 10, None, False, False)
    builder.reward(20, 0.0, 10)
    for stamp in (20, 30, 40, 50):             # 10 never arrives; the horizon passes it
        builder.observation(stamp, np.zeros(2))
    assert builder.poll() == []
    assert builder.lost == 1


def test_waiting_for_names_the_missing_piece():
    builder = TransitionBuilder(action_size=1)
    assert 'episode/step' in builder.waiting_for(20)
    builder.step(1, 20, 10, 10, None, False, False)
    builder.observation(10, np.zeros(2))
    text = builder.waiting_for(20)
    assert 'observation stamped 20' in text and 'reward' in text


@pytest.mark.parametrize('outcome, timed_out, flags', [
    (None, False, (False, False)), ('success', False, (True, False)),
    ('failure', False, (True, False)), ('unsafe', False, (True, False)),
    ('success', True, (False, True)), ('timeout', True, (False, True)),
    ('estop', False, (False, True)), ('aborted', False, (False, True))])
def test_end_flags(outcome, timed_out, flags):
    assert end_flags(outcome, timed_out) == flags


def test_a_transition_refuses_non_finite_values():
    good = dict(obs=np.zeros(2), action=np.zeros(1), reward=0.0, next_obs=np.zeros(2),
                terminated=False, truncated=False, stamp_ns=1, next_stamp_ns=2, episode=1)
    Transition(**good)
    for change in ({'obs': np.array([np.nan, 0.0])}, {'reward': float('inf')},
                   {'next_obs': np.zeros(3)}, {'action': np.array([np.inf])}):
        with pytest.raises(ValueError):
            Transition(**{**good, **change})
