"""The ``learner`` node: trains on the live loop's transitions and swaps policies into it.

It subscribes to ``transitions`` (from the transition publisher, on this machine or
another: DDS is the transport), keeps them in a replay buffer, and trains an off-policy
algorithm (SAC, TD3, DDPG, DQN) continuously on a thread of its own, as fast as the
update-to-data bound allows. Every ``swap_every`` gradient steps it writes a checkpoint
and sets it on the running policy node's ``checkpoint`` parameter: the policy node, the
actor, loads and verifies it off its control path and swaps it in. The control loop never
waits for learning. Logs (metrics.csv, TensorBoard, curves.png) and the checkpoints go to
``output_dir``.
"""

from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import sys
import threading
import time

import gymnasium as gym
import numpy as np
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from std_msgs.msg import Float64MultiArray

from ilrl_ros import qos
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.networks.exploration import EXPLORATION_MODES
from ilrl_ros.core.rl.configs import config_dict
from ilrl_ros.core.rl.learners import OFF_POLICY
from ilrl_ros.core.rl.online import OnlineLearner, OnlineSettings
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.train_log import TrainingLog
from ilrl_ros.core.training import make_config, PRESET_FOR_TASK
from ilrl_ros.nodes.common import declare_task, run, SafeNode, StatusPublisher
from ilrl_ros.nodes.params import declare_params, Param
from ilrl_ros.transitions import from_message, read_transitions, TOPIC, TransitionError

EXPLORATION = {'sac': 'sample', 'td3': 'noise', 'ddpg': 'noise', 'dqn': 'noise'}

PARAMETERS = (
    Param('algorithm', 'sac', 'Off-policy algorithm to train.', choices=OFF_POLICY),
    Param('output_dir', 'runs/learn', 'Where checkpoints and logs go.'),
    Param('policy_node', 'policy', 'The policy node (the actor) whose checkpoint parameter '
          'receives each new policy.'),
    Param('swap_every', 500, 'Gradient steps between checkpoints swapped into the policy.',
          low=1, high=10**9),
    Param('updates_per_transition', 1.0, 'Most gradient steps per transition received '
          '(0: no limit).', low=0.0, high=1000.0),
    Param('max_transitions', 0, 'Stop learning after this many transitions (0: run on).',
          low=0, high=10**12),
    Param('seed', 0, 'Seed of the networks and of replay sampling.', low=0, high=2**31 - 1),
    Param('demonstrations', '', 'Dataset .npz from `ilrl convert` to seed the demonstration '
          'buffer with (empty: none; steps a person drives are added as they come).'),
    Param('demo_fraction', 0.5, 'Share of each minibatch drawn from demonstrations while '
          'there are any.', low=0.0, high=1.0),
    Param('exploration', '', "Exploration the policy node is set to: none, sample or noise; "
          "empty: the algorithm's own (SAC samples, the others add noise).",
          choices=('', *EXPLORATION_MODES)),
    Param('replay', '', 'A bag an earlier run recorded (with its transitions topic): its '
          'transitions fill the replay buffer before learning goes on. Empty: none.'),
    Param('config', '{}', 'The algorithm\'s settings as a JSON object (e.g. {"lr": 0.001}), '
          'over its preset for the task (train_freq, gradient_steps and log_every do not '
          'apply online: updates follow updates_per_transition).'),
    Param('device', '', 'Where the networks train: cpu, cuda, cuda:N or auto (a GPU when there '
          "is one); empty: the config's device (cpu unless config names one). The policy "
          'node is sent CPU checkpoints whatever trains them.'),
    Param('keep_checkpoints', 5, 'Checkpoints kept on disk besides the final one.', low=1,
          high=10**6),
    Param('nice', 10, 'Niceness of the learning thread (Linux, 0 to 19): on a computer the '
          'control loop shares, gradient steps yield the CPU to it. 0: as the process.',
          low=0, high=19),
)


@dataclass(frozen=True)
class LearnerParams:
    """The learner's parameters (PARAMETERS, by name)."""

    algorithm: str
    output_dir: str
    policy_node: str
    swap_every: int
    updates_per_transition: float
    max_transitions: int
    seed: int
    demonstrations: str
    demo_fraction: float
    exploration: str
    replay: str
    config: str
    device: str
    keep_checkpoints: int
    nice: int


def _parameter(name: str, value) -> ParameterMsg:
    if isinstance(value, str):
        return ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                             string_value=value))
    return ParameterMsg(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                         double_value=float(value)))


class Learner(SafeNode):
    """Train on the loop's transitions and swap checkpoints in; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('learner', **kwargs)
        self.spec = declare_task(self)
        self.params = LearnerParams(**declare_params(self, PARAMETERS))
        try:
            overrides = json.loads(self.params.config)
        except json.JSONDecodeError as error:
            raise ValueError(f'parameter config is not JSON: {error}') from None
        if not isinstance(overrides, dict):
            raise ValueError(f'parameter config must be a JSON object, got {overrides!r}')
        if self.params.device:
            overrides['device'] = self.params.device
        self.config = make_config(self.params.algorithm, PRESET_FOR_TASK.get(self.spec.name),
                                  seed=self.params.seed, overrides=overrides)
        space = gym.spaces.Box(self.spec.action.low.astype(np.float32),
                               self.spec.action.high.astype(np.float32))
        replay = []
        if self.params.replay:
            replay, problems = read_transitions(self.params.replay, self.spec.observation.size,
                                                self.spec.action.size)
            for problem in problems:
                self.get_logger().warn(f'replay {self.params.replay}: {problem}')
            self.get_logger().info(f'replaying {len(replay)} transitions from '
                                   f'{self.params.replay}')
        self.online = OnlineLearner(
            self.params.algorithm, self.spec.observation.size, space, self.config,
            OnlineSettings(self.params.updates_per_transition, self.params.demo_fraction,
                           self.params.swap_every),
            demos=self.params.demonstrations or None, replay=replay)
        self.output = Path(self.params.output_dir)
        self.output.mkdir(parents=True, exist_ok=True)
        self.log = TrainingLog(self.output)
        self._inbox = []
        self._inbox_lock = threading.Lock()
        self._stop = threading.Event()
        self.counts = {'received': 0, 'refused': 0, 'swaps': 0, 'swap_refused': 0,
                       'updates': 0}
        self.swaps = []            # (updates, transitions, seconds, path, accepted)
        self._saved = []
        self._start = time.monotonic()
        self.create_subscription(Float64MultiArray, TOPIC, self._on_transition, qos.STEPS)
        self.set_client = self.create_client(
            SetParameters, f'{self.params.policy_node}/set_parameters')
        # Latched, and once a second of the steady clock: a paused simulation does not
        # silence it.
        self.status = StatusPublisher(self, self._status_fields, 1.0)
        self.get_logger().info(
            f'learner: {self.params.algorithm} on task {self.spec.name!r}, swapping into '
            f'{self.set_client.srv_name} every {self.params.swap_every} updates; output '
            f'{self.output}')
        self._thread = threading.Thread(target=self._learn, name='ilrl-learner', daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- input

    def _on_transition(self, msg: Float64MultiArray) -> None:
        try:
            transition = from_message(msg, self.spec.observation.size, self.spec.action.size)
        except (TransitionError, ValueError) as error:
            self.counts['refused'] += 1
            self.get_logger().error(f'refused a transition: {error}', throttle_duration_sec=1.0)
            return
        with self._inbox_lock:
            self._inbox.append(transition)

    # ---------------------------------------------------------------- learning thread

    def _learn(self) -> None:
        config = self.config
        self._lower_priority()
        with torch_settings(config.torch_threads, config.matmul_precision, flush_denormal=True):
            self._learn_loop()

    def _lower_priority(self) -> None:
        """Raise this thread's niceness by ``nice`` (Linux schedules threads one by one)."""
        if not self.params.nice:
            return
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid,
                           min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.params.nice))
        except (AttributeError, OSError) as error:
            self.get_logger().warn(f'learning at normal priority: cannot set nice '
                                   f'{self.params.nice}: {error}')

    def _learn_loop(self) -> None:
        try:
            # The initial policy, once the actor is there: it explores from the first step.
            while not self.set_client.wait_for_service(timeout_sec=1.0):
                if self._stop.is_set():
                    return
                self.get_logger().info(f'waiting for {self.set_client.srv_name}',
                                       throttle_duration_sec=10.0)
            self._swap()
            metrics = {}
            last_log = time.monotonic()
            while not self._stop.is_set():
                with self._inbox_lock:
                    batch, self._inbox = self._inbox, []
                for transition in batch:
                    if self.params.max_transitions and \
                            self.online.transitions >= self.params.max_transitions:
                        break
                    self.online.add(transition)
                    self.counts['received'] += 1
                if self.online.ready():
                    metrics = self.online.update()
                    self.counts['updates'] = self.online.learner.updates
                    if self.online.learner.updates % self.params.swap_every == 0:
                        self._swap()
                else:
                    time.sleep(0.002)
                if time.monotonic() - last_log > 2.0:
                    last_log = time.monotonic()
                    self._log(metrics)
        except Exception as error:  # noqa: BLE001 - the learner stops; the robot is unaffected
            self.get_logger().error(f'learning stopped: {type(error).__name__}: {error}')

    def _log(self, metrics: dict) -> None:
        step = self.online.transitions
        seconds = time.monotonic() - self._start
        values = {f'train/{k}': v for k, v in metrics.items()}
        values.update({'rollout/ep_return_mean': self.online.episodes.recent_mean(),
                       'learner/updates': self.online.learner.updates,
                       'learner/updates_per_second': self.online.learner.updates / seconds,
                       'learner/swaps': self.counts['swaps']})
        for name, value in values.items():
            self.log.scalar(name, value, step)
        self.get_logger().info(
            f'{step} transitions, {self.online.learner.updates} updates '
            f'({values["learner/updates_per_second"]:.0f}/s), return (last 10 episodes) '
            f'{values["rollout/ep_return_mean"]:.1f}, {self.counts["swaps"]} swaps')

    def save(self, name: str) -> Path:
        """Write the current policy as a checkpoint named ``name`` under output_dir."""
        return save_checkpoint(
            self.output / 'checkpoints' / name, self.online.policy,
            algorithm=self.params.algorithm,
            spec=self.spec, config=config_dict(self.config),
            provenance={'online': True, 'transitions': self.online.transitions,
                        'updates': self.online.learner.updates,
                        'intervened': self.online.intervened,
                        'seconds': time.monotonic() - self._start})

    def _swap(self) -> None:
        path = self.save(f'update_{self.online.learner.updates:09d}')
        self._saved.append(path)
        while len(self._saved) > self.params.keep_checkpoints:
            shutil.rmtree(self._saved.pop(0), ignore_errors=True)
        request = SetParameters.Request(parameters=[_parameter('checkpoint', str(path))])
        if not self.swaps:
            request.parameters.append(_parameter(
                'exploration', self.params.exploration or EXPLORATION[self.params.algorithm]))
        if not self.set_client.service_is_ready():
            self.get_logger().warn(f'{self.set_client.srv_name} not ready: {path.name} not '
                                   'swapped in', throttle_duration_sec=5.0)
            return
        record = [self.online.learner.updates, self.online.transitions,
                  time.monotonic() - self._start, str(path), None]
        self.swaps.append(record)
        future = self.set_client.call_async(request)
        future.add_done_callback(lambda f, record=record: self._swapped(f, record))

    def _swapped(self, future, record) -> None:
        try:
            results = future.result().results
        except Exception as error:  # noqa: BLE001 - report and go on learning
            results, reason = [], str(error)
        ok = bool(results) and all(r.successful for r in results)
        record[4] = ok
        if ok:
            self.counts['swaps'] += 1
        else:
            self.counts['swap_refused'] += 1
            reason = '; '.join(r.reason for r in results if not r.successful) if results \
                else reason
            self.get_logger().error(f'the policy refused {record[3]}: {reason}')

    def _status_fields(self) -> dict:
        return dict(transitions=self.online.transitions, intervened=self.online.intervened,
                    episodes=len(self.online.episodes.returns),
                    return_mean=self.online.episodes.recent_mean(), **self.counts)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        if self.online.transitions:
            final = self.save('final')
            self.get_logger().info(f'final checkpoint {final}')
        self.log.close()
        super().close()


def main(args=None) -> int:
    return run(lambda: Learner(), args, name='learner')


if __name__ == '__main__':
    sys.exit(main())
