r"""The ``teleop`` node: a person's commands from a joystick or the keyboard, for the task.

It publishes the task's command type (TwistStamped stamped with the node's clock, Twist or
Float64MultiArray, as the spec's action says) on ``topic`` (``teleop/cmd_vel``: the topic
``ilrl dagger --graph --label-topic`` and the policy's ``teleop_topic`` take) at
``rate_hz``, for demonstrations, interventions and DAgger labels.

Examples::

    ros2 run joy joy_node &                       # sensor_msgs/Joy on /joy
    ros2 run ilrl_ros teleop --ros-args -p task:=track_follow -p deadman_button:=4
    ros2 run ilrl_ros teleop --ros-args -p mode:=keyboard        # in a terminal
    ros2 launch ilrl_ros teleop.launch.py mode:=keyboard

Inputs: ``joy`` mode maps sensor_msgs/Joy axes to the action's fields (``axes``,
``scales``, ``deadzone``), live only while ``deadman_button`` is held; ``keyboard`` mode
reads the controlling terminal, each field's two keys stepping it up and down, space
stopping. Safety: a Joy stream that stops for ``timeout_s``, a released deadman or the stop
key publish zero once and then nothing, so whatever listens for teleop times the person
out and the robot is not held by a stale hand; stopping the node publishes zero.
"""

import os
import select
import sys
import termios
import threading
import time
import tty

import numpy as np
from sensor_msgs.msg import Joy

from ilrl_ros import qos
from ilrl_ros.core.teleop import (JoyInputError, joy_mapping, KeyboardTeleop, TeleopError,
                                  TeleopOutput)
from ilrl_ros.messages import action_message, action_message_class
from ilrl_ros.nodes.common import declare_task, run, SafeNode, StatusPublisher
from ilrl_ros.nodes.params import declare_params, Param

MODES = ('joy', 'keyboard')

PARAMETERS = (
    Param('mode', 'joy', 'joy: sensor_msgs/Joy on joy_topic; keyboard: keys read from the '
          'terminal (keyboard_device).', choices=MODES),
    Param('topic', 'teleop/cmd_vel', "Where the person's commands go (the task's command "
          'type).'),
    Param('rate_hz', 20.0, 'How often the live command is published.', low=1.0, high=1000.0),
    Param('frame_id', 'base_link', 'frame_id of stamped commands.'),
    Param('joy_topic', 'joy', 'The sensor_msgs/Joy topic (joy mode).'),
    Param('axes', [-1], "Joystick axis of each action field, in the spec's field order; "
          '[-1]: the left stick (axis 1 forward, axis 0 left), then the right stick.'),
    Param('scales', [0.0], "Command per unit of each axis; [0.0]: each field's largest bound "
          '(a full push reaches it). Negative flips an axis.'),
    Param('deadman_button', 0, 'Button that must be held for the stick to command; -1: none.',
          low=-1, high=127),
    Param('deadzone', 0.05, 'Axis values below this count as 0 (stick drift).', low=0.0,
          high=0.95),
    Param('timeout_s', 0.5, 'A Joy stream silent this long is stale: zero once, then '
          'nothing.', low=0.01, high=60.0),
    Param('keyboard_device', '/dev/tty', 'The terminal keyboard mode reads.'),
    Param('keyboard_step', 0.1, 'One key press changes a field by this fraction of its '
          'largest bound.', low=0.001, high=1.0),
    Param('keyboard_keys', [''], 'Two keys per action field, increase then decrease (e.g. '
          "['ws', 'ad']); ['']: w/s, a/d, r/f, ... Space stops."),
)


class Teleop(SafeNode):
    """Publish a person's commands; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('teleop', **kwargs)
        self.spec = declare_task(self)
        values = declare_params(self, PARAMETERS)
        self.mode = values['mode']
        self.frame_id = values['frame_id']
        action = self.spec.action
        axes = [] if list(values['axes']) == [-1] else list(values['axes'])
        scales = [] if list(values['scales']) == [0.0] else list(values['scales'])
        keys = [k for k in values['keyboard_keys'] if k]
        try:
            self.mapping = joy_mapping(action, axes, scales, values['deadman_button'],
                                       values['deadzone'])
            self.keyboard = KeyboardTeleop(action, values['keyboard_step'], keys)
        except TeleopError as error:
            raise ValueError(f'{error} (task {self.spec.name!r})') from None
        timeout_ns = int(values['timeout_s'] * 1e9) if self.mode == 'joy' else None
        self.output = TeleopOutput(len(action.fields), timeout_ns)
        self._lock = threading.Lock()
        self.counts = {'joy': 0, 'keys': 0, 'published': 0, 'zero': 0, 'bad_input': 0,
                       'stale': 0}
        self.last_error = ''
        self.command_pub = self.create_publisher(action_message_class(action), values['topic'],
                                                 qos.COMMAND)
        self.status = StatusPublisher(self)
        self._reader = None
        if self.mode == 'joy':
            self.create_subscription(Joy, values['joy_topic'], self._on_joy, qos.SENSOR)
        self.create_timer(1.0 / values['rate_hz'], self._on_tick)
        self.create_timer(1.0, self._publish_status)
        self._publish_status()
        if self.mode == 'keyboard':
            # Last, so that nothing after it can fail and leave the terminal in cbreak mode
            # (a node that does not start is never stopped). Key presses arrive on the
            # reader's thread, behind the same barrier as callbacks.
            self._reader = KeyboardReader(values['keyboard_device'],
                                          self._guard('keyboard input', self._on_key))
            try:
                self._reader.write(self.keyboard.help() + '\n')
            except OSError:
                self._reader.stop()
                raise
        source = f"Joy on {values['joy_topic']!r}" if self.mode == 'joy' else \
            f"the keyboard on {values['keyboard_device']}"
        self.get_logger().info(
            f'teleop for task {self.spec.name!r}: {source} -> {action.message_type} on '
            f'{self.command_pub.topic_name} at {values["rate_hz"]:g} Hz')

    # Inputs --------------------------------------------------------------------------------

    def _on_joy(self, msg: Joy) -> None:
        self.counts['joy'] += 1
        try:
            command = self.mapping.command(msg.axes, msg.buttons)
        except JoyInputError as error:
            # Never act on input that cannot be read: the hand is treated as let go.
            self.counts['bad_input'] += 1
            self.last_error = f'{self.get_name()}: {error}'
            self.get_logger().error(self.last_error, throttle_duration_sec=1.0)
            command = None
        with self._lock:
            if command is None:
                self.output.release()
            else:
                self.output.set(command, time.monotonic_ns())

    def _on_key(self, key: str) -> None:
        # Runs on the keyboard thread: state shared with the timer is behind the lock.
        with self._lock:
            command = self.keyboard.press(key)
            if command is None:
                return
            self.counts['keys'] += 1
            if not command.any():
                self.output.release()
            else:
                self.output.set(command, time.monotonic_ns())

    # Output --------------------------------------------------------------------------------

    def _on_tick(self) -> None:
        with self._lock:
            stale_before = self.output.stale
            command = self.output.tick(time.monotonic_ns())
            self.counts['stale'] += self.output.stale - stale_before
        if command is not None:
            self._publish(command)

    def _publish(self, command) -> None:
        self.command_pub.publish(action_message(
            self.spec.action, command, self.get_clock().now().nanoseconds, self.frame_id))
        self.counts['published'] += 1
        if not command.any():
            self.counts['zero'] += 1

    def fail_safe(self) -> None:
        """Command zero once and forget the person's command (a fault, or stopping)."""
        with self._lock:
            self.output.release()
            self.output.tick(time.monotonic_ns())
            self.keyboard.command[:] = 0.0
        self._publish(np.zeros(len(self.spec.action.fields)))

    def command_publishers(self) -> tuple:
        return (self.command_pub,)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()

    def _publish_status(self) -> None:
        self.status.publish(mode=self.mode, live=self.output.live, last_error=self.last_error,
                            faults=self.fault_count, **self.counts)


class KeyboardReader:
    """Read single key presses from a terminal in a thread, as teleop_twist_keyboard does.

    The terminal is put in cbreak mode (keys arrive at once, not echoed; Ctrl-C still
    signals) and restored on ``stop``. A path that is not a terminal is refused.
    """

    POLL_S = 0.1

    def __init__(self, device: str, on_key):
        try:
            self.fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        except OSError as error:
            raise OSError(f'keyboard mode reads the terminal {device!r}, which cannot be '
                          f'opened ({error.strerror}); run teleop in a terminal (ros2 run, or '
                          f'a launch prefix such as xterm -e), or use mode joy') from None
        if not os.isatty(self.fd):
            os.close(self.fd)
            raise OSError(f'keyboard_device {device!r} is not a terminal; expected a tty '
                          f'(the default /dev/tty is the controlling terminal)')
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self._on_key = on_key
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True, name='ilrl-keyboard')
        self.thread.start()

    def write(self, text: str) -> None:
        os.write(self.fd, text.replace('\n', '\r\n').encode())

    def _read(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], self.POLL_S)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 64)
            except OSError:
                return   # the terminal went away: the timer keeps the last state safe
            if not data:
                return
            for key in data.decode('utf-8', errors='ignore'):
                self._on_key(key)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2 * self.POLL_S + 1.0)
        try:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        finally:
            os.close(self.fd)


def main(args=None) -> int:
    return run(lambda: Teleop(), args, name='teleop')


if __name__ == '__main__':
    sys.exit(main())
