"""The teleop node over real DDS: Joy messages in, stamped commands out; keys through a pty."""

import os
import time

from geometry_msgs.msg import TwistStamped
import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Joy

from ilrl_ros import qos
from ilrl_ros.nodes.common import Spinner, stop_nodes
from ilrl_ros.nodes.teleop import Teleop
from ilrl_testing import wait_for


class Listener(Node):
    """The teleop topic's commands, with arrival times; and a Joy publisher."""

    def __init__(self, context):
        super().__init__('teleop_listener', context=context)
        self.commands = []
        self.create_subscription(TwistStamped, 'teleop/cmd_vel', self._on_command,
                                 qos.COMMAND)
        self.joy = self.create_publisher(Joy, 'joy', qos.SENSOR)

    def _on_command(self, msg) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.commands.append((time.monotonic(), stamp,
                              np.array([msg.twist.linear.x, msg.twist.angular.z])))

    def since(self, t0):
        return [c for t, _, c in list(self.commands) if t >= t0]


def joy(axes, buttons):
    return Joy(axes=[float(a) for a in axes], buttons=list(buttons))


def test_joy_drives_then_deadman_and_silence_give_zero_once(ros_context):
    teleop = Teleop(context=ros_context, parameter_overrides=[
        Parameter('task', value='track_follow'), Parameter('rate_hz', value=50.0),
        Parameter('timeout_s', value=0.3), Parameter('deadman_button', value=1)])
    listener = Listener(ros_context)
    spinner = Spinner([teleop, listener], context=ros_context).start()
    try:
        wait_for(lambda: listener.joy.get_subscription_count(), 10.0, 'teleop to subscribe')

        def pushed():
            listener.joy.publish(joy([0.0, 1.0], [0, 1]))
            return listener.commands
        wait_for(pushed, 10.0, 'a command from the pushed stick')
        _, stamp, command = listener.commands[-1]
        assert command == pytest.approx([0.22, 0.0]) and stamp > 0
        # Deadman released: one zero, then nothing while the stick keeps being reported.
        for _ in range(3):
            listener.joy.publish(joy([0.0, 1.0], [0, 0]))
            time.sleep(0.02)
        wait_for(lambda: not listener.commands[-1][2].any(), 5.0, 'the zero command')
        t0 = time.monotonic()
        for _ in range(10):
            listener.joy.publish(joy([0.0, 1.0], [0, 0]))
            time.sleep(0.02)
        assert listener.since(t0) == []
        # Pushed again, then the Joy stream stops: stale after 0.3 s, one zero, silence.
        t1 = time.monotonic()
        listener.joy.publish(joy([-0.5, 0.0], [0, 1]))
        wait_for(lambda: listener.since(t1), 5.0, 'the turn command')
        time.sleep(0.7)
        after = listener.since(t1)
        turn = (0.5 - 0.05) / 0.95 * -2.84
        assert after[0] == pytest.approx([0.0, turn])
        assert not after[-1].any() and all(c.any() for c in after[:-1])
        # 50 Hz for about 0.3 s; under load the timer may run late, never more often.
        assert 2 <= len(after) <= 25
        assert teleop.counts['stale'] == 1
        # Stopping commands zero.
        count = len(listener.commands)
        teleop.stop()
        wait_for(lambda: len(listener.commands) > count, 5.0, 'the zero on stop')
        assert not listener.commands[-1][2].any()
    finally:
        stop_nodes([teleop, listener], spinner)


def test_a_bad_mapping_is_a_start_up_error_naming_the_parameter(ros_context):
    with pytest.raises(ValueError, match="parameter axes has 3 entries; the task's action "
                                         r"has 2 field\(s\)"):
        Teleop(context=ros_context, parameter_overrides=[
            Parameter('task', value='track_follow'), Parameter('axes', value=[1, 0, 2])])


def test_keyboard_mode_without_a_terminal_says_so(ros_context):
    with pytest.raises(OSError, match="keyboard_device '/dev/null' is not a terminal"):
        Teleop(context=ros_context, parameter_overrides=[
            Parameter('task', value='track_follow'), Parameter('mode', value='keyboard'),
            Parameter('keyboard_device', value='/dev/null')])


def test_keys_typed_on_a_terminal_drive_and_space_stops(ros_context):
    master, slave = os.openpty()
    teleop = None
    try:
        teleop = Teleop(context=ros_context, parameter_overrides=[
            Parameter('task', value='track_follow'), Parameter('mode', value='keyboard'),
            Parameter('keyboard_device', value=os.ttyname(slave)),
            Parameter('rate_hz', value=50.0)])
        listener = Listener(ros_context)
        spinner = Spinner([teleop, listener], context=ros_context).start()
        try:
            assert b'teleop keys:' in os.read(master, 4096)     # the key map is shown
            wait_for(lambda: teleop.command_pub.get_subscription_count(), 10.0, 'listener')
            os.write(master, b'wwa')
            wait_for(lambda: listener.commands and listener.commands[-1][2]
                     == pytest.approx([0.044, 0.284]), 5.0, 'the stepped command')
            os.write(master, b' ')
            wait_for(lambda: not listener.commands[-1][2].any(), 5.0, 'zero after space')
            count = len(listener.commands)
            time.sleep(0.2)
            assert len(listener.commands) == count               # then silence
        finally:
            stop_nodes([teleop, listener], spinner)
    finally:
        os.close(master)
        os.close(slave)
