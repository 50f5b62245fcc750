"""Learning from a live loop's transitions: the replay side of online RL, with no ROS in it.

``OnlineLearner`` takes transitions as they come (from the ``transitions`` topic, or from a
``RosEnv`` step), keeps them in a replay buffer, keeps the steps a person drove (and any
seed dataset) as demonstrations sampled into every minibatch (RLPD, Ball et al. 2023:
half of each batch from the demonstrations while there are any), and takes gradient steps
of an off-policy algorithm (SAC, TD3, DDPG, DQN: ``core/rl/learners.py``) when asked.
``updates_per_transition`` bounds how far updates may run ahead of the data (the
update-to-data ratio); the asynchronous learner asks for updates as fast as it can within it.

``train_synchronous`` is the other way to learn online: act, then update, in one loop on one
environment (the in-process simulator or a ``RosEnv``), with snapshots of the policy for a
learning curve.
"""

from dataclasses import dataclass, field
import time
from typing import Callable, Optional, Sequence

import gymnasium as gym
import numpy as np

from ilrl_ros.core.rl.buffers import buffer_from_dataset, sample_mixed
from ilrl_ros.core.rl.learners import make_learner, OFF_POLICY
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.rl.transitions import Transition


@dataclass
class OnlineSettings:
    """How an online learner paces itself (the algorithm's own settings are its config)."""

    updates_per_transition: float = 1.0
    """Most gradient steps per transition received (0: no limit)."""
    demo_fraction: float = 0.5
    """Share of each minibatch drawn from demonstrations while there are any."""
    swap_every: int = 500
    """Gradient steps between checkpoints swapped into the running policy."""

    def __post_init__(self):
        if not (self.updates_per_transition >= 0.0 and np.isfinite(self.updates_per_transition)):
            raise ValueError(f'updates_per_transition must be >= 0, got '
                             f'{self.updates_per_transition!r}')
        if not 0.0 <= self.demo_fraction <= 1.0:
            raise ValueError(f'demo_fraction must lie in [0, 1], got {self.demo_fraction!r}')
        if not (isinstance(self.swap_every, int) and self.swap_every >= 1):
            raise ValueError(f'swap_every must be a positive integer, got {self.swap_every!r}')


@dataclass
class EpisodeLog:
    """Returns of the episodes seen in the transitions, with when they ended."""

    returns: list = field(default_factory=list)
    """(transitions so far, seconds since start, return, outcome) per finished episode."""
    _running: dict = field(default_factory=dict)

    def add(self, t: Transition, transitions: int, seconds: float) -> None:
        self._running[t.episode] = self._running.get(t.episode, 0.0) + t.reward
        if t.terminated or t.truncated:
            self.returns.append((transitions, seconds, self._running.pop(t.episode),
                                 t.outcome))

    def recent_mean(self, n: int = 10) -> float:
        recent = [r for _, _, r, _ in self.returns[-n:]]
        return float(np.mean(recent)) if recent else float('nan')


class OnlineLearner:
    """Replay, demonstrations and gradient steps of an off-policy algorithm; see the module."""

    def __init__(self, algorithm: str, obs_dim: int, action_space: gym.spaces.Space, config,
                 settings: OnlineSettings = OnlineSettings(), demos: Optional[str] = None,
                 replay: Sequence[Transition] = ()):
        if algorithm not in OFF_POLICY:
            raise ValueError(f'online learning needs an off-policy algorithm '
                             f'({", ".join(OFF_POLICY)}), not {algorithm!r}')
        self.algorithm, self.config, self.settings = algorithm, config, settings
        self.learner = make_learner(algorithm, obs_dim, action_space, config)
        self.buffer = self.learner.make_buffer()
        # Demonstrations: a seed dataset's transitions, then the steps a person drives.
        self.demos = buffer_from_dataset(demos, convert_actions=self.learner.to_buffer,
                                         obs_dim=obs_dim, capacity=config.buffer_size) \
            if demos else self.learner.make_buffer()
        # An earlier run's transitions (read back from its bag): replayed, not demonstrated.
        self.replayed = 0
        for t in replay:
            self.buffer.add(t.obs[None], self.learner.to_buffer(np.asarray(t.action)[None]),
                            [t.reward], t.next_obs[None], [float(t.terminated)])
            self.replayed += 1
        self.rng = np.random.default_rng(config.seed)
        self.transitions = 0
        self.intervened = 0
        self.episodes = EpisodeLog()
        self._start = time.monotonic()

    @property
    def learning_starts(self) -> int:
        return int(getattr(self.config, 'learning_starts', 0))

    def add(self, t: Transition) -> None:
        """Keep one transition (and, if a person drove it, as a demonstration too).

        The action is what the robot was sent, in the task's units; the learner's buffer
        keeps it its own way (normalised, or DQN's nearest table row).
        """
        row = (t.obs[None], self.learner.to_buffer(np.asarray(t.action)[None]), [t.reward],
               t.next_obs[None], [float(t.terminated)])
        self.buffer.add(*row)
        if t.intervened:
            self.demos.add(*row)
            self.intervened += 1
        self.transitions += 1
        self.learner.set_progress(self.transitions)
        self.episodes.add(t, self.transitions, time.monotonic() - self._start)

    def ready(self) -> bool:
        """Whether a gradient step may be taken now (enough data, within the ratio)."""
        if len(self.buffer) + len(self.demos) < max(self.learning_starts,
                                                    self.config.batch_size):
            return False
        ratio = self.settings.updates_per_transition
        data = self.transitions + self.replayed
        return ratio == 0 or self.learner.updates < ratio * max(
            data - self.learning_starts, 0) + 1e-9

    def update(self) -> dict:
        """One gradient step on a minibatch mixed from replay and demonstrations."""
        batch = sample_mixed(self.buffer, self.demos, self.config.batch_size,
                             self.settings.demo_fraction, self.rng)
        return self.learner.update(batch)

    @property
    def policy(self):
        return self.learner.policy


@dataclass
class Snapshot:
    """The policy at one point of a run, for a learning curve."""

    env_steps: int
    seconds: float
    updates: int
    policy: object


def train_synchronous(env: gym.Env, online: OnlineLearner, steps: int, seed: int = 0,
                      snapshot_every: int = 0, on_snapshot: Callable = None,
                      progress: Callable = None) -> dict:
    """Act, then update, one step at a time on ``env``; return counts and timings.

    The learner's exploring action (uniform in the bounds before its ``learning_starts``, as
    the algorithms do in process). ``on_snapshot(Snapshot)`` is called
    every ``snapshot_every`` steps with a copy of the policy.
    """
    config = online.config
    with torch_settings(config.torch_threads, config.matmul_precision, flush_denormal=True):
        return _train_synchronous(env, online, steps, seed, snapshot_every, on_snapshot,
                                  progress)


def _train_synchronous(env, online, steps, seed, snapshot_every, on_snapshot, progress):
    import copy
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    start = time.monotonic()
    episode = 0
    skipped = 0
    for step in range(1, steps + 1):
        online.learner.set_progress(step - 1)
        action = online.learner.act(np.asarray(obs, np.float32), explore=True, rng=rng)
        next_obs, reward, terminated, truncated, info = env.step(action)
        skipped += int(info.get('skipped', 0)) if isinstance(info, dict) else 0
        online.add(Transition(obs=np.asarray(obs, np.float32),
                              action=np.asarray(action, np.float32).reshape(-1),
                              reward=float(reward),
                              next_obs=np.asarray(next_obs, np.float32),
                              terminated=bool(terminated), truncated=bool(truncated),
                              stamp_ns=step - 1, next_stamp_ns=step, episode=episode,
                              outcome=info.get('outcome') if isinstance(info, dict) else None))
        while online.ready():
            online.update()
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset()
        else:
            obs = next_obs
        if snapshot_every and (step % snapshot_every == 0 or step == steps) and on_snapshot:
            on_snapshot(Snapshot(step, time.monotonic() - start, online.learner.updates,
                                 copy.deepcopy(online.policy).cpu().eval()))
        if progress and (step % 100 == 0 or step == steps):
            progress(step, steps, {'rollout/ep_return_mean': online.episodes.recent_mean()})
    return {'env_steps': steps, 'seconds': time.monotonic() - start,
            'updates': online.learner.updates, 'skipped': skipped,
            'episodes': len(online.episodes.returns)}
