"""The ``transitions`` message: a round trip, and every malformed message refused by name."""

from hypothesis import given, strategies as st
import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ilrl_ros.core.rl.transitions import Transition
from ilrl_ros.transitions import from_message, PARTS, to_message, TransitionError

OBS, ACT = 3, 1


def _transition(**change) -> Transition:
    values = dict(obs=np.array([0.5, -1.0, 2.0], np.float32), action=np.array([1.5], np.float32),
                  reward=-0.25, next_obs=np.array([0.25, 0.0, -3.0], np.float32),
                  terminated=False, truncated=True, stamp_ns=1_796_554_686_897_609_662,
                  next_stamp_ns=1_796_554_686_947_609_662, episode=12, intervened=True)
    values.update(change)
    return Transition(**values)


def test_round_trip_keeps_every_field_exactly():
    t = _transition()
    back = from_message(to_message(t), OBS, ACT)
    for name in ('obs', 'action', 'next_obs'):
        assert np.array_equal(getattr(back, name), getattr(t, name))
    assert (back.reward, back.terminated, back.truncated, back.intervened, back.episode) == \
        (t.reward, t.terminated, t.truncated, t.intervened, t.episode)
    # Wall-clock stamps in nanoseconds survive: seconds and nanoseconds travel apart.
    assert (back.stamp_ns, back.next_stamp_ns) == (t.stamp_ns, t.next_stamp_ns)


def test_labels_say_what_each_part_is():
    msg = to_message(_transition())
    assert [d.label for d in msg.layout.dim] == list(PARTS)
    assert [d.size for d in msg.layout.dim] == [OBS, ACT, OBS, 1, 1, 1, 2, 2]


@pytest.mark.parametrize('obs, act', [(4, 1), (3, 2)])
def test_a_transition_of_another_task_is_refused_with_the_sizes(obs, act):
    with pytest.raises(TransitionError, match='observation'):
        from_message(to_message(_transition()), obs, act)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
anything = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 1e300, -0.0]))


@given(st.lists(st.tuples(st.sampled_from(PARTS + ('extra', '')), st.integers(0, 5)),
                max_size=10),
       st.lists(anything, max_size=30))
def test_arbitrary_messages_are_either_a_valid_transition_or_refused(dims, data):
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label, size=size) for label, size in dims]
    msg.data = [float(x) for x in data]
    try:
        t = from_message(msg, OBS, ACT)
    except TransitionError as error:
        assert str(error)
        return
    assert t.obs.shape == (OBS,) and np.all(np.isfinite(t.obs))
    assert not (t.terminated and t.truncated)


@given(st.integers(0, 11), anything)
def test_one_bad_value_anywhere_is_refused_or_harmless(index, value):
    msg = to_message(_transition())
    data = list(msg.data)
    data[index] = value
    msg.data = data
    try:
        t = from_message(msg, OBS, ACT)
    except TransitionError:
        return
    assert np.all(np.isfinite(t.obs)) and np.isfinite(t.reward)
    assert t.stamp_ns >= 0 and t.episode >= 0
