"""Teleoperation's mapping, without ROS: joystick axes and key presses to commands."""

from hypothesis import given, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.teleop import (JoyInputError, joy_mapping, KeyboardTeleop, TeleopError,
                                  TeleopOutput)

TWIST = load_spec('track_follow').action          # [linear.x, angular.z], +/-0.22, +/-2.84
EFFORT = load_spec('pendulum').action


def test_the_default_mapping_by_hand():
    mapping = joy_mapping(TWIST)
    assert mapping.axes == (1, 0) and mapping.deadman_button == 0
    # Axis 1 (left stick forward) full, axis 0 (left) half; the deadzone 0.05 is rescaled away.
    command = mapping.command([0.5, 1.0, 0.0], [1, 0])
    assert command == pytest.approx([0.22, (0.5 - 0.05) / 0.95 * 2.84])
    assert mapping.command([-0.04, 0.03], [1]) == pytest.approx([0.0, 0.0])   # drift
    assert mapping.command([-1.0, -1.0], [1]) == pytest.approx([-0.22, -2.84])
    assert mapping.command([0.5, 1.0], [0, 1]) is None          # deadman released


def test_scales_flip_and_are_clamped_to_the_bounds():
    mapping = joy_mapping(TWIST, axes=[3, 2], scales=[-1.0, 0.5], deadman_button=-1,
                          deadzone=0.0)
    assert mapping.command([0, 0, 1.0, 0.1], []) == pytest.approx([-0.1, 0.5])
    assert mapping.command([0, 0, 0.0, -1.0], []) == pytest.approx([0.22, 0.0])


@pytest.mark.parametrize('axes, buttons, message', [
    ([0.1], [1], 'the Joy message has 1 axes; the mapping reads axis 1'),
    ([0.1, 0.2], [], 'the Joy message has 0 buttons; the deadman is button 0'),
    ([float('nan'), 0.0], [1], 'expected finite values from -1 to 1'),
    ([0.0, 7.0], [1], 'expected finite values from -1 to 1'),
])
def test_an_unusable_joy_message_is_refused_saying_why(axes, buttons, message):
    with pytest.raises(JoyInputError, match=message):
        joy_mapping(TWIST).command(axes, buttons)


@pytest.mark.parametrize('kwargs, message', [
    ({'axes': [1]}, r"parameter axes has 1 entries; the task's action has 2 field\(s\) "
                    r'\(linear.x, angular.z\): expected one joystick axis per field'),
    ({'axes': [1, -2]}, 'parameter axes holds -2; expected axis numbers from 0 to 63'),
    ({'scales': [1.0, 0.0]}, 'parameter scales is .*expected finite, non-zero numbers'),
    ({'scales': [1.0]}, 'parameter scales has 1 entries'),
    ({'deadman_button': 500}, 'parameter deadman_button is 500'),
    ({'deadzone': 1.0}, 'parameter deadzone is 1.0; expected a number from 0 to below 1'),
])
def test_a_bad_mapping_names_the_parameter(kwargs, message):
    with pytest.raises(TeleopError, match=message):
        joy_mapping(TWIST, **kwargs)


def test_one_field_tasks_need_one_axis():
    assert joy_mapping(EFFORT).axes == (1,)
    with pytest.raises(TeleopError, match=r'1 field\(s\) \(pendulum_joint\)'):
        joy_mapping(EFFORT, axes=[1, 0])


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8),
       st.lists(st.integers(0, 1), max_size=4))
def test_any_joy_message_is_a_bounded_command_none_or_refused(axes, buttons):
    try:
        command = joy_mapping(TWIST).command(axes, buttons)
    except JoyInputError:
        return
    if command is not None:
        assert np.all(np.isfinite(command))
        assert np.all(command >= TWIST.low) and np.all(command <= TWIST.high)


def test_keys_step_each_field_within_its_bounds_and_space_stops():
    keys = KeyboardTeleop(TWIST, step=0.1)
    assert keys.press('w') == pytest.approx([0.022, 0.0])
    keys.press('w')
    assert keys.press('a') == pytest.approx([0.044, 0.284])
    # Back down to exactly zero, not a rounding residue.
    keys.press('s')
    assert keys.press('s')[0] == 0.0
    for _ in range(30):
        keys.press('d')
    assert keys.command == pytest.approx([0.0, -2.84])
    assert keys.press('?') is None
    assert not keys.press(' ').any() and not keys.command.any()
    assert 'w / s: linear.x up / down by 0.022' in keys.help()


@pytest.mark.parametrize('kwargs, message', [
    ({'keys': ['ws']}, 'parameter keyboard_keys has 1 entries'),
    ({'keys': ['ws', 'wd']}, 'each key used once'),
    ({'keys': ['ws', 'a ']}, 'none of them space'),
    ({'keys': ['ws', 'adx']}, 'two different printable keys per field'),
    ({'step': 0.0}, 'parameter keyboard_step is 0.0'),
])
def test_bad_keys_name_the_parameter(kwargs, message):
    with pytest.raises(TeleopError, match=message):
        KeyboardTeleop(TWIST, **kwargs)


def test_the_output_is_live_then_zero_once_then_silent():
    out = TeleopOutput(2, timeout_ns=500)
    assert out.tick(0) is None                                  # nothing yet: silence
    out.set(np.array([0.1, 0.2]), 1000)
    assert out.tick(1200) == pytest.approx([0.1, 0.2])
    assert out.tick(1500) == pytest.approx([0.1, 0.2])          # 500 ns old: still live
    assert out.tick(1501) == pytest.approx([0.0, 0.0])          # stale: zero once
    assert out.tick(1600) is None and out.stale == 1            # then silence
    out.set(np.array([0.3, 0.0]), 2000)
    out.release()                                               # deadman let go
    assert out.tick(2001) == pytest.approx([0.0, 0.0])
    assert out.tick(2002) is None
    out.release()                                               # nothing live: no zero
    assert out.tick(2003) is None
    keyboard = TeleopOutput(1, timeout_ns=None)                 # keys never go stale
    keyboard.set(np.array([0.5]), 0)
    assert keyboard.tick(10**12) == pytest.approx([0.5])
