"""``RosEnv``: a gymnasium environment over a running ilrl_ros graph.

Any gymnasium learner can act on a robot (or a mock robot) through the graph's topics:

- observations are assembled from the spec's sensor topics exactly as the policy node
  assembles them (same spec, same ``ObservationAssembler``, same checks);
- ``step(action)`` clamps the action to the spec's bounds (and its change per step to
  ``action.max_delta``, where the spec has it), publishes it as the policy does, on the
  command arbiter's policy input (``command_topic``: ``arbiter/policy``; the spec's command
  topic for a graph without an arbiter), stamped with the observation it answers, and
  returns the next step: its
  observation, the reward monitor's reward for it (matched by stamp), and terminated /
  truncated from the episode manager's verdict (``episode/step``);
- ``reset()`` goes through the episode manager: the running episode is restarted
  (``episode_manager/restart``) unless it just ended, and the first observation of the next
  episode is returned. Start states are the robot's: a mock robot's ``seed`` parameter
  decides them, so ``reset(seed=...)`` seeds nothing but this object's ``np_random``.

With a ``lock_step`` mock robot each step is one physics step and the run is
deterministic. With a free-running robot (or a real one) the world does not wait: if the
caller is slow, ``step`` returns the first step the action could have influenced and says in
``info['skipped']`` how many world steps passed without a fresh action. An episode that
ended in between is reported, never skipped.

    from ilrl_ros.ros_env import RosEnv
    env = RosEnv('pendulum')                 # with `ilrl sim --task pendulum` running
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
"""

from collections import deque
import time

import gymnasium as gym
import numpy as np

from ilrl_ros import qos
from ilrl_ros.core.spec import load_spec, TaskSpec
from ilrl_ros.graph import ARBITER_INPUTS
from ilrl_ros.messages import action_message, action_message_class


class RosEnvTimeout(TimeoutError):
    """The graph did not answer in time; the message says what was missing."""


class RosEnv(gym.Env):
    """A gymnasium environment whose world is the running ROS 2 graph; see the module doc."""

    metadata = {'render_modes': []}

    def __init__(self, spec, *, context=None, namespace: str = '', use_sim_time: bool = True,
                 step_timeout_s: float = 10.0, reset_timeout_s: float = 60.0,
                 episode_manager: str = 'episode_manager', frame_id: str = 'base_link',
                 command_topic: str = ARBITER_INPUTS['policy']):
        import rclpy
        from rclpy.parameter import Parameter
        from std_srvs.srv import Trigger

        from ilrl_ros.nodes.common import SafeNode, Spinner
        from ilrl_ros.transitions import LoopListener
        self.spec = spec if isinstance(spec, TaskSpec) else load_spec(spec)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.spec.observation.size,),
                                                np.float32)
        self.action_space = gym.spaces.Box(self.spec.action.low.astype(np.float32),
                                           self.spec.action.high.astype(np.float32))
        self.step_timeout_s, self.reset_timeout_s = float(step_timeout_s), \
            float(reset_timeout_s)
        self.frame_id = frame_id
        self._own_context = context is None
        self.context = context or rclpy.Context()
        if self._own_context:
            rclpy.init(context=self.context)
        self.node = SafeNode('ros_env', context=self.context, namespace=namespace,
                             parameter_overrides=[Parameter('use_sim_time',
                                                            value=use_sim_time)])
        self.listener = LoopListener(self.node, self.spec, listen_commands=False)
        self.command_topic = command_topic or self.spec.action.topic
        self.command_pub = self.node.create_publisher(
            action_message_class(self.spec.action), self.command_topic, qos.COMMAND)
        self.restart_client = self.node.create_client(Trigger, f'{episode_manager}/restart')
        self._trigger = Trigger
        self.spinner = Spinner([self.node], context=self.context).start()
        self._episode = None
        self._stamp = None
        self._previous_command = None
        self._done = True
        self._ready = deque()
        self.counts = {'steps': 0, 'skipped': 0, 'episodes': 0, 'stale': 0}

    # ---------------------------------------------------------------- helpers

    def _wait(self, found, timeout_s: float, what):
        """Wait (under the listener's lock) until ``found()`` is not None; return it."""
        deadline = time.monotonic() + timeout_s
        with self.listener.changed:
            while True:
                value = found()
                if value is not None:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RosEnvTimeout(what() if callable(what) else what)
                self.listener.changed.wait(min(left, 0.05))

    def _next_stamp(self) -> int:
        later = [s for s in self.listener.builder.stamps() if s > self._stamp]
        return min(later, default=-1)

    def _publish(self, command: np.ndarray, answers_ns: int) -> None:
        self.command_pub.publish(action_message(self.spec.action, command, answers_ns or 0,
                                                self.frame_id))

    def _restart(self) -> None:
        """Ask the episode manager to end the running episode and reset the robot."""
        deadline = time.monotonic() + self.reset_timeout_s
        while not self.restart_client.service_is_ready():
            if time.monotonic() > deadline:
                raise RosEnvTimeout(f'{self.restart_client.srv_name} is not available: is the '
                                    'episode manager running (same ROS_DOMAIN_ID, namespace)?')
            time.sleep(0.05)
        future = self.restart_client.call_async(self._trigger.Request())
        while not future.done():
            if time.monotonic() > deadline:
                raise RosEnvTimeout(f'{self.restart_client.srv_name} did not answer within '
                                    f'{self.reset_timeout_s:g} s')
            time.sleep(0.01)
        # Refused only while a reset is already under way: then its episode is the next.

    def _wait_for_graph(self) -> None:
        """Wait until every topic read here has a publisher and the command topic a reader.

        A verdict or a reward published before its subscription matched would be lost (they
        are volatile), and a step would then wait for it in vain.
        """
        readers = ['episode/event', 'episode/step', 'reward/terms',
                   *(self.spec.sources[s].topic for s in self.listener.assembler.sources)]
        deadline = time.monotonic() + self.reset_timeout_s
        while True:
            missing = [t for t in readers if self.node.count_publishers(t) == 0]
            if self.node.count_subscribers(self.command_topic) == 0:
                missing.append(f'a subscriber of {self.command_topic} (the command arbiter '
                               "of the graph; without one, command_topic='' reaches the "
                               'robot directly)'
                               if self.command_topic == ARBITER_INPUTS['policy']
                               else f'a subscriber of {self.command_topic}')
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RosEnvTimeout(f'nothing publishes {", ".join(missing)}: are the robot, '
                                    'the reward monitor and the episode manager running (same '
                                    'ROS_DOMAIN_ID, namespace)?')
            time.sleep(0.05)
        # Discovered is not yet matched: give the reliable readers a moment, and take in the
        # latched episode events before judging what runs.
        time.sleep(0.5)

    def _collect(self) -> None:
        self._ready.extend(self.listener.builder.poll())

    # ---------------------------------------------------------------- gymnasium

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if self._episode is None:
            self._wait_for_graph()
        with self.listener.lock:
            ended = self._episode is not None and self._episode in self.listener.ended
            # After an end the episode manager resets by itself: its next episode is ours
            # (with a free-running robot it may have begun already). Otherwise restart.
            known = self._episode if ended else max(self.listener.starts, default=0)
        if not ended:
            self._restart()

        def started():
            later = [e for e in self.listener.starts if e > known]
            if not later:
                return None
            episode = min(later)
            stamp = self.listener.starts[episode]
            obs = self.listener.builder.start_observation(stamp)
            return None if obs is None else (episode, stamp, obs)
        self._episode, self._stamp, obs = self._wait(
            started, self.reset_timeout_s,
            lambda: f'no new episode started within {self.reset_timeout_s:g} s (episodes '
                    f'started so far: {sorted(self.listener.starts)}): is the robot resetting?')
        self._done = False
        self._previous_command = None
        self._ready.clear()
        self.counts['episodes'] += 1
        return obs.copy(), {'episode': self._episode, 'stamp_ns': self._stamp}

    def step(self, action):
        if self._done:
            raise RuntimeError('step() after the episode ended: call reset() first')
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.spec.action.size,) or not np.all(np.isfinite(action)):
            raise ValueError(f'action must be {self.spec.action.size} finite values, got '
                             f'{action.tolist()}')
        # As the policy node: clamped, then at most max_delta from the previous command.
        command = self.spec.action.limit_change(self._previous_command,
                                                self.spec.action.clip(action))
        self._previous_command = command
        with self.listener.lock:
            newest = max(self.listener.builder.newest_stamp_ns(), self._stamp)
            self.listener.builder.command(command, answers_ns=self._stamp)
        self._publish(command, self._stamp)

        def next_step():
            self._collect()
            while self._ready:
                t = self._ready[0]
                if t.episode != self._episode or t.stamp_ns < self._stamp:
                    self._ready.popleft()  # before this step, or another episode's
                    continue
                if t.terminated or t.truncated or t.stamp_ns >= newest:
                    return self._ready.popleft()
                self._ready.popleft()      # a world step that came before this action
            return None
        t = self._wait(next_step, self.step_timeout_s,
                       lambda: f'episode {self._episode}: no step after the observation '
                               f'stamped {self._stamp} within {self.step_timeout_s:g} s '
                               f'(the next lacks '
                               f'{self.listener.builder.waiting_for(self._next_stamp())}); '
                               'are the robot, the reward monitor and the episode manager '
                               'running?')
        skipped = max(0, round((t.stamp_ns - self._stamp) * self.spec.control_rate_hz / 1e9))
        self.counts['steps'] += 1
        self.counts['skipped'] += skipped
        self._stamp = t.next_stamp_ns
        self._done = t.terminated or t.truncated
        if self._done:
            # Answer the last observation so a lock-step robot is not left waiting on it.
            self._publish(np.zeros(self.spec.action.size), self._stamp)
        age_s = (self.node.get_clock().now().nanoseconds - t.next_stamp_ns) / 1e9
        if age_s > self.spec.observation.max_age_s:
            self.counts['stale'] += 1
        return t.next_obs.copy(), t.reward, t.terminated, t.truncated, {
            'outcome': t.outcome, 'episode': t.episode, 'stamp_ns': t.next_stamp_ns,
            'skipped': skipped, 'intervened': t.intervened}

    def close(self) -> None:
        import rclpy
        if self.spinner is None:
            return
        self.spinner.stop()
        self.spinner = None
        self.node.destroy_node()
        if self._own_context:
            rclpy.try_shutdown(context=self.context)
