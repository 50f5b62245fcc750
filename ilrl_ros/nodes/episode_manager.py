"""The ``episode_manager`` node: episode boundaries, outcomes, and resets.

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
"""

from dataclasses import dataclass
import json
import sys

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.core.episode import end_flags, EpisodeResult
from ilrl_ros.core.episode.reward import RewardFunction
from ilrl_ros.core.episode.termination import Termination
from ilrl_ros.core.observation import ObservationAssembler
from ilrl_ros.core.world import make_world
from ilrl_ros.messages import action_from_message, action_message_class
from ilrl_ros.nodes.common import (declare_sync_tolerance, declare_task, run, SafeNode,
                                   SourceSubscriptions)
from ilrl_ros.nodes.params import declare_params, Param

WAITING, RUNNING, RESETTING = 'waiting', 'running', 'resetting'
ABORTED = 'aborted'


PARAMETERS = (
    Param('reset_service', 'mock_robot/reset', 'std_srvs/Trigger service that resets the '
          'robot; empty: wait for an operator to call ~/confirm_reset.'),
    Param('max_episodes', 0, 'Stop after this many episodes (no reset after the last); 0: no '
          'limit.', low=0, high=10**9),
    Param('policy_status_topic', 'policy/status', 'Latched policy status, to label results '
          'with the checkpoint that ran.'),
    Param('reset_on_start', True, 'Reset the robot before the first episode, so it starts from '
          'a known state rather than wherever the robot was when this node came up.'),
)


@dataclass(frozen=True)
class EpisodeManagerParams:
    """The episode manager's parameters (PARAMETERS, by name)."""

    reset_service: str
    max_episodes: int
    policy_status_topic: str
    reset_on_start: bool


class EpisodeManager(SafeNode):
    """Decide termination, publish results, trigger resets; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('episode_manager', **kwargs)
        self.spec = declare_task(self)
        self.params = EpisodeManagerParams(**declare_params(self, PARAMETERS))
        world = make_world(self.spec)
        self.reward = RewardFunction(self.spec, world)
        self.termination = Termination(self.spec, world)
        sources = tuple(dict.fromkeys(self.reward.sources + self.termination.sources))
        self.assembler = ObservationAssembler(self.spec, sources=sources,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        self.state = WAITING
        self.episode = 0
        self.results = []
        self._return = 0.0
        self._length = 0
        self._previous = None
        self._previous_stamp = 0
        self._action = np.zeros(self.spec.action.size)
        self._policy_label = ''

        group = MutuallyExclusiveCallbackGroup()
        self.result_pub = self.create_publisher(String, 'episode/result', qos.EVENTS)
        self.event_pub = self.create_publisher(String, 'episode/event', qos.EVENTS)
        self.step_pub = self.create_publisher(String, 'episode/step', qos.STEPS)
        self.sources = SourceSubscriptions(self, self.spec, sources, self._on_reading,
                                           self._on_error, group, qos.SENSOR_EVERY)
        self.create_subscription(action_message_class(self.spec.action),
                                 self.spec.action.topic, self._on_command, qos.COMMAND,
                                 callback_group=group)
        self.create_subscription(String, self.params.policy_status_topic, self._on_policy,
                                 qos.LATCHED, callback_group=group)
        self.reset_client = self.create_client(Trigger, self.params.reset_service,
                                               callback_group=group) \
            if self.params.reset_service else None
        self.create_service(Trigger, '~/confirm_reset', self._on_confirm_reset,
                            callback_group=group)
        self.create_service(Trigger, '~/restart', self._on_restart, callback_group=group)
        if self.params.reset_on_start:
            self.state = RESETTING
            # Steady clock: simulated time does not move while the robot waits for us.
            self._start_timer = self.create_timer(
                0.1, self._reset_on_start, callback_group=group,
                clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f'episode manager for task {self.spec.name!r}: reset via '
            f'{self.params.reset_service or "operator (~/confirm_reset)"}')

    def _reset_on_start(self) -> None:
        if self.reset_client is not None and not self.reset_client.service_is_ready():
            return
        self._start_timer.cancel()
        self._request_reset()

    def _on_error(self, source: str, text: str) -> None:
        self.get_logger().error(f'cannot judge the episode: {text}', throttle_duration_sec=1.0)

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

    def _event(self, **fields) -> None:
        self.event_pub.publish(String(data=json.dumps(fields)))

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading, self.get_clock().now().nanoseconds)
        if self.state != RESETTING:
            self._process()

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
            return
        reward, _ = self.reward.step(self._previous, self._action, readings)
        self._previous = readings
        self._return += reward
        self._length += 1
        outcome = self.termination.check(readings, stamp)
        self._publish_step(stamp, reward, outcome, self.termination.timed_out)
        self._previous_stamp = stamp
        if outcome is not None:
            self._finish(outcome, stamp)

    def _publish_step(self, stamp: int, reward: float, outcome, timed_out: bool) -> None:
        terminated, truncated = end_flags(outcome, timed_out)
        self.step_pub.publish(String(data=json.dumps(
            {'episode': self.episode, 'stamp_ns': stamp, 'step': self._length,
             'previous_stamp_ns': self._previous_stamp, 'start_ns': self._start_ns,
             'reward': reward, 'outcome': outcome, 'terminated': terminated,
             'truncated': truncated})))

    def _finish(self, outcome: str, stamp: int) -> None:
        result = EpisodeResult(episode=self.episode, outcome=outcome,
                               episode_return=self._return, length=self._length,
                               duration_s=(stamp - self._start_ns) / 1e9,
                               policy=self._policy_label)
        self.results.append(result)
        self.result_pub.publish(String(data=json.dumps(result.as_dict())))
        self._event(event='end', episode=self.episode, outcome=outcome, stamp_ns=stamp)
        self.get_logger().info(f'episode {self.episode}: {outcome}, return '
                               f'{self._return:.2f}, {self._length} steps')
        self.state = RESETTING
        if self.params.max_episodes and self.episode >= self.params.max_episodes:
            self.get_logger().info(f'{self.episode} episodes done; not resetting')
            return
        self._request_reset()

    def _request_reset(self) -> None:
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
        not_before = 0
        try:
            not_before = int(json.loads(response.message).get('stamp_ns', 0))
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            not_before = self.get_clock().now().nanoseconds
        self._begin_waiting(not_before)

    def _on_restart(self, request, response):
        # Abort the running episode (its result says so) and reset, e.g. after a policy swap.
        if self.state == RESETTING:
            response.success = False
            response.message = 'a reset is already under way'
            return response
        stamp = self.assembler.newest_stamp_ns()
        if self.state == RUNNING:
            self._finish(ABORTED, max(stamp, self._start_ns))
        else:
            self.state = RESETTING
            self._request_reset()
        response.success = True
        response.message = f'episode {self.episode} aborted; resetting'
        return response

    def _on_confirm_reset(self, request, response):
        if self.state != RESETTING:
            response.success = False
            response.message = f'no reset pending (state: {self.state})'
            return response
        self._begin_waiting(self.get_clock().now().nanoseconds)
        response.success = True
        response.message = f'episode {self.episode + 1} starts with the next observation'
        return response

    def _begin_waiting(self, not_before_ns: int) -> None:
        self.assembler.clear(not_before_ns)
        self.state = WAITING
        self._process()


def main(args=None) -> int:
    return run(lambda: EpisodeManager(), args, name='episode_manager')


if __name__ == '__main__':
    sys.exit(main())
