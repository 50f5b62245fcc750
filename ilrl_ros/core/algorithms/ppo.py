"""Proximal policy optimisation with a clipped surrogate objective and GAE.

Schulman, Wolski, Dhariwal, Radford & Klimov, "Proximal Policy Optimization Algorithms",
arXiv:1707.06347, 2017; advantages by GAE (Schulman et al., arXiv:1506.02438). Vectorised
environments with same-step auto-reset; time-limit truncations bootstrap from the value of
the true final observation. Defaults are Stable-Baselines3's; ``PPOConfig.for_env`` gives
the rl-baselines3-zoo's tuned settings for a few gymnasium tasks.
"""

from dataclasses import dataclass
import logging
from typing import ClassVar, Optional

import numpy as np
import torch

from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.networks import ActorCritic
from ilrl_ros.core.rl.buffers import RewardScaler, RolloutCollector
from ilrl_ros.core.rl.configs import config_dict, RLConfig
from ilrl_ros.core.rl.gae import gae
from ilrl_ros.core.rl.losses import explained_variance, value_loss
from ilrl_ros.core.rl.optim import clip_grad_norm, Optimizer, schedule
from ilrl_ros.core.rl.progress import Progress
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.spaces import actor_critic_for_spaces
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.rl.vec_env import make_vec_env
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


# rl-baselines3-zoo hyperparams/ppo.yml. The zoo's Pendulum-v1 uses generalised
# state-dependent exploration (use_sde, sde_sample_freq 4); this network has a
# state-independent Gaussian instead, the one difference. Neither entry normalises.
PPO_PRESETS = {
    'CartPole-v1': dict(total_steps=100_000, num_envs=8, num_steps=32, batch_size=256,
                        gae_lambda=0.8, gamma=0.98, epochs=20, ent_coef=0.0, lr=1e-3,
                        lr_schedule='linear', clip_range=0.2, clip_schedule='linear',
                        normalize_observations=False),
    'Pendulum-v1': dict(total_steps=100_000, num_envs=4, num_steps=1024, gae_lambda=0.95,
                        gamma=0.9, epochs=10, ent_coef=0.0, lr=1e-3, clip_range=0.2,
                        normalize_observations=False),
}


@dataclass
class ClippedUpdateConfig(RLConfig):
    """What every PPO variant sets: how much it collects, its clipped update and optimiser.

    ``PPOConfig`` and ``ppo_recurrent.RecurrentPPOConfig`` add their rollout and network.
    """

    fraction_fields: ClassVar[tuple] = ('gamma', 'gae_lambda')

    total_steps: int = 100_000
    """Environment steps (over all environments); the last update may overshoot."""
    num_envs: int = 1
    """Environments stepped together."""
    epochs: int = 10
    """Passes over each rollout."""
    lr: float = 3e-4
    """Adam learning rate at the start."""
    lr_schedule: str = 'constant'
    """'constant', or 'linear' (annealed to 0 over the run)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 Monte Carlo."""
    clip_range: float = 0.2
    """Surrogate clipping: the ratio is kept within 1 +/- clip_range."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this."""
    activation: str = 'tanh'
    """Activation between hidden layers: tanh, relu or elu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy."""
    seed: int = 0
    """Seed for the network, the sampling and the environments."""


@dataclass
class PPOConfig(ClippedUpdateConfig):
    """PPO settings (defaults: Stable-Baselines3's PPO; ``for_env`` gives the zoo's tuned ones)."""

    presets: ClassVar[dict] = PPO_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'num_envs', 'num_steps', 'batch_size',
                                        'epochs')

    num_steps: int = 2048
    """Vector steps per rollout; a rollout has num_steps * num_envs transitions."""
    batch_size: int = 64
    """Transitions per minibatch."""
    clip_schedule: str = 'constant'
    """'constant', or 'linear' (annealed to 0 over the run)."""
    clip_range_vf: Optional[float] = None
    """Clip the value update to this distance from the rollout's values; None: no clip."""
    normalize_advantage: bool = True
    """Standardise advantages within each minibatch."""
    target_kl: Optional[float] = None
    """Stop an update after an epoch whose last minibatch's approximate KL passes 1.5 times
    this; None: never."""
    hidden: tuple = (64, 64)
    """Hidden widths of the actor and (separately) the critic."""
    ortho_init: bool = True
    """Orthogonal initialisation of the weights."""
    normalize_observations: bool = True
    """Keep running observation statistics in the network and normalise with them."""
    normalize_rewards: bool = False
    """Scale rewards by the running std of the discounted return (VecNormalize's)."""

def clipped_surrogate_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor,
                           advantages: torch.Tensor, clip_range: float) -> torch.Tensor:
    """-E[min(r A, clip(r, 1 - eps, 1 + eps) A)] with r = pi(a|s) / pi_old(a|s)."""
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    return -torch.min(ratio * advantages, clipped * advantages).mean()


def ppo_diagnostics(log_probs: torch.Tensor, old_log_probs: torch.Tensor,
                    clip_range: float) -> tuple:
    """(approximate KL(pi_old || pi) by E[(r - 1) - log r], fraction of clipped ratios)."""
    log_ratio = log_probs - old_log_probs
    ratio = torch.exp(log_ratio)
    approx_kl = ((ratio - 1.0) - log_ratio).mean()
    clip_fraction = ((ratio - 1.0).abs() > clip_range).float().mean()
    return approx_kl, clip_fraction


def train(env_fn, config: PPOConfig = PPOConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train an ``ActorCritic`` on ``env_fn()`` environments; see the module docstring."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision):
        return _train(env_fn, config, log, progress)


def _train(env_fn, config: PPOConfig, log: TrainingLog, progress) -> RLResult:
    torch.manual_seed(config.seed)
    envs = make_vec_env(env_fn, config.num_envs, config.seed)
    policy = actor_critic_for_spaces(
        envs.single_observation_space, envs.single_action_space, hidden=config.hidden,
        activation=config.activation, log_std_init=config.log_std_init,
        ortho_init=config.ortho_init, normalize_observations=config.normalize_observations)
    # Built on the CPU from the seeded generator, then moved: the same start on any device.
    policy.to(resolve_device(config.device))
    optimizer = Optimizer(policy.parameters(), lr=config.lr, kind='adam', eps=1e-5)
    scaler = RewardScaler(config.num_envs, config.gamma) if config.normalize_rewards else None
    collector = RolloutCollector(envs, policy, config.seed, scaler)
    rollout_size = config.num_steps * config.num_envs
    updates = -(-config.total_steps // rollout_size)
    batch_size = min(config.batch_size, rollout_size)
    tracker = Progress(updates * rollout_size, progress)
    env_steps = 0
    for update in range(updates):
        remaining = 1.0 - update / updates
        lr = schedule(config.lr, config.lr_schedule, remaining)
        clip_range = schedule(config.clip_range, config.clip_schedule, remaining)
        optimizer.lr = lr
        rollout = collector.collect(config.num_steps)
        env_steps += rollout_size
        advantages, returns = gae(rollout.rewards, rollout.values.cpu().numpy(),
                                  rollout.terminated, rollout.truncated,
                                  rollout.next_values, config.gamma, config.gae_lambda)
        metrics = _update(policy, optimizer, rollout, advantages, returns, config,
                          clip_range, batch_size)
        metrics['train/lr'] = lr
        metrics['train/clip_range'] = clip_range
        metrics['train/explained_variance'] = explained_variance(
            rollout.values.cpu().numpy().ravel(), returns.ravel())
        finished = collector.pop_finished_returns()
        if finished:
            metrics['rollout/ep_return'] = float(np.mean(finished))
        metrics['train/steps_per_second'] = env_steps / max(tracker.seconds, 1e-9)
        for name, value in metrics.items():
            log.scalar(name, value, env_steps)
        tracker(env_steps, metrics)
    envs.close()
    policy.cpu().eval()
    return RLResult(policy=policy, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=env_steps)


def standardize_minibatches(advantages: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(A - mean) / (std + 1e-8) within each consecutive ``batch_size`` chunk.

    The same as standardising each minibatch on its own; a last chunk of one sample is left
    as it is.
    """
    full = (len(advantages) // batch_size) * batch_size
    head = advantages[:full].view(-1, batch_size)
    parts = [((head - head.mean(dim=1, keepdim=True))
              / (head.std(dim=1, keepdim=True) + 1e-8)).flatten()]
    tail = advantages[full:]
    if len(tail) > 1:
        tail = (tail - tail.mean()) / (tail.std() + 1e-8)
    return torch.cat(parts + [tail]) if len(tail) else parts[0]


def _update(policy: ActorCritic, optimizer: Optimizer, rollout, advantages: np.ndarray,
            returns: np.ndarray, config: PPOConfig, clip_range: float,
            batch_size: int) -> dict:
    obs = rollout.obs.flatten(0, 1)
    actions = rollout.actions.flatten(0, 1)
    old_log_probs = rollout.log_probs.flatten()
    device = obs.device
    advantages = torch.as_tensor(advantages, dtype=torch.float32, device=device).flatten()
    fields = (obs, actions, old_log_probs, rollout.values.flatten(), advantages,
              torch.as_tensor(returns, dtype=torch.float32, device=device).flatten())
    n = obs.shape[0]
    params = list(policy.parameters())
    losses = []
    for _ in range(config.epochs):
        # A gradient step on these networks is tens of small tensor operations, so the
        # epoch is shuffled and its advantages standardised in one go; minibatches are
        # then views.
        shuffled = fields
        if batch_size < n:
            # Drawn on the CPU: the same shuffles whatever device trains.
            order = torch.randperm(n).to(device)
            shuffled = [x[order] for x in fields]
        adv_all = standardize_minibatches(shuffled[4], batch_size) \
            if config.normalize_advantage else shuffled[4]
        for start in range(0, n, batch_size):
            end = start + batch_size
            mb_obs, mb_actions, mb_old_log_probs, mb_old_values, _, mb_returns = (
                x[start:end] for x in shuffled)
            log_probs, entropy = policy.log_prob_entropy(mb_obs, mb_actions,
                                                         entropy=config.ent_coef != 0.0)
            pg_loss = clipped_surrogate_loss(log_probs, mb_old_log_probs, adv_all[start:end],
                                             clip_range)
            v_loss = value_loss(policy.value(mb_obs), mb_returns, mb_old_values,
                                config.clip_range_vf)
            loss = pg_loss + config.vf_coef * v_loss
            if entropy is not None:
                loss = loss - config.ent_coef * entropy.mean()
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm(params, config.max_grad_norm)
            optimizer.step()
            losses.append(pg_loss.detach())
            losses.append(v_loss.detach())
        if config.target_kl is not None:
            with torch.no_grad():
                approx_kl, _ = ppo_diagnostics(log_probs, mb_old_log_probs, clip_range)
            if approx_kl.item() > 1.5 * config.target_kl:
                break
    # How far the whole update moved the policy, measured on the whole rollout.
    with torch.no_grad():
        log_probs, entropy = policy.log_prob_entropy(obs, actions)
        approx_kl, clip_fraction = ppo_diagnostics(log_probs, old_log_probs, clip_range)
    pg_loss, v_loss = torch.stack(losses).view(-1, 2).mean(dim=0).tolist()
    metrics = {'train/policy_loss': pg_loss, 'train/value_loss': v_loss,
               'train/entropy': entropy.mean().item(), 'train/approx_kl': approx_kl.item(),
               'train/clip_fraction': clip_fraction.item()}
    if policy.action_kind == 'box':
        metrics['train/std'] = float(policy.log_std.detach().exp().mean())
    return metrics
