"""The ``mock_robot`` node: a core simulator behind the topics a real robot driver offers.

It subscribes to the task's command topic, steps the simulator and publishes what a driver
would (LaserScan, Odometry, JointState, with stamps and frame ids). Nothing above it can
tell it from a real robot. Two ways to run:

- ``free_run``: physics at the control rate times ``real_time_factor``, the newest command
  applied each step (zero once it is older than ``cmd_timeout_s``, as drivers do);
- ``lock_step``: one physics step per command received, for deterministic runs: publish the
  sensors, wait for the command, step, publish again. A stamped command must carry the stamp
  of the observation it answers; after a reset, a command still in flight for the old
  episode is discarded rather than applied to the new one.

With ``clock: sim`` stamps are simulation time and ``/clock`` is published, so the other
nodes run with ``use_sim_time:=true`` at whatever speed the simulator goes.
"""

from dataclasses import dataclass
import json
import sys

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rosgraph_msgs.msg import Clock as ClockMsg
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.core.tasks import make_env
from ilrl_ros.messages import (action_from_message, action_message_class,
                               message_class, message_from_reading, ns_to_stamp,
                               stamp_to_ns)
from ilrl_ros.nodes.common import declare_task, run, SafeNode, StatusPublisher
from ilrl_ros.nodes.params import declare_params, Param

MODES = ('free_run', 'lock_step')
CLOCKS = ('sim', 'wall')


PARAMETERS = (
    Param('mode', 'free_run', 'free_run: physics on a timer; lock_step: one physics step per '
          'command, for deterministic runs.', choices=MODES),
    Param('clock', 'sim', 'sim: stamps are simulation time and /clock is published (run the '
          "others with use_sim_time); wall: stamps are this node's clock.", choices=CLOCKS),
    Param('real_time_factor', 1.0, 'free_run speed: simulated seconds per wall-clock second.',
          low=0.001, high=1000.0),
    Param('seed', 0, 'Seed of the start-state sequence; episode k starts from seed + k.',
          low=0, high=2**31 - 1),
    Param('cmd_timeout_s', 0.5, 'free_run: a command older than this (simulated seconds) is '
          'replaced by zero.', low=0.001, high=1000.0),
    Param('lock_step_timeout_s', 0.5, 'lock_step: republish the sensors if no command came '
          'within this many wall-clock seconds.', low=0.001, high=1000.0),
    Param('odom_frame', 'odom', 'Odometry header frame.'),
    Param('base_frame', 'base_link', 'Robot body frame.'),
    Param('scan_frame', 'base_scan', 'LaserScan frame.'),
)


@dataclass(frozen=True)
class MockRobotParams:
    """The mock robot's parameters (PARAMETERS, by name)."""

    mode: str
    clock: str
    real_time_factor: float
    seed: int
    cmd_timeout_s: float
    lock_step_timeout_s: float
    odom_frame: str
    base_frame: str
    scan_frame: str


class MockRobot(SafeNode):
    """A simulated robot behind real ROS 2 topics; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('mock_robot', **kwargs)
        self.spec = declare_task(self)
        self.params = MockRobotParams(**declare_params(self, PARAMETERS))
        self.env = make_env(self.spec)
        self.episode = 0
        self.steps = 0
        self._command = None
        self._command_stamp_ns = 0
        self._waiting_since = None
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._published_stamp_ns = None
        self._awaiting_command = False
        self._deferred_publish = False

        group = MutuallyExclusiveCallbackGroup()
        self.sensor_pubs = {}
        for source in self.spec.sources.values():
            self.sensor_pubs[source.name] = self.create_publisher(
                message_class(source.message_type), source.topic, qos.SENSOR)
        self.clock_pub = self.create_publisher(ClockMsg, '/clock', qos.SENSOR) \
            if self.params.clock == 'sim' else None
        self.create_subscription(action_message_class(self.spec.action),
                                 self.spec.action.topic, self._on_command, qos.COMMAND,
                                 callback_group=group)
        self.create_service(Trigger, '~/reset', self._on_reset, callback_group=group)
        self.status = StatusPublisher(self)
        if self.params.mode == 'free_run':
            period = self.spec.dt / self.params.real_time_factor
            self.create_timer(period, self._on_physics_tick, callback_group=group,
                              clock=self._wall)
        else:
            self.create_timer(0.05, self._on_lock_step_watch, callback_group=group,
                              clock=self._wall)
        self._reset_env()
        self.get_logger().info(
            f'mock robot for task {self.spec.name!r} ({self.spec.sim}), {self.params.mode}, '
            f'clock {self.params.clock}, listening on {self.spec.action.topic!r}')

    def _stamp_ns(self) -> int:
        if self.params.clock == 'sim':
            return self.env.stamp_ns
        return self.get_clock().now().nanoseconds

    def _publish_sensors(self, stamp: int = None) -> None:
        stamp = self._stamp_ns() if stamp is None else stamp
        if self.clock_pub is not None:
            self.clock_pub.publish(ClockMsg(clock=ns_to_stamp(stamp)))
        # The readings the simulator's own observation was built from: rendered once, and
        # with the same noise sample the reward and termination saw.
        readings = self.env.current_readings()
        for name, reading in readings.items():
            kind = self.spec.sources[name].kind
            frame = {'laser_scan': self.params.scan_frame,
                     'odometry': self.params.odom_frame}.get(kind, self.params.base_frame)
            msg = message_from_reading(reading, frame, self.params.base_frame)
            msg.header.stamp = ns_to_stamp(stamp)
            self.sensor_pubs[name].publish(msg)
        self._published_stamp_ns = stamp
        self._waiting_since = self._wall.now().nanoseconds
        self._awaiting_command = True
        self._deferred_publish = False

    def _reset_env(self) -> None:
        self.env.reset(seed=self.params.seed + self.episode)
        self.episode += 1
        self._command = None
        if self.params.mode == 'lock_step' and self._awaiting_command:
            # A command answering the pre-reset observation may still be on its way; in
            # lock step it would step the new episode. Swallow it (or time out) first.
            self._deferred_publish = True
            self._waiting_since = self._wall.now().nanoseconds
            return
        self._publish_sensors()

    def _on_reset(self, request, response):
        self._reset_env()
        response.success = True
        response.message = json.dumps({'stamp_ns': self._stamp_ns(),
                                       'episode': self.episode,
                                       'seed': self.params.seed + self.episode - 1})
        self.status.publish(episode=self.episode, steps=self.steps)
        return response

    def _on_command(self, msg) -> None:
        try:
            command = action_from_message(self.spec.action, msg)
            command = self.spec.action.clip(command)
        except ValueError as error:
            # A driver drops a garbage command and keeps the last safe one.
            self.get_logger().error(f'dropped command: {error}', throttle_duration_sec=1.0)
            return
        if self.params.mode != 'lock_step':
            self._command = command
            self._command_stamp_ns = self.env.stamp_ns
            return
        if self._deferred_publish:
            self.get_logger().debug('discarded a command for the observation before a reset')
            self._publish_sensors()
            return
        if self.spec.action.stamped and stamp_to_ns(msg.header.stamp) != self._published_stamp_ns:
            # A stamped command answers one observation; any other is stale or a duplicate.
            return
        self._awaiting_command = False
        self._step(command)

    def _step(self, command) -> None:
        self.env.step(command)
        self.steps += 1
        self._publish_sensors()

    def _on_physics_tick(self) -> None:
        command = self._command
        age_s = (self.env.stamp_ns - self._command_stamp_ns) / 1e9
        if command is None or age_s > self.params.cmd_timeout_s:
            command = [0.0] * self.spec.action.size
        self._step(command)

    def _on_lock_step_watch(self) -> None:
        # Best-effort sensors may be lost; republish rather than stall the loop forever.
        waited = self._wall.now().nanoseconds - (self._waiting_since or 0)
        if waited > self.params.lock_step_timeout_s * 1e9:
            if self.params.clock == 'wall' and not self._deferred_publish:
                # Same observation, same stamp: a repeat, not a new step.
                self._publish_sensors(self._published_stamp_ns)
            else:
                self._publish_sensors()


def main(args=None) -> int:
    return run(lambda: MockRobot(), args, name='mock_robot')


if __name__ == '__main__':
    sys.exit(main())
