"""DART: demonstrations with noise injected into the expert's executed action.

Laskey, Lee, Fox, Dragan & Goldberg, "DART: Noise Injection for Robust Imitation
Learning", CoRL 2017 (arXiv:1703.09327). The expert drives with Gaussian noise added to the
action it executes, so it has to recover from small errors, while the clean action it
intended is recorded as the label: off-policy data that covers the states the learner's
errors lead to. After fitting a policy pi_hat on the data so far, the next round's noise
covariance is set to the learner's error covariance on the expert's (noisy) states,
Sigma = E[(pi_hat(s) - pi*(s)) (pi_hat(s) - pi*(s))^T] (the paper's closed form for
Gaussian noise), optionally scaled to alpha / (T tr Sigma) Sigma so that the expected
summed squared error over a T-step trajectory is alpha, a prior on how much the final
learner will err.

The estimate here is taken on the newest round's states with the policy trained on all
data, which includes those states (as in the paper): a training-set error, smaller than
the learner's error on new states. A network that fits its data closely makes it nearly
zero (on track_follow the raw estimate comes out near 1e-5 in trace), so ``alpha``, which
sets the scale and keeps the estimate's shape, is what makes DART differ from BC there.
"""

from dataclasses import asdict, dataclass, field
import logging
import math
import time

import numpy as np
import torch

from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.rollouts import (aggregate, collection_seed, noise_factor, rollout,
                                    round_amount, RoundPlan)
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


def noise_covariance(learner_actions, expert_actions, alpha: float = None,
                     horizon: float = 1.0) -> np.ndarray:
    """The learner's error covariance, (1/N) sum_i e_i e_i^T with e_i = pi_hat(s_i) - pi*(s_i).

    The paper's (1/T) E[sum_t e_t e_t^T] over trajectories is this mean over all rows. With
    ``alpha``, the result is scaled by alpha / (horizon * trace) (Laskey et al.'s
    Sigma_alpha with T = ``horizon``), so its trace is alpha / horizon; horizon=1 makes the
    trace alpha itself.
    """
    learner = np.asarray(learner_actions, dtype=np.float64)
    expert = np.asarray(expert_actions, dtype=np.float64)
    if learner.ndim != 2 or learner.shape != expert.shape or len(learner) == 0:
        raise ValueError(f'learner and expert actions must be two equal non-empty (rows, '
                         f'action) arrays, got shapes {learner.shape} and {expert.shape}')
    if not (np.all(np.isfinite(learner)) and np.all(np.isfinite(expert))):
        raise ValueError('learner and expert actions must be finite')
    errors = learner - expert
    cov = errors.T @ errors / len(errors)
    if alpha is None:
        return cov
    if alpha < 0 or horizon <= 0:
        raise ValueError(f'alpha must be >= 0 and horizon > 0, got {alpha} and {horizon}')
    trace = float(np.trace(cov))
    if trace <= 0.0:
        raise ValueError('the learner reproduces the expert exactly on these states (zero '
                         'error): there is no error shape to scale to alpha')
    return cov * (alpha / (horizon * trace))


def learner_actions(policy: torch.nn.Module, observations: np.ndarray) -> np.ndarray:
    """The network's actions for a batch of observations (no gradients)."""
    with torch.no_grad():
        out = policy(torch.as_tensor(np.asarray(observations, dtype=np.float32)))
    return out.numpy().astype(np.float64)


@dataclass
class DARTConfig(RoundPlan):
    """DART settings (simulation, no ROS); round sizes and scoring from ``RoundPlan``."""

    rounds: int = 3
    """Rounds of collect (with the current noise), aggregate, train, re-estimate the noise."""
    initial_noise: object = None
    """Round 1's noise: None (clean demonstrations, as the paper starts), a standard
    deviation per action dimension (number or list), or a covariance matrix."""
    alpha: float = None
    """Scale every estimate to alpha / (horizon tr Sigma) Sigma, so its trace is
    alpha / horizon; None keeps the raw estimate."""
    horizon: float = 1.0
    """T in that scaling: 1 makes alpha the trace itself; the paper's T is the episode
    length (alpha then the expected summed squared error over an episode); 0 uses the mean
    length of the episodes the estimate came from."""
    bc: BCConfig = field(default_factory=BCConfig)
    """Behavior cloning settings for every round's training."""


@dataclass
class DARTResult:
    """The final policy, the per-round table (with the noise used), and the dataset."""

    policy: object
    rounds: list
    """One dict per round: round, noise (covariance used), noise_std (its diagonal's
    square root), new_labels, dataset_size, collect_success_rate, eval_success_rate,
    eval_mean_return, eval_mean_abs_lateral, seconds."""
    data: object
    next_noise: np.ndarray
    """The covariance estimated after the last round (what a further round would use)."""
    policies: list
    config: dict
    seconds: float


def run(spec: TaskSpec, config: DARTConfig = DARTConfig(), progress=None, expert=None,
        log: TrainingLog = None) -> DARTResult:
    """Run DART on the task's simulator with its expert (or ``expert``)."""
    if config.rounds < 1:
        raise ValueError(f'DART needs at least 1 round, got {config.rounds}')
    round_amount(config, 1)  # checks the round sizes before any work
    noise_factor(config.initial_noise, spec.action.size)  # checks it before any work
    with torch_settings(1):
        return _run(spec, config, progress, expert, log or TrainingLog())


def _run(spec, config, progress, expert, log) -> DARTResult:
    started = time.monotonic()
    env = make_env(spec)
    expert = expert or make_expert(spec)
    act_dim = spec.action.size
    factor = noise_factor(config.initial_noise, act_dim)
    noise = np.zeros((act_dim, act_dim)) if factor is None else factor @ factor.T
    datasets, policies, table = [], [], []
    max_steps = config.max_episode_steps or None
    for k in range(1, config.rounds + 1):
        round_started = time.monotonic()
        amount = round_amount(config, k)
        collected = rollout(env, expert, beta=1.0, noise=noise,
                            seed=collection_seed(config.seed, k),
                            max_episode_steps=max_steps, **amount)
        datasets.append(collected.data)
        data = aggregate(datasets)
        trained = train_bc(data, config.bc)
        policy = trained.policy
        policies.append(policy)
        newest = collected.data
        horizon = config.horizon or float(np.mean([e.steps for e in collected.episodes]))
        next_noise = noise_covariance(learner_actions(policy, newest.observations),
                                      newest.actions, config.alpha, horizon)
        evaluation = (evaluate_policy(env, policy, config.eval_episodes, config.eval_seed,
                                      max_steps).summary() if config.eval_episodes else {})
        collect = collected.summary()
        row = {'round': k, 'noise': noise.tolist(),
               'noise_std': np.sqrt(np.diag(noise)).tolist(),
               'new_labels': len(newest), 'dataset_size': len(data),
               'collect_success_rate': collect['success_rate'],
               'train_loss': trained.train_loss, 'val_loss': trained.val_loss,
               'eval_success_rate': evaluation.get('success_rate', math.nan),
               'eval_mean_return': evaluation.get('mean_return', math.nan),
               'eval_mean_abs_lateral': evaluation.get('mean_abs_lateral', math.nan),
               'eval_collisions': evaluation.get('collisions', 0),
               'seconds': time.monotonic() - round_started}
        table.append(row)
        metrics = {'dart/noise_trace': float(np.trace(noise)),
                   'dart/dataset_size': len(data),
                   'eval/success_rate': row['eval_success_rate'],
                   'eval/mean_return': row['eval_mean_return']}
        for name, value in metrics.items():
            log.scalar(name, value, k)
        logger.info('DART round %d/%d: noise std %s, +%d labels, eval success %.0f%%', k,
                    config.rounds, np.round(row['noise_std'], 4).tolist(), len(newest),
                    100 * row['eval_success_rate'])
        if progress:
            progress(k, config.rounds, metrics)
        noise = next_noise
    env.close()
    config_dict = asdict(config)
    config_dict['bc']['hidden'] = list(config.bc.hidden)
    config_dict['initial_noise'] = (None if config.initial_noise is None
                                    else np.asarray(config.initial_noise).tolist())
    return DARTResult(policy=policy, rounds=table, data=data, next_noise=noise,
                      policies=policies, config=config_dict,
                      seconds=time.monotonic() - started)
