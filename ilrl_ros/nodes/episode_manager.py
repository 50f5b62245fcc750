"""The ``episode_manager`` node: episode boundaries, outcomes, safety and resets.

On every new synchronised set of its inputs it scores the step with the spec's reward terms
and checks the termination conditions (success, failure, timeout). When an episode ends it
publishes the result on ``episode/result`` (a JSON object: episode, outcome, success,
return, length, duration_s, policy) and asks for a reset: by calling the robot's reset
service (a mock robot), or, with ``reset_service`` empty, by waiting for an operator to call
``~/confirm_reset`` once the real robot is back in a start state. ``~/restart`` aborts the
running episode (outcome ``aborted``) and resets, e.g. right after a policy swap.

Every judged step is also published on ``episode/step`` (a JSON object: episode, stamp_ns,
step, previous_stamp_ns, start_ns, reward, outcome, terminated, truncated), so that a
learner over the graph (``RosEnv``, the transition publisher) knows for each observation
whether the episode went on.

It is also the graph's safety supervisor while it learns:

- **Safe set** (the spec's ``safety:``): a step whose readings leave it ends the episode as
  ``unsafe`` (terminated); the node commands zero on the action topic at once, logs why, and
  resets as usual.
- **E-stop** (``e_stop``, std_msgs/Bool, the policy's topic): pressing it ends a running
  episode as ``estop`` and commands zero; no reset is asked for and no episode starts until
  it is released; then it resets and goes on.
- **Reset controller** (``reset_controller``): instead of the reset service or an operator,
  a controller (the task's expert, a scripted routine such as ``pendulum_rest``, or a
  checkpoint) drives the robot from each new reading until the spec's ``reset:`` start state
  holds. It announces ``{"event": "reset", "by": <controller>}`` on ``episode/event`` first
  (the policy stays silent until the next ``start``), commands zero when the start state is
  reached, and the next episode begins with the next reading. If ``reset_timeout_s``
  (wall-clock) passes first, or the robot leaves the safe set, or the controller fails, it
  commands zero, publishes ``{"event": "reset_failed", "by": ..., "reason": ...}`` and waits
  for ``~/confirm_reset`` (or ``~/restart`` to try the controller again).

Whatever a callback raises, the node commands zero (``SafeNode``'s barrier, ``fail_safe``).

It is a managed (lifecycle) node: it judges episodes only while active; deactivating it ends
a running episode as ``aborted`` and stops a reset controller at zero. ``~/status``
(latched, once a second) carries its state, the episode and the episodes ended.
"""

from dataclasses import dataclass
import json
import sys
import time

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.core.episode import ABORTED, end_flags, EpisodeResult, ESTOP, UNSAFE
from ilrl_ros.core.episode.reset import StartCondition
from ilrl_ros.core.episode.reward import RewardFunction
from ilrl_ros.core.episode.safety import SafeSet
from ilrl_ros.core.episode.termination import Termination
from ilrl_ros.core.observation import ObservationAssembler
from ilrl_ros.core.reset_controllers import make_reset_controller
from ilrl_ros.core.world import make_world
from ilrl_ros.messages import action_from_message, action_message, action_message_class
from ilrl_ros.nodes.common import (declare_sync_tolerance, declare_task, run,
                                   SafeLifecycleNode, SourceSubscriptions, StatusPublisher,
                                   SYNC_TOLERANCE, TASK)
from ilrl_ros.nodes.params import declare_params, Param

# WAITING: for the first reading of the next episode; RESETTING: for the reset service, an
# operator or the e-stop's release; DRIVING: a reset controller drives to a start state.
WAITING, RUNNING, RESETTING, DRIVING = 'waiting', 'running', 'resetting', 'driving'
# How often the reset controller's deadline is looked at (wall clock).
RESET_WATCH_PERIOD_S = 0.05
# Period of ~/status (wall clock).
STATUS_PERIOD_S = 1.0


PARAMETERS = (
    Param('reset_service', 'mock_robot/reset', 'std_srvs/Trigger service that resets the '
          'robot; empty: wait for an operator to call ~/confirm_reset.'),
    Param('max_episodes', 0, 'Stop after this many episodes (no reset after the last); 0: no '
          'limit.', low=0, high=10**9),
    Param('policy_status_topic', 'policy/status', 'Latched policy status, to label results '
          'with the checkpoint that ran.'),
    Param('reset_on_start', True, 'Reset the robot before the first episode, so it starts from '
          'a known state rather than wherever the robot was when this node came up.'),
    Param('reset_controller', '', "What drives the robot back to a start state (the task "
          "spec's reset block) between episodes: '' for the reset service or an operator; "
          "'expert' (the task's expert); a scripted routine (pendulum_rest); or "
          "'checkpoint:<folder>' (a trained policy)."),
    Param('reset_timeout_s', 30.0, 'Wall-clock seconds a reset controller may take to reach '
          'a start state; then it stops, and an operator confirms the reset.',
          low=0.01, high=86400.0),
    Param('frame_id', 'base_link', 'frame_id of the stamped commands this node sends (zero '
          'on leaving the safe set or an e-stop, a reset controller).'),
    Param('command_topic', '', "Where those commands go (the command arbiter's safety input "
          "in the graph); empty: the task spec's command topic."),
)


@dataclass(frozen=True)
class EpisodeManagerParams:
    """The episode manager's parameters (PARAMETERS, by name)."""

    reset_service: str
    max_episodes: int
    policy_status_topic: str
    reset_on_start: bool
    reset_controller: str
    reset_timeout_s: float
    frame_id: str
    command_topic: str


class EpisodeManager(SafeLifecycleNode):
    """Decide termination, publish results, trigger resets; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('episode_manager', **kwargs)
        # Declared now, so that `ros2 param` shows them before configure; configure reads them.
        declare_params(self, (TASK, SYNC_TOLERANCE, *PARAMETERS))
        self.state = WAITING
        self.episode = 0
        self.results = []
        self._estop = False
        self._reset_failure = ''
        self._start_timer = None
        self.status = StatusPublisher(self, self._status_fields, STATUS_PERIOD_S)
        self.start_lifecycle()

    # Lifecycle -----------------------------------------------------------------------------

    def configure(self) -> None:
        """Load the spec's reward, termination and safety terms and the reset controller."""
        self.spec = declare_task(self)
        self.params = EpisodeManagerParams(**declare_params(self, PARAMETERS))
        world = make_world(self.spec)
        self.reward = RewardFunction(self.spec, world)
        self.termination = Termination(self.spec, world)
        self.safe_set = SafeSet(self.spec, world)
        # A controller that cannot drive this task refuses to start (ValueError).
        self.controller = make_reset_controller(self.spec, self.params.reset_controller)
        self.start_condition = StartCondition(self.spec, world) \
            if self.controller is not None else None
        sources = self.reward.sources + self.termination.sources + self.safe_set.sources
        if self.controller is not None:
            sources += self.start_condition.sources + tuple(self.controller.sources)
        sources = tuple(dict.fromkeys(sources))
        self.assembler = ObservationAssembler(self.spec, sources=sources,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        self.state = WAITING
        self.episode = 0
        self.results = []
        self._return = 0.0
        self._length = 0
        self._previous = None
        self._previous_stamp = 0
        self._start_ns = 0
        self._action = np.zeros(self.spec.action.size)
        self._zero = np.zeros(self.spec.action.size)
        self._policy_label = ''
        self._estop = False
        # A reset owed, held back while the e-stop is engaged.
        self._reset_deferred = False
        # Why the reset controller last failed ('' if it did not): ~/restart tries again.
        self._reset_failure = ''
        self._reset_previous = None
        self._reset_deadline_ns = 0
        # Whether the last command this node sent was not zero: the one it undoes on stop.
        self._moving = False
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)

        self._group = group = MutuallyExclusiveCallbackGroup()
        self.result_pub = self.create_publisher(String, 'episode/result', qos.EVENTS)
        self.event_pub = self.create_publisher(String, 'episode/event', qos.EVENTS)
        self.step_pub = self.create_publisher(String, 'episode/step', qos.STEPS)
        self.command_pub = self.create_publisher(
            action_message_class(self.spec.action),
            self.params.command_topic or self.spec.action.topic, qos.COMMAND)
        self.sources = SourceSubscriptions(self, self.spec, sources, self._on_reading,
                                           self._on_error, group, qos.SENSOR_EVERY)
        self.create_subscription(action_message_class(self.spec.action),
                                 self.spec.action.topic, self._on_command, qos.COMMAND,
                                 callback_group=group)
        self.create_subscription(String, self.params.policy_status_topic, self._on_policy,
                                 qos.LATCHED, callback_group=group)
        self.create_subscription(Bool, 'e_stop', self._on_estop, qos.COMMAND,
                                 callback_group=group)
        self.reset_client = self.create_client(Trigger, self.params.reset_service,
                                               callback_group=group) \
            if self.params.reset_service else None
        self.create_service(Trigger, '~/confirm_reset', self._on_confirm_reset,
                            callback_group=group)
        self.create_service(Trigger, '~/restart', self._on_restart, callback_group=group)
        if self.controller is not None:
            self.create_timer(RESET_WATCH_PERIOD_S, self._watch_reset, callback_group=group,
                              clock=self._steady)
        if self.controller is not None:
            how = f'reset controller {self.params.reset_controller!r}'
        else:
            how = self.params.reset_service or 'operator (~/confirm_reset)'
        limits = "the spec's safety limits" if self.safe_set else 'none'
        self.get_logger().info(
            f'episode manager for task {self.spec.name!r}: reset via {how}; safe set: {limits}')

    def activate(self) -> None:
        """Judge episodes from the next reading on (after a reset, with reset_on_start)."""
        self.state = WAITING
        if self.params.reset_on_start:
            self.state = RESETTING
            # Steady clock: simulated time does not move while the robot waits for us.
            self._start_timer = self.create_timer(
                0.1, self._reset_on_start, callback_group=self._group, clock=self._steady)
        self._publish_status()

    def deactivate(self) -> None:
        """Stop driving (zero), end the running episode as aborted, and reset nothing."""
        if self._start_timer is not None:
            self.destroy_timer(self._start_timer)
            self._start_timer = None
        if self._moving or self.state == DRIVING:
            self._send_zero(force=True)
        if self.state == RUNNING:
            self._finish(ABORTED, max(self.assembler.newest_stamp_ns(), self._start_ns),
                         'the episode manager was deactivated', reset=False)
        self.state = WAITING
        self._publish_status()

    def _status_fields(self) -> dict:
        return dict(state=self.state if self.active else 'inactive',
                    lifecycle=self.lifecycle_state, episode=self.episode,
                    episodes_ended=len(self.results), estop=self._estop,
                    reset_failure=self._reset_failure)

    def _publish_status(self) -> None:
        self.status.publish_current()

    # Commands -----------------------------------------------------------------------------

    def _send(self, action: np.ndarray, stamp_ns: int = None, force: bool = False) -> None:
        if not (self.active or force):
            return  # inactive: nothing from this node commands the robot
        if stamp_ns is None:
            stamp_ns = self.assembler.newest_stamp_ns()
            if stamp_ns <= 0:
                # No reading yet: the command carries the time it is sent, never 0.
                stamp_ns = self.get_clock().now().nanoseconds or time.time_ns()
        self.command_pub.publish(action_message(self.spec.action, action, stamp_ns,
                                                self.params.frame_id))
        self._moving = bool(np.any(action != 0.0))

    def _send_zero(self, stamp_ns: int = None, force: bool = False) -> None:
        self._send(self._zero, stamp_ns, force=force)

    def fail_safe(self) -> None:
        """Command zero (any fault: the state cannot be judged); stop a reset controller."""
        if not self.configured:
            return  # no spec, no command publisher: nothing was commanded
        if self.stopping:
            if self._moving:
                self._send_zero(force=True)
            return
        self._send_zero()
        if self.state == DRIVING:
            self._reset_failed(f'the reset controller stopped on a fault: {self.last_fault}')

    def command_publishers(self) -> tuple:
        return (self.command_pub,) if self.configured else ()

    # Inputs -------------------------------------------------------------------------------

    def _reset_on_start(self) -> None:
        if not self.active:
            return
        if self.state != RESETTING:
            # An operator confirmed a reset before this first one was asked for: the episode
            # they were told starts must not wait for a second confirmation.
            self.destroy_timer(self._start_timer)
            self._start_timer = None
            return
        if self.reset_client is not None and self.controller is None \
                and not self.reset_client.service_is_ready():
            return
        self.destroy_timer(self._start_timer)
        self._start_timer = None
        self._request_reset()

    def _on_error(self, source: str, text: str) -> None:
        self.get_logger().error(f'cannot judge the episode: {text}', throttle_duration_sec=1.0)
        if self.state == DRIVING:
            # A controller must not act on what it cannot read: hold the robot still.
            self._send_zero()

    def _on_policy(self, msg: String) -> None:
        try:
            self._policy_label = str(json.loads(msg.data).get('checkpoint', ''))
        except (json.JSONDecodeError, AttributeError):
            self._policy_label = ''

    def _on_command(self, msg) -> None:
        try:
            self._action = self.spec.action.clip(action_from_message(self.spec.action, msg))
        except ValueError as error:
            self._on_error('command', str(error))

    def _on_estop(self, msg: Bool) -> None:
        pressed = bool(msg.data)
        if pressed == self._estop:
            return
        self._estop = pressed
        if not self.active:
            return  # remembered: an activation while it is pressed starts nothing
        if not pressed:
            owed = self._reset_deferred and self.state == RESETTING
            self.get_logger().info(f'e-stop released{"; resetting" if owed else ""}')
            if owed:
                self._request_reset()
            return
        self.get_logger().warn(f'e-stop engaged ({self.state}): commanding zero; no episode '
                               f'starts until it is released')
        self._send_zero()
        if self.state == RUNNING:
            self._finish(ESTOP, max(self.assembler.newest_stamp_ns(), self._start_ns),
                         'the e-stop was pressed')
        elif self.state in (WAITING, DRIVING):
            # The robot may be moved while it is stopped: reset again once released.
            self.state = RESETTING
            self._reset_deferred = True

    def _event(self, **fields) -> None:
        self.event_pub.publish(String(data=json.dumps(fields)))

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading, self.get_clock().now().nanoseconds)
        if not self.active:
            return
        if self.state == DRIVING:
            found = self.assembler.poll_readings()
            if found is not None:
                self._drive(*found)
        elif self.state != RESETTING:
            self._process()

    # Episodes -----------------------------------------------------------------------------

    def _process(self) -> None:
        found = self.assembler.poll_readings()
        if found is None:
            return
        readings, stamp = found
        if self.state == WAITING:
            if self.params.max_episodes and self.episode >= self.params.max_episodes:
                return
            self.episode += 1
            self.reward.reset(readings)
            self.termination.reset(readings, stamp)
            self._return, self._length, self._previous = 0.0, 0, readings
            self._start_ns = self._previous_stamp = stamp
            self.state = RUNNING
            self._event(event='start', episode=self.episode, stamp_ns=stamp)
            self._publish_status()
            return
        reward, _ = self.reward.step(self._previous, self._action, readings)
        self._previous = readings
        self._return += reward
        self._length += 1
        outcome = self.termination.check(readings, stamp)
        timed_out = self.termination.timed_out
        unsafe = self.safe_set.check(readings)
        if unsafe is not None:
            # The supervisor's stop comes first; the step and the result say why after it.
            self._send_zero(stamp)
            self.get_logger().error(f'episode {self.episode} left the safe set: {unsafe}; '
                                    f'commanded zero')
            outcome, timed_out = UNSAFE, False
        self._publish_step(stamp, reward, outcome, timed_out)
        self._previous_stamp = stamp
        if outcome is not None:
            self._finish(outcome, stamp, unsafe or '')

    def _publish_step(self, stamp: int, reward: float, outcome, timed_out: bool) -> None:
        terminated, truncated = end_flags(outcome, timed_out)
        self.step_pub.publish(String(data=json.dumps(
            {'episode': self.episode, 'stamp_ns': stamp, 'step': self._length,
             'previous_stamp_ns': self._previous_stamp, 'start_ns': self._start_ns,
             'reward': reward, 'outcome': outcome, 'terminated': terminated,
             'truncated': truncated})))

    def _finish(self, outcome: str, stamp: int, reason: str = '', reset: bool = True) -> None:
        result = EpisodeResult(episode=self.episode, outcome=outcome,
                               episode_return=self._return, length=self._length,
                               duration_s=(stamp - self._start_ns) / 1e9,
                               policy=self._policy_label)
        self.results.append(result)
        self.result_pub.publish(String(data=json.dumps(result.as_dict())))
        end = {'event': 'end', 'episode': self.episode, 'outcome': outcome, 'stamp_ns': stamp}
        self._event(**end, **({'reason': reason} if reason else {}))
        self.get_logger().info(f'episode {self.episode}: {outcome}, return '
                               f'{self._return:.2f}, {self._length} steps')
        self.state = RESETTING
        self._publish_status()
        if not reset:
            return
        if self.params.max_episodes and self.episode >= self.params.max_episodes:
            self.get_logger().info(f'{self.episode} episodes done; not resetting')
            return
        self._request_reset()

    # Resets -------------------------------------------------------------------------------

    def _request_reset(self) -> None:
        self.state = RESETTING
        if self._estop:
            self._reset_deferred = True
            self.get_logger().warn('e-stop engaged: the reset waits for its release')
            return
        self._reset_deferred = False
        self._reset_failure = ''
        if self.controller is not None:
            self._start_reset_controller()
            return
        if self.reset_client is None:
            self.get_logger().info('waiting for an operator to call ~/confirm_reset')
            return
        if not self.reset_client.service_is_ready():
            self.get_logger().warn(f'reset service {self.params.reset_service} not ready; '
                                   'waiting for it')
        future = self.reset_client.call_async(Trigger.Request())
        future.add_done_callback(self._on_reset_done)

    def _on_reset_done(self, future) -> None:
        try:
            response = future.result()
        except Exception as error:  # noqa: BLE001 - any failure: report and stay put
            self.get_logger().error(f'reset failed: {error}')
            return
        if self.state != RESETTING or not self.active:
            return  # an operator confirmed the reset meanwhile, or the node was deactivated
        if self._estop:
            self._reset_deferred = True
            return
        not_before = 0
        try:
            not_before = int(json.loads(response.message).get('stamp_ns', 0))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            not_before = self.get_clock().now().nanoseconds
        self._begin_waiting(not_before)

    def _start_reset_controller(self) -> None:
        name = self.params.reset_controller
        self.state = DRIVING
        self._reset_previous = None
        self.start_condition.reset()
        self.controller.reset()
        self._reset_deadline_ns = self._steady.now().nanoseconds + \
            int(self.params.reset_timeout_s * 1e9)
        self._event(event='reset', by=name, stamp_ns=self.assembler.newest_stamp_ns())
        self.get_logger().info(f'reset controller {name!r} drives the robot to a start state')
        # Act on the newest readings at once: a lock-step robot waits for a command that
        # answers them before it publishes again.
        if self.assembler.complete_set():
            try:
                self._drive(self.assembler.readings(), self.assembler.newest_stamp_ns())
            except Exception as error:  # noqa: BLE001 - the barrier, for the controller alone
                # The reset has begun whoever asked for it; its failure is the reset's.
                self.on_fault(f'reset controller {name!r}', error)

    def _drive(self, readings: dict, stamp: int) -> None:
        """One step of the reset controller, on a new set of readings."""
        unsafe = self.safe_set.check(readings)
        if unsafe is not None:
            self._reset_failed(f'the robot left the safe set: {unsafe}', stamp)
            return
        if self.start_condition.update(readings, stamp):
            self._send_zero(stamp)
            self.get_logger().info(f'start state reached by {self.params.reset_controller!r}')
            self._begin_waiting(stamp + 1)
            return
        action = self.spec.action.clip(self.controller.act(readings))
        action = self.spec.action.limit_change(self._reset_previous, action)
        self._reset_previous = action
        self._send(action, stamp)

    def _watch_reset(self) -> None:
        if self.active and self.state == DRIVING \
                and self._steady.now().nanoseconds > self._reset_deadline_ns:
            self._reset_failed(f'no start state within reset_timeout_s '
                               f'{self.params.reset_timeout_s:g} s: '
                               f'{self.start_condition.unmet}')

    def _reset_failed(self, reason: str, stamp_ns: int = None) -> None:
        name = self.params.reset_controller
        self._send_zero(stamp_ns)
        self.state = RESETTING
        self._reset_failure = reason
        self._event(event='reset_failed', by=name, reason=reason,
                    stamp_ns=self.assembler.newest_stamp_ns())
        self.get_logger().error(f'reset by {name!r} failed: {reason}; commanded zero; waiting '
                                f'for an operator to call ~/confirm_reset (or ~/restart to '
                                f'try again)')

    def _inactive_refusal(self, response):
        response.success = False
        response.message = (f'the episode manager is {self.lifecycle_state}; activate it first '
                            '(ros2 lifecycle set /episode_manager activate)')
        return response

    def _on_restart(self, request, response):
        # Abort the running episode (its result says so) and reset, e.g. after a policy swap.
        if not self.active:
            return self._inactive_refusal(response)
        if self._estop:
            response.success = False
            response.message = 'the e-stop is engaged; release it first'
            return response
        if self.state == DRIVING or (self.state == RESETTING and not self._reset_failure):
            response.success = False
            response.message = 'a reset is already under way'
            return response
        stamp = self.assembler.newest_stamp_ns()
        if self.state == RUNNING:
            self._finish(ABORTED, max(stamp, self._start_ns))
            response.message = f'episode {self.episode} aborted; resetting'
        else:
            # No episode runs (none started since the last reset): nothing is aborted, and
            # the next episode keeps the number it was announced with. The first number said
            # is the last episode that began: results numbered above it come after this call.
            self._request_reset()
            response.message = (f'episode {self.episode} was the last to run; none is running, '
                                f'so none is aborted; resetting: the next is episode '
                                f'{self.episode + 1}')
        response.success = True
        return response

    def _on_confirm_reset(self, request, response):
        if not self.active:
            return self._inactive_refusal(response)
        if self._estop:
            response.success = False
            response.message = 'the e-stop is engaged; release it before confirming a reset'
            return response
        if self.state not in (RESETTING, DRIVING):
            response.success = False
            response.message = f'no reset pending (state: {self.state})'
            return response
        if self.params.max_episodes and self.episode >= self.params.max_episodes:
            response.success = False
            response.message = (f'max_episodes {self.params.max_episodes} have run; no episode '
                                'starts')
            return response
        if self.state == DRIVING:
            self._send_zero()
        self._begin_waiting(self.get_clock().now().nanoseconds)
        response.success = True
        response.message = f'episode {self.episode + 1} starts with the next observation'
        return response

    def _begin_waiting(self, not_before_ns: int) -> None:
        self._reset_failure = ''
        self.assembler.clear(not_before_ns)
        self.state = WAITING
        self._process()


def main(args=None) -> int:
    return run(lambda: EpisodeManager(), args, name='episode_manager')


if __name__ == '__main__':
    sys.exit(main())
