"""A bag converted for a spec with ``action_history``: each row ends with the commands before it.

The hand-made bag of test_convert_alignment (stamped commands at 10 Hz, none at ticks 15 and
16, episode 1 from tick 0 to 15 and episode 2 from tick 18) converts to the same rows, each
followed by the last three commands before its own from its episode's start, zeros before.
"""

import copy

import numpy as np
import pytest

from ilrl_ros.convert import bag_to_dataset
from ilrl_ros.core.spec import parse_spec
from ilrl_testing import small_spec_raw
from test_convert_alignment import COMMAND_TICKS, KEPT, SPEC, ticks_of, write_hand_made_bag

HISTORY = 3
EPISODE_STARTS = (0, 18)


@pytest.fixture(scope='module')
def hand_made_bag(tmp_path_factory):
    return write_hand_made_bag(tmp_path_factory.mktemp('bags') / 'hand_made')


def _spec_with_history():
    raw = copy.deepcopy(small_spec_raw())
    raw['observation']['action_history'] = HISTORY
    return parse_spec(raw, origin='test')


def _expected_history(k: int) -> list:
    start = max(s for s in EPISODE_STARTS if s <= k)
    before = [j for j in COMMAND_TICKS if start <= j < k][-HISTORY:]
    values = [0.0, 0.0] * (HISTORY - len(before))
    for j in before:
        # As the robot takes them: clipped to the action bounds (linear.x within 0.22 m/s).
        values += [min(0.01 * j, 0.22), -0.01 * j]
    return values


def test_rows_end_with_the_commands_before_them_from_their_episodes_start(hand_made_bag):
    spec = _spec_with_history()
    data, report = bag_to_dataset(hand_made_bag, spec, align_tolerance_s=0.15)
    plain, _ = bag_to_dataset(hand_made_bag, SPEC, align_tolerance_s=0.15)
    assert ticks_of(data) == KEPT == ticks_of(plain) and report.rows == len(KEPT)
    assert data.observations.shape == (len(KEPT), spec.observation.size)
    fields = spec.observation.fields_size
    np.testing.assert_array_equal(data.observations[:, :fields], plain.observations)
    expected = np.array([_expected_history(k) for k in KEPT], dtype=np.float32)
    np.testing.assert_allclose(data.observations[:, fields:], expected, atol=1e-7)
    # Spot checks of the rule: the first row of each episode starts from zeros, and the
    # commands of ticks 14 and 17 (before episode 2's start) never reach episode 2.
    assert not data.observations[KEPT.index(0), fields:].any()
    assert not data.observations[KEPT.index(18), fields:].any()
    np.testing.assert_allclose(data.observations[KEPT.index(20), fields:],
                               [0, 0, 0.18, -0.18, 0.19, -0.19], atol=1e-7)
    np.testing.assert_allclose(data.observations[KEPT.index(29), fields:],
                               [0.22, -0.26, 0.22, -0.27, 0.22, -0.28], atol=1e-7)
    assert data.spec.observation.labels()[fields:] == [
        f'action_history.t-{back}.{name}' for back in (3, 2, 1)
        for name in ('linear.x', 'angular.z')]
