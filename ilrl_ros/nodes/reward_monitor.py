"""The ``reward_monitor`` node: the task's reward r_t and the running return, live.

For every new synchronised set of the reward terms' inputs it computes
r_t = R(readings before, last command, readings now) with the spec's terms, and publishes
``reward`` and ``return`` (std_msgs/Float64), and on ``reward/terms`` a JSON object with
the stamp, reward, return, per-term values and the stamp of the episode's start (a step
first scored before the start was announced is scored again, and a learner matching rewards
by stamp takes the one with its episode's start). The return restarts when the episode manager
announces a new episode.
"""

from collections import deque
import json
import sys

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from std_msgs.msg import Float64, String

from ilrl_ros import qos
from ilrl_ros.core.episode.reward import RewardFunction
from ilrl_ros.core.observation import ObservationAssembler
from ilrl_ros.core.world import make_world
from ilrl_ros.messages import action_from_message, action_message_class
from ilrl_ros.nodes.common import (declare_sync_tolerance, declare_task, run, SafeNode,
                                   SourceSubscriptions)


class RewardMonitor(SafeNode):
    """Publish the reward and running return; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('reward_monitor', **kwargs)
        self.spec = declare_task(self)
        self.reward = RewardFunction(self.spec, make_world(self.spec))
        self.assembler = ObservationAssembler(self.spec, sources=self.reward.sources,
                                              sync_tolerance_s=declare_sync_tolerance(self))
        self._previous = None
        self._action = np.zeros(self.spec.action.size)
        self.episode_return = 0.0
        self._start_ns = 0
        self._history = deque(maxlen=50)
        group = MutuallyExclusiveCallbackGroup()
        self.reward_pub = self.create_publisher(Float64, 'reward', qos.COMMAND)
        self.return_pub = self.create_publisher(Float64, 'return', qos.COMMAND)
        self.terms_pub = self.create_publisher(String, 'reward/terms', qos.STEPS)
        self.sources = SourceSubscriptions(self, self.spec, self.reward.sources,
                                           self._on_reading, self._on_error, group,
                                           qos.SENSOR_EVERY)
        self.create_subscription(action_message_class(self.spec.action),
                                 self.spec.action.topic, self._on_command, qos.COMMAND,
                                 callback_group=group)
        self.create_subscription(String, 'episode/event', self._on_event, qos.EVENTS,
                                 callback_group=group)
        self.get_logger().info(f'reward monitor for task {self.spec.name!r}: terms '
                               f'{", ".join(t.kind for t in self.spec.reward)}')

    def _on_error(self, source: str, text: str) -> None:
        self.get_logger().error(f'no reward: {text}', throttle_duration_sec=1.0)

    def _on_command(self, msg) -> None:
        try:
            self._action = self.spec.action.clip(action_from_message(self.spec.action, msg))
        except ValueError as error:
            self._on_error('command', str(error))

    def _on_event(self, msg: String) -> None:
        try:
            event = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        if not isinstance(event, dict) or event.get('event') != 'start':
            return
        # The episode starts at the stamp the manager names. Its first observations may
        # already have been scored as part of the old episode: score them again.
        self._start_ns = int(event.get('stamp_ns', 0))
        self._previous = None
        self.episode_return = 0.0
        for stamp, readings, action in list(self._history):
            if stamp >= self._start_ns:
                self._score(readings, stamp, action)

    def _on_reading(self, source: str, reading) -> None:
        self.assembler.update(source, reading, self.get_clock().now().nanoseconds)
        found = self.assembler.poll_readings()
        if found is None:
            return
        readings, stamp = found
        self._history.append((stamp, readings, self._action))
        if stamp >= self._start_ns:
            self._score(readings, stamp, self._action)

    def _score(self, readings: dict, stamp: int, action) -> None:
        if self._previous is None:
            self.reward.reset(readings)
            self._previous = readings
            return
        reward, terms = self.reward.step(self._previous, action, readings)
        self._previous = readings
        self.episode_return += reward
        self.reward_pub.publish(Float64(data=reward))
        self.return_pub.publish(Float64(data=self.episode_return))
        self.terms_pub.publish(String(data=json.dumps(
            {'stamp_ns': stamp, 'reward': reward, 'return': self.episode_return,
             'terms': terms, 'episode_start_ns': self._start_ns})))


def main(args=None) -> int:
    return run(lambda: RewardMonitor(), args, name='reward_monitor')


if __name__ == '__main__':
    sys.exit(main())
