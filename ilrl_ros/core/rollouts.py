"""Roll out episodes in a simulator and have the expert label every visited state.

The data collection under DAgger and DART, without ROS. At each step the executed action
comes from the learner, from the expert, or from a beta-mixture of the two (the expert with
probability beta, drawn per step, as in Ross et al. 2011); Gaussian noise can be added to
the expert's executed action (DART, Laskey et al. 2017). Whoever acted, the row recorded
is the observation with the expert's clean action as its label, so a dataset grows by
exactly one labelled row per visited state. ``aggregate`` joins datasets (DAgger's
D <- D u D_i) and keeps their episodes apart.

A learner is anything ``as_learner`` (``core/rl/evaluation.py``) accepts: something with
``act(observation) -> action`` such as a loaded checkpoint
(``ilrl_ros.core.checkpoint.LoadedPolicy``), a torch network or a function. Each episode is
accounted for as ``evaluate_policy`` does it (``EpisodeTally``, ``EpisodeStats``).
"""

from dataclasses import dataclass, field

import numpy as np

from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.rl.evaluation import as_learner, EpisodeTally, summarize_episodes
from ilrl_ros.core.spec import contract_mismatch


def noise_factor(noise, act_dim: int):
    """A matrix L with L z ~ N(0, Sigma) for z ~ N(0, I), or None for no noise.

    ``noise`` is None or 0 (none), a standard deviation for every action dimension, a
    vector of per-dimension standard deviations, or an (act_dim, act_dim) covariance
    matrix (symmetric, positive semi-definite), as DART estimates it.
    """
    if noise is None:
        return None
    n = np.asarray(noise, dtype=np.float64)
    if not np.all(np.isfinite(n)):
        raise ValueError(f'noise must be finite, got {n.tolist()}')
    if n.ndim == 0 or n.ndim == 1:
        std = np.broadcast_to(n, (act_dim,)) if n.ndim == 0 else n
        if std.shape != (act_dim,):
            raise ValueError(f'noise standard deviations: expected {act_dim} (one per action '
                             f'dimension), got {len(std)}')
        if np.any(std < 0):
            raise ValueError(f'noise standard deviations must be >= 0, got {std.tolist()}')
        return None if not np.any(std > 0) else np.diag(std)
    if n.shape != (act_dim, act_dim):
        raise ValueError(f'noise covariance: expected a {act_dim}x{act_dim} matrix, got '
                         f'shape {n.shape}')
    if not np.allclose(n, n.T, rtol=1e-6, atol=1e-12):
        raise ValueError(f'noise covariance must be symmetric, got {n.tolist()}')
    eigenvalues, vectors = np.linalg.eigh(n)
    if eigenvalues.min() < -1e-9 * max(1.0, abs(eigenvalues).max()):
        raise ValueError(f'noise covariance must be positive semi-definite; its eigenvalues '
                         f'are {eigenvalues.tolist()}')
    if not np.any(eigenvalues > 0):
        return None
    return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


@dataclass
class RolloutResult:
    """Rolled-out episodes: expert-labelled data, what was executed, and per-episode stats."""

    data: Demonstrations
    """One row per visited state: the observation and the expert's clean label."""
    executed: np.ndarray
    """The action executed at each row (after noise, clipped to the action bounds)."""
    from_expert: np.ndarray
    """Whether each row's executed action came from the expert (noise or not)."""
    episodes: list = field(default_factory=list)
    """``EpisodeStats`` per episode, in order."""

    def summary(self) -> dict:
        return summarize_episodes(self.episodes)

    def with_executed_labels(self) -> Demonstrations:
        """The same rows labelled with the executed actions (mixed-quality data for RWR/AWR).

        This is what a bag of recorded commands holds: what the robot did, not the expert.
        """
        d = self.data
        return Demonstrations(observations=d.observations,
                              actions=self.executed.astype(np.float32), episode=d.episode,
                              stamp_ns=d.stamp_ns, reward=d.reward, spec_json=d.spec_json,
                              info={**d.info, 'labels': 'executed'})


def collection_seed(seed: int, i: int) -> int:
    """The first start-state seed of round ``i``'s collected episodes.

    Rounds start from different states, none of them an evaluation start (10_000 onwards
    by default), and round 1 of two runs with one seed starts from the same states.
    """
    return 1_000_000 + 1_000_003 * int(seed) + 1000 * int(i)


def _stamp(readings: dict) -> int:
    return max(int(r.stamp_ns) for r in readings.values()) if readings else 0


def rollout(env, expert, learner=None, *, episodes: int = None, steps: int = None,
            beta: float = 1.0, noise=None, seed: int = 0, max_episode_steps: int = None,
            episode_start: int = 0, progress=None) -> RolloutResult:
    """Roll out ``episodes`` whole episodes, or exactly ``steps`` steps, in ``env``.

    Each step executes the expert's action with probability ``beta`` (plus ``noise``, see
    ``noise_factor``) and the learner's otherwise, and records the observation with the
    expert's clean label. Episode k starts from ``env.reset(seed=seed + k)``; the mixture
    and the noise draw from their own generator seeded by ``seed``, one uniform and one
    normal vector per step whoever acts, so runs repeat exactly. ``max_episode_steps`` cuts
    episodes short; with ``steps`` the last episode is cut when the budget runs out. Rows
    are numbered as episodes ``episode_start``, ``episode_start + 1``, ...
    ``progress(done, total, metrics)`` is called after each episode.
    """
    if (episodes is None) == (steps is None):
        raise ValueError('give exactly one of episodes (whole episodes) or steps (a budget '
                         'of labelled states)')
    budget = episodes if steps is None else steps
    if int(budget) != budget or budget < 1:
        raise ValueError(f'episodes/steps must be a positive integer, got {budget!r}')
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f'beta is the probability of executing the expert and must be in '
                         f'[0, 1], got {beta}')
    if beta < 1.0 and learner is None:
        raise ValueError(f'beta={beta} executes a learner on some steps, but no learner was '
                         f'given')
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f'max_episode_steps must be >= 1, got {max_episode_steps}')
    spec = env.spec
    learner = as_learner(learner) if learner is not None else None
    act_dim = spec.action.size
    factor = noise_factor(noise, act_dim)
    rng = np.random.default_rng([int(seed), 0x5EED])
    obs_rows, labels, executed, from_expert = [], [], [], []
    episode_ids, stamps, rewards, stats = [], [], [], []
    total_steps = 0
    k = 0
    while (k < budget) if steps is None else (total_steps < budget):
        episode = episode_start + k
        obs, _ = env.reset(seed=int(seed) + k)
        tally, done, expert_n = EpisodeTally(), False, 0
        while not done:
            readings = env.current_readings()
            label = np.asarray(expert.act(readings), dtype=np.float64)
            use_expert = rng.random() < beta
            z = rng.standard_normal(act_dim)
            if use_expert:
                action = label + (factor @ z if factor is not None else 0.0)
                expert_n += 1
            else:
                action = np.asarray(learner.act(obs), dtype=np.float64).reshape(act_dim)
            action = spec.action.clip(action)
            obs_rows.append(np.asarray(obs, dtype=np.float32))
            labels.append(label)
            executed.append(action)
            from_expert.append(use_expert)
            episode_ids.append(episode)
            stamps.append(_stamp(readings))
            obs, reward, terminated, truncated, info = env.step(action)
            rewards.append(float(reward))
            tally.add(reward, info)
            total_steps += 1
            done = terminated or truncated
            if not done and ((max_episode_steps and tally.steps >= max_episode_steps)
                             or (steps is not None and total_steps >= budget)):
                done, tally.outcome = True, 'cut'
        stats.append(tally.stats(episode=episode, seed=int(seed) + k, expert_steps=expert_n))
        k += 1
        if progress:
            progress(k if steps is None else total_steps, budget,
                     {'rollout/return': tally.episode_return, 'rollout/steps': tally.steps})
    data = Demonstrations(
        observations=np.array(obs_rows, dtype=np.float32).reshape(len(obs_rows), -1),
        actions=np.array(labels, dtype=np.float32).reshape(len(labels), act_dim),
        episode=np.array(episode_ids, dtype=np.int64),
        stamp_ns=np.array(stamps, dtype=np.int64), reward=np.array(rewards, dtype=np.float64),
        spec_json=spec.to_json(),
        info={'source': 'sim rollout', 'labels': 'expert', 'beta': float(beta),
              'noise': None if factor is None else (factor @ factor.T).tolist(),
              'seed': int(seed), 'episodes': len(stats)})
    return RolloutResult(data=data, executed=np.array(executed).reshape(len(executed), act_dim),
                         from_expert=np.array(from_expert, dtype=bool), episodes=stats)


def aggregate(datasets) -> Demonstrations:
    """Join datasets row by row (DAgger's D <- D u D_i), renumbering episodes 0, 1, ...

    Episodes of different datasets never share an id, even where their own ids coincide;
    rows keep their order. All must be for the same task contract (observation, action);
    the first dataset's spec is kept.
    """
    datasets = [d for d in datasets if d is not None]
    if not datasets:
        raise ValueError('aggregate needs at least one dataset')
    first = datasets[0]
    for i, d in enumerate(datasets[1:], start=1):
        if d.spec_json != first.spec_json:
            difference = contract_mismatch(first.spec.contract(), d.spec.contract())
            if difference:
                raise ValueError(f'dataset {i} was recorded for a different task contract than '
                                 f'dataset 0: {difference}')
        if d.observations.shape[1] != first.observations.shape[1] \
                or d.actions.shape[1] != first.actions.shape[1]:
            raise ValueError(f'dataset {i} has {d.observations.shape[1]} observations and '
                             f'{d.actions.shape[1]} actions per row; dataset 0 has '
                             f'{first.observations.shape[1]} and {first.actions.shape[1]}')
    episodes, offset, parts = [], 0, []
    for d in datasets:
        ids, inverse = np.unique(d.episode, return_inverse=True)
        episodes.append(offset + inverse.reshape(-1))
        offset += len(ids)
        parts.extend(d.info['aggregated'] if 'aggregated' in d.info
                     else [{**d.info, 'rows': len(d)}])
    return Demonstrations(
        observations=np.concatenate([d.observations for d in datasets]).astype(np.float32),
        actions=np.concatenate([d.actions for d in datasets]).astype(np.float32),
        episode=np.concatenate(episodes).astype(np.int64),
        stamp_ns=np.concatenate([d.stamp_ns for d in datasets]).astype(np.int64),
        reward=np.concatenate([d.reward for d in datasets]).astype(np.float64),
        spec_json=first.spec_json,
        info={'aggregated': parts})


@dataclass
class RoundPlan:
    """What DAgger and DART share: how much each round collects, and how rounds are scored."""

    rounds: int = 3
    """Rounds of collect, aggregate, train."""
    episodes_per_round: int = 3
    """Whole episodes collected per round (used when steps_per_round is 0)."""
    steps_per_round: int = 0
    """If > 0: collect exactly this many labelled states per round instead of episodes."""
    round_steps: tuple = ()
    """Labelled states to collect in each round, one number per round (overrides the
    two above): sizes a run so that its aggregate reaches given label budgets."""
    max_episode_steps: int = 0
    """Cut collected and evaluation episodes after this many steps (0: the task's timeout)."""
    eval_episodes: int = 10
    """Episodes of the learner alone after each round (0: skip)."""
    eval_seed: int = 10_000
    """Start-state seed of the first evaluation episode (the same starts every round)."""
    seed: int = 0
    """Seeds the collected episodes' start states and the mixture/noise draws."""


def round_amount(config: RoundPlan, i: int) -> dict:
    """How much round ``i`` (1-based) of DAgger or DART collects, as ``rollout`` keywords.

    ``config.round_steps`` (labelled states, round by round) wins; then
    ``config.steps_per_round``; then ``config.episodes_per_round`` whole episodes.
    """
    if config.round_steps:
        if len(config.round_steps) != config.rounds or any(
                int(n) != n or n < 1 for n in config.round_steps):
            raise ValueError(f'round_steps must give a positive whole number of labelled states '
                             f'for each of the {config.rounds} rounds, got '
                             f'{list(config.round_steps)}')
        return {'steps': int(config.round_steps[i - 1])}
    if config.steps_per_round < 0 or (config.steps_per_round == 0
                                      and config.episodes_per_round < 1):
        raise ValueError('set round_steps, steps_per_round > 0 or episodes_per_round >= 1')
    if config.steps_per_round:
        return {'steps': config.steps_per_round}
    return {'episodes': config.episodes_per_round}
