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

Delays, as a real robot has them between its computer and its motors and sensors:

- ``free_run``, in the robot's clock (simulated time; with ``real_time_factor`` 1 that is
  wall-clock time): a command takes effect ``action_delay_s`` after it arrives (its
  ``cmd_timeout_s`` counts from then); the sensors of a physics step are published
  ``observation_delay_s`` after it, still stamped with the time they were measured, as a real
  sensor's stamp is its capture time. ``/clock`` is not delayed. Each message's delay is
  its delay plus a uniform draw in [0, ``delay_jitter_s``] (a generator seeded from
  ``seed``), never less than the delay of the message before it on the same topic: as on a
  real link, jitter does not reorder one topic's messages. Both are served at the physics
  steps: a command or a reading waits for the first step at or after it is due.
- ``lock_step``, in whole control periods (``round(delay / dt)``, k): the command applied
  at a step is the one received k steps before (zeros for an episode's first k steps, as
  ``core.envs.delays.DelayedActions`` does in process), and the observation published after
  a step is the one measured k steps before (after a reset the robot first runs k steps
  with zero commands, so the first observation published is the reset state, and the
  robot is k steps ahead of what it shows from then on). Jitter does nothing in lock_step:
  its runs stay deterministic.

In free_run the status (``~/status``, once a second and at each reset) counts how well the
commands keep up with the physics: ``steps`` (physics steps), ``commands_on_time`` (steps
before which a new command arrived since the step before, i.e. within one control period of
the observation it follows) and ``commands_missing`` (steps before which none did), both
from the first command on (before it nothing commands the robot, so nothing is late), and
``longest_command_gap``, the longest run of steps without a new command (1: one control
period was missed at most once in a row). ``timing_counts()`` returns the same.

It is a managed (lifecycle) node: configure builds the simulator and its topics, and only
while active does it step, publish sensors and ``/clock`` and take commands.
"""

from collections import deque
from dataclasses import dataclass
import json
import math
import sys

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rosgraph_msgs.msg import Clock as ClockMsg
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.core.envs.delays import DelayedActions
from ilrl_ros.core.tasks import make_simulator
from ilrl_ros.messages import (action_from_message, action_message_class,
                               command_stamp_ns, message_class, message_from_reading,
                               ns_to_stamp)
from ilrl_ros.nodes.common import declare_task, run, SafeLifecycleNode, StatusPublisher, TASK
from ilrl_ros.nodes.params import declare_params, Param

MODES = ('free_run', 'lock_step')
CLOCKS = ('sim', 'wall')
# The longest delay a parameter may ask for, in seconds.
DELAY_MAX_S = 10.0
# How often the status with the timing counts is published, in wall-clock seconds.
STATUS_PERIOD_S = 1.0


PARAMETERS = (
    Param('mode', 'free_run', 'free_run: physics on a timer; lock_step: one physics step per '
          'command, for deterministic runs.', choices=MODES),
    Param('clock', 'sim', 'sim: stamps are simulation time and /clock is published (run the '
          "others with use_sim_time); wall: stamps are this node's clock.", choices=CLOCKS),
    Param('real_time_factor', 1.0, 'free_run speed: simulated seconds per wall-clock second.',
          low=0.001, high=1000.0),
    Param('seed', 0, 'Seed of the start-state sequence; episode k starts from seed + k. Also '
          'seeds the delay jitter.', low=0, high=2**31 - 1),
    Param('cmd_timeout_s', 0.5, 'free_run: a command older than this (simulated seconds) is '
          'replaced by zero.', low=0.001, high=1000.0),
    Param('lock_step_timeout_s', 0.5, 'lock_step: republish the sensors if no command came '
          'within this many wall-clock seconds.', low=0.001, high=1000.0),
    Param('action_delay_s', 0.0, "Delay from a command's arrival to its effect on the motors "
          '(free_run: simulated seconds; lock_step: rounded to whole control periods).',
          low=0.0, high=DELAY_MAX_S),
    Param('observation_delay_s', 0.0, 'Delay from a measurement to its publication, stamped '
          'with the measurement time (free_run: simulated seconds; lock_step: rounded to '
          'whole control periods).', low=0.0, high=DELAY_MAX_S),
    Param('delay_jitter_s', 0.0, "free_run: each message's delay is its delay plus a uniform "
          'draw in [0, jitter] (seeded from seed); lock_step: no jitter.', low=0.0,
          high=DELAY_MAX_S),
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
    action_delay_s: float
    observation_delay_s: float
    delay_jitter_s: float
    odom_frame: str
    base_frame: str
    scan_frame: str


def whole_periods(delay_s: float, dt: float) -> int:
    """A delay in whole control periods, rounded to the nearest (halves up)."""
    return int(math.floor(delay_s / dt + 0.5))


class MockRobot(SafeLifecycleNode):
    """A simulated robot behind real ROS 2 topics; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('mock_robot', **kwargs)
        # Declared now, so that `ros2 param` shows them before configure; configure reads them.
        declare_params(self, (TASK, *PARAMETERS))
        self.status = StatusPublisher(self, self._status_fields, STATUS_PERIOD_S)
        self.start_lifecycle()

    # Lifecycle -----------------------------------------------------------------------------

    def configure(self) -> None:
        """Build the simulator and the driver's topics, reset to the first start state.

        Nothing is published and no command moves the robot until it is activated.
        """
        self.spec = declare_task(self)
        self.params = MockRobotParams(**declare_params(self, PARAMETERS))
        lock_step = self.params.mode == 'lock_step'
        self.action_delay_steps = whole_periods(self.params.action_delay_s, self.spec.dt) \
            if lock_step else 0
        self.observation_delay_steps = whole_periods(self.params.observation_delay_s,
                                                     self.spec.dt) if lock_step else 0
        # Physics and readings only: the policy's action history is the policy's business.
        self.env = DelayedActions(make_simulator(self.spec), self.action_delay_steps)
        self.episode = 0
        self.steps = 0
        self.commands_on_time = 0
        self.commands_missing = 0
        # The longest run of steps without a new command, once commands flow: how long the
        # robot went on an old command (a swap, a busy actor).
        self.longest_command_gap = 0
        self._gap = None
        self._commands_since_step = 0
        self._command = None
        self._command_stamp_ns = 0
        self._waiting_since = None
        self._wall = Clock(clock_type=ClockType.STEADY_TIME)
        self._published_stamp_ns = None
        self._awaiting_command = False
        self._deferred_publish = False
        self._reset_stamp_ns = 0
        # free_run: commands and readings on their way, each (due in simulated ns, ...).
        self._jitter_rng = np.random.default_rng([self.params.seed, 0x6a17])
        self._pending_commands = deque()
        self._pending_readings = deque()
        self._last_due_ns = {}
        # lock_step: the readings of the last observation_delay_steps + 1 steps, oldest
        # first, each with its simulated stamp; the oldest is the one shown.
        self._measured = deque(maxlen=self.observation_delay_steps + 1)

        group = MutuallyExclusiveCallbackGroup()
        self.sensor_pubs = {}
        for source in self.spec.sources.values():
            self.sensor_pubs[source.name] = self.create_lifecycle_publisher(
                message_class(source.message_type), source.topic, qos.SENSOR)
        self.clock_pub = self.create_lifecycle_publisher(ClockMsg, '/clock', qos.SENSOR) \
            if self.params.clock == 'sim' else None
        self.create_subscription(action_message_class(self.spec.action),
                                 self.spec.action.topic, self._on_command, qos.COMMAND,
                                 callback_group=group)
        self.create_service(Trigger, '~/reset', self._on_reset, callback_group=group)
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
            f'clock {self.params.clock}, listening on {self.spec.action.topic!r}'
            f'{self._delay_text()}')

    def activate(self) -> None:
        """Step: publish the current observation (lock_step) and take commands."""
        self._gap = None
        self._commands_since_step = 0
        if self.params.mode == 'lock_step':
            self._show()
        self._publish_status()

    def deactivate(self) -> None:
        """Stop stepping; the motors stop (no command is kept for the next activation)."""
        self._command = None
        self._pending_commands.clear()
        self._publish_status()

    def cleanup(self) -> None:
        """Release the simulator (configure builds a new one)."""
        env = getattr(self, 'env', None)
        if env is not None:
            env.close()

    def _delay_text(self) -> str:
        p = self.params
        if not (p.action_delay_s or p.observation_delay_s or p.delay_jitter_s):
            return ''
        if p.mode == 'lock_step':
            for name, value, steps in (('action_delay_s', p.action_delay_s,
                                        self.action_delay_steps),
                                       ('observation_delay_s', p.observation_delay_s,
                                        self.observation_delay_steps)):
                if value and abs(steps * self.spec.dt - value) > 1e-9:
                    self.get_logger().warn(
                        f'{name} {value:g} s is not a whole number of control periods '
                        f'({self.spec.dt:g} s); lock_step delays by {steps} period(s)')
            return (f'; delays: action {self.action_delay_steps}, observation '
                    f'{self.observation_delay_steps} control period(s)')
        return (f'; delays: action {p.action_delay_s:g} s, observation '
                f'{p.observation_delay_s:g} s, jitter up to {p.delay_jitter_s:g} s')

    def timing_counts(self) -> dict:
        """free_run: physics steps, and how many had a new command before them and how many not."""
        return {'steps': self.steps, 'commands_on_time': self.commands_on_time,
                'commands_missing': self.commands_missing,
                'longest_command_gap': self.longest_command_gap}

    def _status_fields(self) -> dict:
        if not self.configured:
            return {'lifecycle': self.lifecycle_state}
        return dict(episode=self.episode, mode=self.params.mode, lifecycle=self.lifecycle_state,
                    **self.timing_counts())

    def _publish_status(self) -> None:
        self.status.publish_current()

    def _stamp_ns(self) -> int:
        if self.params.clock == 'sim':
            return self.env.stamp_ns
        return self.get_clock().now().nanoseconds

    # Publishing ----------------------------------------------------------------------------

    def _publish_clock(self) -> None:
        if self.clock_pub is not None:
            self.clock_pub.publish(ClockMsg(clock=ns_to_stamp(self.env.stamp_ns)))

    def _publish_reading(self, name: str, reading, stamp: int) -> None:
        source = self.spec.sources[name]
        frame = {'laser_scan': self.params.scan_frame,
                 'odometry': self.params.odom_frame}.get(source.kind, self.params.base_frame)
        # An image source of format jpeg or png goes out as a CompressedImage.
        msg = message_from_reading(reading, frame, self.params.base_frame, source.format)
        msg.header.stamp = ns_to_stamp(stamp)
        self.sensor_pubs[name].publish(msg)

    def _delay_ns(self, delay_s: float, key: tuple) -> int:
        """When a message for ``key`` sent now is due, in simulated ns (free_run)."""
        jitter = self._jitter_rng.uniform(0.0, self.params.delay_jitter_s) \
            if self.params.delay_jitter_s else 0.0
        due = self.env.stamp_ns + int(round((delay_s + jitter) * 1e9))
        due = max(due, self._last_due_ns.get(key, due))
        self._last_due_ns[key] = due
        return due

    def _sense(self) -> int:
        """free_run: /clock now, the sensors of this step once their delay has passed.

        Returns the stamp the sensors of this step carry.
        """
        self._publish_clock()
        # The readings the simulator's own observation was built from: rendered once, and
        # with the same noise sample the reward and termination saw.
        stamp = self._stamp_ns()
        for name, reading in self.env.current_readings().items():
            due = self._delay_ns(self.params.observation_delay_s, ('reading', name))
            self._pending_readings.append((due, name, reading, stamp))
        self._publish_due_readings()
        return stamp

    def _publish_due_readings(self) -> None:
        now = self.env.stamp_ns
        # Due times grow along each topic, not across topics: look at every waiting reading.
        waiting = deque()
        while self._pending_readings:
            entry = self._pending_readings.popleft()
            if entry[0] <= now:
                self._publish_reading(*entry[1:])
            else:
                waiting.append(entry)
        self._pending_readings = waiting

    def _show(self, stamp: int = None) -> None:
        """lock_step: /clock now, and the observation measured observation_delay_steps ago."""
        self._publish_clock()
        readings, measured_ns = self._measured[0]
        if stamp is None:
            # With a wall clock, physics has no wall time of its own: stamp on publication.
            stamp = measured_ns if self.params.clock == 'sim' \
                else self.get_clock().now().nanoseconds
        for name, reading in readings.items():
            self._publish_reading(name, reading, stamp)
        self._published_stamp_ns = stamp
        self._waiting_since = self._wall.now().nanoseconds
        self._awaiting_command = True
        self._deferred_publish = False

    def _measure(self) -> None:
        """lock_step: remember the readings of the step just taken."""
        self._measured.append((self.env.current_readings(), self.env.stamp_ns))

    # Episodes and commands -----------------------------------------------------------------

    def _reset_env(self) -> None:
        self.env.reset(seed=self.params.seed + self.episode)
        self.episode += 1
        self._command = None
        if self.params.mode != 'lock_step':
            # What was on its way belongs to the old episode.
            self._pending_commands.clear()
            self._pending_readings.clear()
            self._last_due_ns.clear()
            self._reset_stamp_ns = self._sense()
            return
        self._measured.clear()
        self._measure()
        for _ in range(self.observation_delay_steps):
            self.env.step(np.zeros(self.spec.action.size))
            self.steps += 1
            self._measure()
        self._reset_stamp_ns = self._measured[0][1] if self.params.clock == 'sim' \
            else self._stamp_ns()
        if self._awaiting_command:
            # A command answering the pre-reset observation may still be on its way; in
            # lock step it would step the new episode. Swallow it (or time out) first.
            self._deferred_publish = True
            self._waiting_since = self._wall.now().nanoseconds
            return
        self._show()

    def _on_reset(self, request, response):
        self._reset_env()
        response.success = True
        response.message = json.dumps({'stamp_ns': self._reset_stamp_ns,
                                       'episode': self.episode,
                                       'seed': self.params.seed + self.episode - 1})
        self._publish_status()
        return response

    def _on_command(self, msg) -> None:
        if not self.active:
            return  # an inactive driver takes no command
        try:
            command = action_from_message(self.spec.action, msg)
            command = self.spec.action.clip(command)
        except ValueError as error:
            # A driver drops a garbage command and keeps the last safe one.
            self.get_logger().error(f'dropped command: {error}', throttle_duration_sec=1.0)
            return
        if self.params.mode != 'lock_step':
            self._commands_since_step += 1
            due = self._delay_ns(self.params.action_delay_s, ('command',))
            self._pending_commands.append((due, command))
            return
        if self._deferred_publish:
            self.get_logger().debug('discarded a command for the observation before a reset')
            self._show()
            return
        answers = command_stamp_ns(self.spec.action, msg)
        if answers is not None and answers != self._published_stamp_ns:
            # A stamped command answers one observation; any other is stale or a duplicate.
            # An unstamped one (a driver stack's effort command) steps on arrival, as always.
            return
        self._awaiting_command = False
        self.env.step(command)
        self.steps += 1
        self._measure()
        self._show()

    def _on_physics_tick(self) -> None:
        if not self.active:
            return
        if self._commands_since_step:
            self.commands_on_time += 1
            self._gap = 0
        elif self._gap is None:
            pass   # no command yet: nothing commands this robot, so nothing is late
        else:
            self.commands_missing += 1
            self._gap += 1
            self.longest_command_gap = max(self.longest_command_gap, self._gap)
        self._commands_since_step = 0
        now = self.env.stamp_ns
        while self._pending_commands and self._pending_commands[0][0] <= now:
            # The newest command whose delay has passed drives the motors from its due time.
            self._command_stamp_ns, self._command = self._pending_commands.popleft()
        command = self._command
        age_s = (now - self._command_stamp_ns) / 1e9
        if command is None or age_s > self.params.cmd_timeout_s:
            command = [0.0] * self.spec.action.size
        self.env.step(command)
        self.steps += 1
        self._sense()

    def _on_lock_step_watch(self) -> None:
        if not self.active:
            return
        # Best-effort sensors may be lost; republish rather than stall the loop forever.
        waited = self._wall.now().nanoseconds - (self._waiting_since or 0)
        if waited > self.params.lock_step_timeout_s * 1e9:
            if self.params.clock == 'wall' and not self._deferred_publish:
                # Same observation, same stamp: a repeat, not a new step.
                self._show(self._published_stamp_ns)
            else:
                self._show()


def main(args=None) -> int:
    return run(lambda: MockRobot(), args, name='mock_robot')


if __name__ == '__main__':
    sys.exit(main())
