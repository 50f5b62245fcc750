"""Advantage actor-critic (A2C): the synchronous variant of A3C, with GAE.

Mnih, Badia, Mirza, Graves, Lillicrap, Harley, Silver & Kavukcuoglu, "Asynchronous Methods
for Deep Reinforcement Learning", ICML 2016; synchronous, batched over vectorised
environments as in OpenAI Baselines. One gradient step per short rollout, on
-E[log pi(a|s) A] + vf_coef (V(s) - R)^2 - ent_coef H. Defaults are Stable-Baselines3's;
``A2CConfig.for_env`` gives the rl-baselines3-zoo's settings for a few gymnasium tasks.
"""

from dataclasses import dataclass
import logging
from typing import ClassVar

import numpy as np
import torch

from ilrl_ros.core.device import resolve_device
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


# rl-baselines3-zoo hyperparams/a2c.yml ('normalize: true' is VecNormalize: observations
# and rewards). The zoo's Pendulum-v1 uses generalised state-dependent exploration
# (use_sde) with log_std_init -2, the log std of its noise *weights*; this network's
# state-independent Gaussian with log std -2 (std 0.14) hardly explores (mean return about
# -1050 after 200k steps, against about -240 after 400k with the default 0), so that one
# setting is left at its default.
A2C_PRESETS = {
    'CartPole-v1': dict(total_steps=500_000, num_envs=8, ent_coef=0.0,
                        normalize_observations=False),
    'Pendulum-v1': dict(total_steps=1_000_000, num_envs=8, num_steps=8, ent_coef=0.0,
                        max_grad_norm=0.5, gae_lambda=0.9, vf_coef=0.4, gamma=0.9,
                        use_rms_prop=True, normalize_advantage=False, lr=7e-4,
                        lr_schedule='linear', ortho_init=False,
                        normalize_observations=True, normalize_rewards=True),
}


@dataclass
class A2CConfig(RLConfig):
    """A2C settings (defaults: Stable-Baselines3's A2C; ``for_env`` gives the zoo's)."""

    presets: ClassVar[dict] = A2C_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'num_envs', 'num_steps')
    fraction_fields: ClassVar[tuple] = ('gamma', 'gae_lambda')

    total_steps: int = 100_000
    """Environment steps (over all environments); the last update may overshoot."""
    num_envs: int = 1
    """Environments stepped together."""
    num_steps: int = 5
    """Vector steps per rollout (one gradient step each)."""
    lr: float = 7e-4
    """Learning rate at the start."""
    lr_schedule: str = 'constant'
    """'constant', or 'linear' (annealed to 0 over the run)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE lambda; 1 gives the n-step returns of the original A2C."""
    normalize_advantage: bool = False
    """Standardise advantages within each rollout."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Clip the global gradient norm to this."""
    use_rms_prop: bool = True
    """RMSprop (alpha 0.99, eps 1e-5) as in the paper; False: Adam."""
    hidden: tuple = (64, 64)
    """Hidden widths of the actor and (separately) the critic."""
    activation: str = 'tanh'
    """Activation between hidden layers: tanh, relu or elu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy."""
    ortho_init: bool = True
    """Orthogonal initialisation of the weights."""
    normalize_observations: bool = True
    """Keep running observation statistics in the network and normalise with them."""
    normalize_rewards: bool = False
    """Scale rewards by the running std of the discounted return (VecNormalize's)."""
    seed: int = 0
    """Seed for the network, the sampling and the environments."""


def a2c_policy_loss(log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """-E[log pi(a|s) A(s, a)], the advantages held fixed."""
    return -(log_probs * advantages.detach()).mean()


def train(env_fn, config: A2CConfig = A2CConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train an ``ActorCritic`` on ``env_fn()`` environments; see the module docstring."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision):
        return _train(env_fn, config, log, progress)


def _train(env_fn, config: A2CConfig, log: TrainingLog, progress) -> RLResult:
    torch.manual_seed(config.seed)
    envs = make_vec_env(env_fn, config.num_envs, config.seed)
    policy = actor_critic_for_spaces(
        envs.single_observation_space, envs.single_action_space, hidden=config.hidden,
        activation=config.activation, log_std_init=config.log_std_init,
        ortho_init=config.ortho_init, normalize_observations=config.normalize_observations)
    # Built on the CPU from the seeded generator, then moved: the same start on any device.
    device = resolve_device(config.device)
    policy.to(device)
    params = list(policy.parameters())
    optimizer = Optimizer(params, lr=config.lr, eps=1e-5,
                          kind='rmsprop' if config.use_rms_prop else 'adam')
    scaler = RewardScaler(config.num_envs, config.gamma) if config.normalize_rewards else None
    collector = RolloutCollector(envs, policy, config.seed, scaler)
    rollout_size = config.num_steps * config.num_envs
    updates = -(-config.total_steps // rollout_size)
    tracker = Progress(updates * rollout_size, progress)
    # Logging every update would cost more than the update itself: average over ~1% of the
    # run instead.
    log_every = max(1, updates // 100)
    sums, count, env_steps = {}, 0, 0
    for update in range(updates):
        lr = schedule(config.lr, config.lr_schedule, 1.0 - update / updates)
        optimizer.lr = lr
        rollout = collector.collect(config.num_steps)
        env_steps += rollout_size
        advantages, returns = gae(rollout.rewards, rollout.values.cpu().numpy(),
                                  rollout.terminated, rollout.truncated,
                                  rollout.next_values, config.gamma, config.gae_lambda)
        adv = torch.as_tensor(advantages, dtype=torch.float32, device=device).flatten()
        if config.normalize_advantage and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        log_probs, entropy = policy.log_prob_entropy(rollout.obs.flatten(0, 1),
                                                     rollout.actions.flatten(0, 1))
        values = policy.value(rollout.obs.flatten(0, 1))
        pg_loss = a2c_policy_loss(log_probs, adv)
        v_loss = value_loss(values, torch.as_tensor(returns, dtype=torch.float32,
                                                    device=device).flatten())
        entropy_mean = entropy.mean()
        loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy_mean
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(params, config.max_grad_norm)
        optimizer.step()
        for name, value in (('policy_loss', pg_loss), ('value_loss', v_loss),
                            ('entropy', entropy_mean)):
            sums[name] = sums.get(name, 0.0) + value.item()
        count += 1
        if count == log_every or update == updates - 1:
            metrics = {f'train/{name}': total / count for name, total in sums.items()}
            sums, count = {}, 0
            metrics['train/lr'] = lr
            metrics['train/explained_variance'] = explained_variance(
                rollout.values.cpu().numpy().ravel(), returns.ravel())
            if policy.action_kind == 'box':
                metrics['train/std'] = float(policy.log_std.detach().exp().mean())
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
