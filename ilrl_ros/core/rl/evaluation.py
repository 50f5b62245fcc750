"""Score a policy alone: whole episodes from fixed start seeds, one typed result.

``evaluate_policy`` is the one evaluation loop (as Stable-Baselines3's
``common/evaluation.py``): the RL algorithms and ``ilrl train`` score their policies with
it, DAgger and DART their rounds. ``rollout`` (``core/rollouts.py``) keeps its episodes'
accounts with the same ``EpisodeTally`` and ``EpisodeStats``.

A policy is anything with ``act(observation) -> action`` (a loaded checkpoint, an
``ActorCritic``), a torch network whose ``forward`` returns the task's action, or a plain
function of the observation.

torch is imported only where a network is given: the expert node and the scripted
rollouts score their episodes here without loading it (about a second per process).
"""

from dataclasses import asdict, dataclass, field
import math
import sys

import numpy as np


class TorchLearner:
    """``act(obs) -> action`` for a network whose ``forward`` returns the task's action."""

    def __init__(self, network):
        self.network = network

    def act(self, observation) -> np.ndarray:
        import torch

        obs = torch.as_tensor(np.asarray(observation, dtype=np.float32)).unsqueeze(0)
        with torch.no_grad():
            return self.network(obs)[0].numpy().astype(np.float64)


class FunctionLearner:
    """``act(obs) -> action`` for a plain function of the observation."""

    def __init__(self, function):
        self.act = function


def reset_memory(learner) -> None:
    """Clear a recurrent learner's memory as an episode starts (``networks/memory.py``).

    The learner, its ``network`` or its ``act`` function may be the one marked ``recurrent``
    with a ``reset()``; without it the last episode's state would carry into the next.
    Memoryless learners are left alone.
    """
    for owner in (learner, getattr(learner, 'network', None), getattr(learner, 'act', None)):
        if getattr(owner, 'recurrent', False) and callable(getattr(owner, 'reset', None)):
            owner.reset()
            return


def as_learner(policy):
    """Return ``policy`` if it has ``act``; wrap a torch network's ``forward`` or a function."""
    if hasattr(policy, 'act'):
        return policy
    # A torch network means torch is loaded already; sys.modules avoids importing it here.
    torch = sys.modules.get('torch')
    if torch is not None and isinstance(policy, torch.nn.Module):
        return TorchLearner(policy)
    if callable(policy):
        return FunctionLearner(policy)
    raise TypeError(f'a learner needs an act(observation) method, or must be a torch '
                    f'network or a function; got {type(policy).__name__}')


@dataclass
class EpisodeStats:
    """How one episode went."""

    episode: int
    """Its id (in a rollout, in the returned dataset's ``episode`` column)."""
    seed: int
    """The seed its start state was reset with."""
    outcome: str
    """'success', 'failure' or 'timeout' from the task, or 'cut' when a step limit ended it
    ('None' for an environment that reports no outcome)."""
    success: bool
    """Whether the outcome is 'success'."""
    episode_return: float
    """Sum of the task's rewards."""
    steps: int
    """Control steps (in a rollout, also the labelled rows it added)."""
    mean_abs_lateral: float
    """Mean |lateral offset| from the track centerline in metres; NaN if the env has none."""
    collisions: int
    """Steps that ended touching a wall (the env's 'collided'); 0 if the env has none."""
    expert_steps: int = 0
    """Steps whose executed action came from the expert (0 for a policy alone)."""

    def as_dict(self) -> dict:
        out = asdict(self)
        out['return'] = out.pop('episode_return')
        return out


class EpisodeTally:
    """One episode's running account, step by step, until it becomes ``EpisodeStats``."""

    def __init__(self):
        self.episode_return, self.steps, self.collisions = 0.0, 0, 0
        self.laterals: list = []
        self.outcome = None

    def add(self, reward: float, info: dict) -> None:
        """Count one step: its reward and what the env's ``info`` says about it."""
        self.episode_return += float(reward)
        self.steps += 1
        if 'lateral' in info:
            self.laterals.append(abs(float(info['lateral'])))
        self.collisions += int(bool(info.get('collided', False)))
        self.outcome = info.get('outcome')

    def stats(self, episode: int, seed: int, expert_steps: int = 0) -> EpisodeStats:
        return EpisodeStats(
            episode=episode, seed=seed, outcome=str(self.outcome),
            success=self.outcome == 'success', episode_return=self.episode_return,
            steps=self.steps,
            mean_abs_lateral=float(np.mean(self.laterals)) if self.laterals else math.nan,
            collisions=self.collisions, expert_steps=expert_steps)


def summarize_episodes(episodes: list) -> dict:
    """Success rate, mean return, steps, |lateral| and collisions over episodes."""
    if not episodes:
        return {'episodes': 0, 'success_rate': math.nan, 'mean_return': math.nan,
                'mean_steps': math.nan, 'mean_abs_lateral': math.nan, 'collisions': 0,
                'expert_fraction': math.nan}
    laterals = [e.mean_abs_lateral for e in episodes if not math.isnan(e.mean_abs_lateral)]
    steps = sum(e.steps for e in episodes)
    return {'episodes': len(episodes),
            'success_rate': float(np.mean([e.success for e in episodes])),
            'mean_return': float(np.mean([e.episode_return for e in episodes])),
            'mean_steps': float(np.mean([e.steps for e in episodes])),
            'mean_abs_lateral': float(np.mean(laterals)) if laterals else math.nan,
            'collisions': int(sum(e.collisions for e in episodes)),
            'expert_fraction': sum(e.expert_steps for e in episodes) / steps if steps
            else math.nan}


@dataclass(frozen=True)
class Evaluation:
    """What ``evaluate_policy`` returns: one ``EpisodeStats`` per episode, in seed order."""

    episodes: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def returns(self) -> list:
        return [e.episode_return for e in self.episodes]

    @property
    def lengths(self) -> list:
        return [e.steps for e in self.episodes]

    @property
    def seeds(self) -> list:
        return [e.seed for e in self.episodes]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.episodes else math.nan

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns)) if self.episodes else math.nan

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths)) if self.episodes else math.nan

    @property
    def success_rate(self) -> float:
        return float(np.mean([e.success for e in self.episodes])) if self.episodes \
            else math.nan

    def summary(self) -> dict:
        """``summarize_episodes`` of the episodes."""
        return summarize_episodes(self.episodes)

    def as_dict(self) -> dict:
        """The summary and every episode's ``EpisodeStats.as_dict``, JSON-able."""
        return {**self.summary(), 'per_episode': [e.as_dict() for e in self.episodes]}


def evaluate_policy(env, policy, episodes: int = 10, seed: int = 10_000,
                    max_episode_steps: int = None) -> Evaluation:
    """Run ``policy`` alone for ``episodes`` whole episodes; episode k starts from seed + k.

    ``env`` is an environment, or a function that makes one (made here and closed after).
    ``max_episode_steps`` cuts an episode after that many steps (its outcome 'cut'). No
    expert is consulted: no labels are needed to score a policy.
    """
    made_here = callable(env) and not hasattr(env, 'step')
    if made_here:
        env = env()
    learner = as_learner(policy)
    stats = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        reset_memory(learner)
        tally, done = EpisodeTally(), False
        while not done:
            obs, reward, terminated, truncated, info = env.step(learner.act(obs))
            tally.add(reward, info)
            done = terminated or truncated
            if not done and max_episode_steps and tally.steps >= max_episode_steps:
                done, tally.outcome = True, 'cut'
        stats.append(tally.stats(episode=k, seed=seed + k))
    if made_here:
        env.close()
    return Evaluation(episodes=stats)
