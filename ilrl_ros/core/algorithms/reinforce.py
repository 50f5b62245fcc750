"""REINFORCE: the Monte Carlo policy gradient with reward-to-go and a baseline.

Williams, "Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement
Learning", Machine Learning 8, 1992. The gradient E[sum_t grad log pi(a_t|s_t) (G_t - b_t)]
weighs each step by G_t, the reward-to-go of its episode (or, with ``returns='full'``, the
whole episode's return, as the first form of the estimator does), less a baseline b_t:
none, the batch mean of G (over all steps, or per time step of the episode) or a learned
V(s_t). The knobs the lectures turn (the returns, the baseline, an entropy bonus with a
decay, a constant added to every reward) are config fields and so ``ilrl train reinforce``
flags; the estimator is small pure functions. ``gradient_variance`` measures how much each
baseline reduces the variance of the gradient estimate of a fixed policy.
"""

import copy
from dataclasses import dataclass
import logging
import math
from typing import ClassVar

import numpy as np
import torch

from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.networks import ActorCritic
from ilrl_ros.core.rl.configs import config_dict, RLConfig
from ilrl_ros.core.rl.losses import value_loss
from ilrl_ros.core.rl.optim import clip_grad_norm, Optimizer
from ilrl_ros.core.rl.progress import Progress
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.spaces import actor_critic_for_spaces
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.rl.vec_env import make_vec_env
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

BASELINES = ('none', 'batch_mean', 'value')
# 'time_mean' came after BASELINES, which gradient_variances compares by default.
ALL_BASELINES = ('none', 'batch_mean', 'time_mean', 'value')
RETURNS = ('reward_to_go', 'full')
ENT_DECAYS = ('constant', 'linear', 'exponential')


@dataclass
class REINFORCEConfig(RLConfig):
    """REINFORCE settings (no tuned presets)."""

    positive_fields: ClassVar[tuple] = ('total_steps', 'num_envs', 'episodes_per_env')
    fraction_fields: ClassVar[tuple] = ('gamma',)

    total_steps: int = 100_000
    """Environment steps (over all environments); the last batch may overshoot."""
    num_envs: int = 8
    """Environments stepped together; each runs episodes_per_env whole episodes a batch."""
    episodes_per_env: int = 1
    """Episodes each environment contributes to a batch."""
    returns: str = 'reward_to_go'
    """What weighs grad log pi(a_t|s_t): 'reward_to_go' (the discounted rewards from step t
    on) or 'full' (the whole episode's discounted return, the same for every step of it)."""
    baseline: str = 'value'
    """Subtracted from the returns: 'none'; 'batch_mean' (the mean return over all steps of
    the batch, one number); 'time_mean' (per time step: the mean return of the batch's
    episodes at the same step index t of their episode, among those that reach t); 'value'
    (a learned V(s), fitted to the same returns)."""
    lr: float = 3e-3
    """Adam learning rate of the policy."""
    gamma: float = 0.99
    """Discount factor of the reward-to-go."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus (at the start, when ent_decay is not 'constant')."""
    ent_decay: str = 'constant'
    """How the entropy weight moves from ent_coef to ent_coef_end over total_steps:
    'constant' (stays ent_coef), 'linear', or 'exponential' (geometric; both ends > 0)."""
    ent_coef_end: float = 0.0
    """Entropy weight reached at total_steps when ent_decay is 'linear' or 'exponential'."""
    reward_offset: float = 0.0
    """A constant added to every reward the learner sees (the lectures' experiment: without
    a baseline it slows learning). Logged returns and the evaluation stay the env's own. In
    episodes of varying length it is a reward for living (or a cost) and changes the task."""
    normalize_advantage: bool = False
    """Divide G - b by its standard deviation within the batch (after the baseline)."""
    max_grad_norm: float = 1.0
    """Clip the policy gradient's norm to this; 0: no clipping."""
    value_lr: float = 3e-3
    """Adam learning rate of the value network (baseline 'value')."""
    value_steps: int = 10
    """Full-batch value regression steps per batch (baseline 'value')."""
    hidden: tuple = (64, 64)
    """Hidden widths of the actor and (separately) the critic."""
    activation: str = 'tanh'
    """Activation between hidden layers: tanh, relu or elu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy."""
    normalize_observations: bool = True
    """Keep running observation statistics in the network and normalise with them."""
    seed: int = 0
    """Seed for the network, the sampling and the environments."""

    def __post_init__(self):
        super().__post_init__()
        choices = {'returns': RETURNS, 'baseline': ALL_BASELINES, 'ent_decay': ENT_DECAYS}
        for field, allowed in choices.items():
            value = getattr(self, field)
            if value not in allowed:
                raise ValueError(f'REINFORCEConfig.{field} {value!r} is not one of '
                                 f'{", ".join(allowed)}')
        for field in ('ent_coef', 'ent_coef_end', 'reward_offset'):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f'REINFORCEConfig.{field} must be a finite number, got '
                                 f'{value!r}')
        for field in ('ent_coef', 'ent_coef_end'):
            if getattr(self, field) < 0:
                raise ValueError(f'REINFORCEConfig.{field} must be >= 0 (an entropy bonus), '
                                 f'got {getattr(self, field)!r}')
        if self.ent_decay == 'exponential' and not (self.ent_coef > 0 and self.ent_coef_end > 0):
            raise ValueError('REINFORCEConfig.ent_decay exponential needs ent_coef > 0 and '
                             f'ent_coef_end > 0, got {self.ent_coef!r} and '
                             f'{self.ent_coef_end!r}; use linear to decay to 0')


@dataclass(frozen=True)
class EpisodeBatch:
    """Whole episodes from a vector environment as [T, N, ...] tensors.

    ``mask`` marks the steps that belong to the episodes: an environment idles once it has
    run its share.
    """

    obs: torch.Tensor
    """Normalised observations: [T, N, obs_dim]."""
    actions: torch.Tensor
    rewards: np.ndarray
    done: np.ndarray
    """1 where an episode ended (terminated or truncated)."""
    mask: np.ndarray

    def __post_init__(self):
        steps, envs = self.obs.shape[:2]
        for name in ('actions', 'rewards', 'done', 'mask'):
            if tuple(getattr(self, name).shape[:2]) != (steps, envs):
                raise ValueError(f'episode batch {name} has shape '
                                 f'{tuple(getattr(self, name).shape)}; expected ({steps}, '
                                 f'{envs}, ...)')

    @property
    def episodes(self) -> int:
        return int((self.done * self.mask).sum())

    @property
    def steps(self) -> int:
        return int(self.mask.sum())


def batch_reward_to_go(rewards: np.ndarray, done: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1} within each episode, over [T, N] arrays (columns are envs)."""
    out = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running * (1.0 - done[t])
        out[t] = running
    return out


def batch_full_return(rewards: np.ndarray, done: np.ndarray, gamma: float) -> np.ndarray:
    """Every step gets its episode's return sum_k gamma^k r_k from the episode's first step.

    [T, N] arrays as ``batch_reward_to_go``; an episode still running at the last row counts
    the rewards it has.
    """
    to_go = batch_reward_to_go(rewards, done, gamma)
    out = np.empty_like(to_go)
    episode_return = to_go[0].copy()
    for t in range(len(to_go)):
        if t:
            episode_return = np.where(done[t - 1] > 0, to_go[t], episode_return)
        out[t] = episode_return
    return out


def step_returns(kind: str, rewards: np.ndarray, done: np.ndarray, gamma: float) -> np.ndarray:
    """The returns that weigh each step: 'reward_to_go' or 'full' (see ``RETURNS``)."""
    if kind == 'reward_to_go':
        return batch_reward_to_go(rewards, done, gamma)
    if kind == 'full':
        return batch_full_return(rewards, done, gamma)
    raise ValueError(f'returns {kind!r} is not one of {", ".join(RETURNS)}')


def offset_rewards(rewards: np.ndarray, mask: np.ndarray, offset: float) -> np.ndarray:
    """The rewards the learner sees: (r + offset) on the steps of the episodes, 0 elsewhere."""
    return (rewards + offset) * mask


def episode_step_index(done: np.ndarray) -> np.ndarray:
    """Each step's index t within its episode, from [T, N] ``done`` flags (0 after an end)."""
    index = np.zeros(done.shape, dtype=np.int64)
    for t in range(1, len(done)):
        index[t] = np.where(done[t - 1] > 0, 0, index[t - 1] + 1)
    return index


def baseline_values(kind: str, returns: torch.Tensor, values: torch.Tensor,
                    step_index: torch.Tensor = None) -> torch.Tensor:
    """b_t for each step: zeros, the mean return, the mean return at t, or V(s_t) (fixed).

    'time_mean' needs ``step_index``, each step's t within its episode: b is the mean of the
    returns of the steps with the same t.
    """
    if kind == 'none':
        return torch.zeros_like(returns)
    if kind == 'batch_mean':
        return returns.mean().expand(returns.shape)
    if kind == 'time_mean':
        if step_index is None or step_index.shape != returns.shape:
            raise ValueError("baseline 'time_mean' needs the step index of every return")
        index = step_index.long()
        sums = torch.zeros(int(index.max()) + 1, dtype=returns.dtype,
                           device=returns.device).index_add_(0, index, returns)
        counts = torch.bincount(index, minlength=len(sums)).to(returns.dtype)
        return (sums / counts)[index]
    if kind == 'value':
        return values.detach()
    raise ValueError(f'baseline {kind!r} is not one of {", ".join(ALL_BASELINES)}')


def entropy_coefficient(decay: str, start: float, end: float, progress: float) -> float:
    """The entropy weight at ``progress`` (0 at the first update, 1 at total_steps)."""
    progress = min(max(progress, 0.0), 1.0)
    if decay == 'constant':
        return start
    if decay == 'linear':
        return start + (end - start) * progress
    if decay == 'exponential':
        return start * (end / start) ** progress
    raise ValueError(f'ent_decay {decay!r} is not one of {", ".join(ENT_DECAYS)}')


def reinforce_loss(log_probs: torch.Tensor, returns: torch.Tensor, baselines: torch.Tensor,
                   entropy: torch.Tensor, ent_coef: float) -> torch.Tensor:
    """-mean_t[log pi(a_t|s_t) (G_t - b_t)] - ent_coef mean_t[H(pi(.|s_t))]."""
    return -(log_probs * (returns - baselines)).mean() - ent_coef * entropy.mean()


def collect_episodes(policy: ActorCritic, envs, episodes_per_env: int,
                     update_stats: bool = True, seed=None) -> EpisodeBatch:
    """Reset ``envs`` and run each environment for ``episodes_per_env`` whole episodes."""
    n = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    obs = np.asarray(obs, dtype=np.float32)
    finished = np.zeros(n, dtype=np.int64)
    obs_list, act_list, rew_list, done_list, mask_list = [], [], [], [], []
    device = next(policy.parameters()).device
    with torch.inference_mode():
        while (finished < episodes_per_env).any():
            obs_t = torch.from_numpy(obs).to(device)
            active = finished < episodes_per_env
            if update_stats:
                policy.update_obs_stats(obs_t[torch.from_numpy(active).to(device)])
            obs_n = policy.normalize(obs_t)
            actions, _, _ = policy.sample(obs_n)
            obs, reward, term, trunc, _ = envs.step(policy.env_actions(actions))
            obs = np.asarray(obs, dtype=np.float32)
            done = term | trunc
            obs_list.append(obs_n)
            act_list.append(actions)
            rew_list.append(np.asarray(reward, dtype=np.float64))
            done_list.append(done.astype(np.float64))
            mask_list.append(active.astype(np.float64))
            finished += done & active
    return EpisodeBatch(obs=torch.stack(obs_list), actions=torch.stack(act_list),
                        rewards=np.stack(rew_list), done=np.stack(done_list),
                        mask=np.stack(mask_list))


def _flat_steps(batch: EpisodeBatch, gamma: float, returns_kind: str = 'reward_to_go',
                reward_offset: float = 0.0, with_step_index: bool = False) -> tuple:
    """(obs, actions, returns[, step index]) of the masked steps, flattened."""
    rewards = offset_rewards(batch.rewards, batch.mask, reward_offset)
    returns = step_returns(returns_kind, rewards, batch.done, gamma)
    device = batch.obs.device
    keep = torch.from_numpy(batch.mask.reshape(-1) > 0).to(device)
    obs = batch.obs.flatten(0, 1)[keep]
    actions = batch.actions.flatten(0, 1)[keep]
    out = (obs, actions, torch.as_tensor(returns.reshape(-1), dtype=torch.float32,
                                         device=device)[keep])
    if with_step_index:
        out += (torch.from_numpy(episode_step_index(batch.done).reshape(-1)).to(device)[keep],)
    return out


def _policy_parameters(policy: ActorCritic) -> list:
    params = list(policy.actor.parameters())
    if policy.action_kind == 'box':
        params.append(policy.log_std)
    return params


def fit_value(policy: ActorCritic, obs: torch.Tensor, returns: torch.Tensor, optimizer,
              steps: int) -> float:
    """Regress V(s) on the reward-to-go for ``steps`` full-batch steps; the last loss."""
    loss = torch.zeros(())
    for _ in range(steps):
        loss = value_loss(policy.value(obs), returns)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.item())


def train(env_fn, config: REINFORCEConfig = REINFORCEConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train an ``ActorCritic``'s actor (and critic, as a baseline) by REINFORCE."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision):
        return _train(env_fn, config, log, progress)


def _train(env_fn, config: REINFORCEConfig, log: TrainingLog, progress) -> RLResult:
    torch.manual_seed(config.seed)
    envs = make_vec_env(env_fn, config.num_envs, config.seed)
    policy = actor_critic_for_spaces(envs.single_observation_space, envs.single_action_space,
                                     hidden=config.hidden, activation=config.activation,
                                     log_std_init=config.log_std_init,
                                     normalize_observations=config.normalize_observations)
    # Built on the CPU from the seeded generator, then moved: the same start on any device.
    policy.to(resolve_device(config.device))
    policy_params = _policy_parameters(policy)
    optimizer = Optimizer(policy_params, lr=config.lr, eps=1e-8)
    value_optimizer = Optimizer(policy.critic.parameters(), lr=config.value_lr, eps=1e-8)
    tracker = Progress(config.total_steps, progress)
    env_steps = 0
    while env_steps < config.total_steps:
        batch = collect_episodes(policy, envs, config.episodes_per_env)
        ent_coef = entropy_coefficient(config.ent_decay, config.ent_coef, config.ent_coef_end,
                                       env_steps / config.total_steps)
        env_steps += batch.steps
        obs, actions, returns, step_index = _flat_steps(
            batch, config.gamma, config.returns, config.reward_offset, with_step_index=True)
        log_probs, entropy = policy.log_prob_entropy(obs, actions)
        with torch.no_grad():
            values = policy.value(obs)
        baselines = baseline_values(config.baseline, returns, values, step_index)
        if config.normalize_advantage:
            scale = (returns - baselines).std() + 1e-8
            returns_used, baselines = returns / scale, baselines / scale
        else:
            returns_used = returns
        loss = reinforce_loss(log_probs, returns_used, baselines, entropy, ent_coef)
        optimizer.zero_grad()
        loss.backward()
        if config.max_grad_norm:
            clip_grad_norm(policy_params, config.max_grad_norm)
        optimizer.step()
        metrics = {'train/policy_loss': loss.item(), 'train/entropy': entropy.mean().item(),
                   'train/ent_coef': ent_coef}
        if config.baseline == 'value':
            metrics['train/value_loss'] = fit_value(policy, obs, returns, value_optimizer,
                                                    config.value_steps)
        # The env's own return, whatever offset the learner sees.
        episode_returns = batch_reward_to_go(batch.rewards * batch.mask, batch.done, 1.0)
        starts = np.ones_like(batch.done)
        starts[1:] = batch.done[:-1]
        first = (starts * batch.mask) > 0
        metrics['rollout/ep_return'] = float(episode_returns[first].mean())
        for name, value in metrics.items():
            log.scalar(name, value, env_steps)
        tracker(env_steps, metrics)
    envs.close()
    policy.cpu().eval()
    return RLResult(policy=policy, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=env_steps)


def _fit_value_scaled(policy: ActorCritic, obs: torch.Tensor, returns: torch.Tensor,
                      steps: int) -> float:
    """Fit V(s) to standardised returns, then fold the scale into the critic's last layer.

    Adam on minibatches of 1024 samples. Returns may be hundreds (the pendulum's are
    negative hundreds); a freshly initialised critic regressed on them directly would spend
    its steps moving the output bias.
    """
    mean, std = returns.mean(), returns.std() + 1e-6
    targets = (returns - mean) / std
    optimizer = Optimizer(policy.critic.parameters(), lr=3e-3, eps=1e-8)
    loss = torch.zeros(())
    for _ in range(steps):
        index = torch.randint(0, len(obs), (min(len(obs), 1024),))
        loss = value_loss(policy.value(obs[index]), targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = policy.critic[-1]
    with torch.no_grad():
        last.weight.mul_(std)
        last.bias.mul_(std).add_(mean)
    return float(loss.item())


@dataclass(frozen=True)
class GradientVariance:
    """Spread of the policy-gradient estimate over independent batches of one policy."""

    baseline: str
    variance: float
    """Trace of the covariance of the flattened gradient (sum of per-parameter variances)."""
    mean_norm: float
    """Norm of the average gradient: the signal, which a baseline should not change."""
    repeats: int
    episodes: int


def gradient_variance(policy: ActorCritic, env_fn, baseline: str, episodes: int = 10,
                      repeats: int = 30, seed: int = 0, **options) -> GradientVariance:
    """The variance of the REINFORCE gradient estimate of a FIXED ``policy`` (not trained).

    Each of ``repeats`` batches holds ``episodes`` fresh episodes; the gradient of the
    surrogate -mean_t[log pi (G_t - b_t)] with respect to the actor's parameters is taken on
    each, and the trace of its covariance over the batches is the variance. The same
    ``seed`` gives the same episodes whatever the baseline, so baselines are compared on
    identical data. ``options``: see ``gradient_variances``.
    """
    return gradient_variances(policy, env_fn, (baseline,), episodes, repeats, seed,
                              **options)[baseline]


def gradient_variances(policy: ActorCritic, env_fn, baselines=BASELINES, episodes: int = 10,
                       repeats: int = 30, seed: int = 0, gamma: float = 0.99,
                       value_fit_episodes: int = 200, value_fit_steps: int = 300) -> dict:
    """``gradient_variance`` for several baselines on the same batches: {baseline: result}.

    For the 'value' baseline a copy of the network first fits V(s) to the reward-to-go
    (discount ``gamma``) of ``value_fit_episodes`` other episodes of the same policy, in
    ``value_fit_steps`` Adam steps. ``policy`` itself is left untouched.
    """
    for baseline in baselines:
        if baseline not in ALL_BASELINES:
            raise ValueError(f'baseline {baseline!r} is not one of {", ".join(ALL_BASELINES)}')
    if repeats < 2:
        raise ValueError(f'a variance needs at least 2 repeats, got {repeats}')
    policy = copy.deepcopy(policy).eval()
    params = _policy_parameters(policy)
    gradients = {baseline: [] for baseline in baselines}
    with torch_settings(1):
        with torch.random.fork_rng():
            if 'value' in baselines:
                torch.manual_seed(seed + 1)
                fit_envs = make_vec_env(env_fn, value_fit_episodes, seed + 1_000_000)
                batch = collect_episodes(policy, fit_envs, 1, update_stats=False,
                                         seed=seed + 1_000_000)
                fit_envs.close()
                obs, _, returns = _flat_steps(batch, gamma)
                _fit_value_scaled(policy, obs, returns, value_fit_steps)
            torch.manual_seed(seed)
            envs = make_vec_env(env_fn, episodes, seed)
            for repeat in range(repeats):
                batch = collect_episodes(policy, envs, 1, update_stats=False,
                                         seed=seed + repeat * episodes)
                obs, actions, returns, step_index = _flat_steps(batch, gamma,
                                                                with_step_index=True)
                log_probs, entropy = policy.log_prob_entropy(obs, actions)
                with torch.no_grad():
                    values = policy.value(obs)
                for baseline in baselines:
                    loss = reinforce_loss(log_probs, returns,
                                          baseline_values(baseline, returns, values,
                                                          step_index), entropy, 0.0)
                    grads = torch.autograd.grad(loss, params, retain_graph=True)
                    gradients[baseline].append(torch.cat([g.reshape(-1) for g in grads]))
            envs.close()
    out = {}
    for baseline, grads in gradients.items():
        stacked = torch.stack(grads).double()
        out[baseline] = GradientVariance(
            baseline=baseline, variance=float(stacked.var(dim=0, unbiased=True).sum()),
            mean_norm=float(stacked.mean(dim=0).norm()), repeats=repeats, episodes=episodes)
    return out
