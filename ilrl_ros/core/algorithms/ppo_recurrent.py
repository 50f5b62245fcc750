"""PPO with a memory: a recurrent (GRU) or observation-stacking actor-critic.

PPO (Schulman et al., arXiv:1707.06347) as ``ppo.py``, with the actor and critic of
``networks/memory.MemoryActorCritic``; the recurrent-PPO recipe of Stable-Baselines3-contrib's
RecurrentPPO and of Pleines et al., "Generalization, Mayhems and Limits in Recurrent Proximal
Policy Optimization", arXiv:2205.11104, 2022: the rollout keeps each step's memory state;
the update cuts each environment's rollout into sequences of ``seq_len`` steps and replays
each from the state the rollout had at its first step (gradients flow back through that
sequence only), clearing the memory where an episode started inside it. Box actions only.
"""

from dataclasses import dataclass
import logging
from typing import ClassVar

import numpy as np
import torch

from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.algorithms.ppo import (clipped_surrogate_loss, ClippedUpdateConfig,
                                          ppo_diagnostics)
from ilrl_ros.core.networks.memory import check_memory, MemoryActorCritic
from ilrl_ros.core.rl.configs import config_dict
from ilrl_ros.core.rl.gae import gae
from ilrl_ros.core.rl.losses import explained_variance
from ilrl_ros.core.rl.optim import clip_grad_norm, Optimizer, schedule
from ilrl_ros.core.rl.progress import Progress
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.rl.vec_env import final_observations, make_vec_env
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

# ppo.py's Pendulum-v1 preset (rl-baselines3-zoo), with minibatches of 256 steps (8
# sequences of 32): a sequence runs its memory step by step, so fewer, larger minibatches.
RECURRENT_PPO_PRESETS = {
    'Pendulum-v1': dict(total_steps=100_000, num_envs=4, num_steps=1024, batch_size=256,
                        gae_lambda=0.95, gamma=0.9, epochs=10, ent_coef=0.0, lr=1e-3,
                        clip_range=0.2),
}


@dataclass
class RecurrentPPOConfig(ClippedUpdateConfig):
    """Recurrent PPO settings: PPO's clipped update, a memory, and the sequence length."""

    presets: ClassVar[dict] = RECURRENT_PPO_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'num_envs', 'num_steps', 'batch_size',
                                        'epochs', 'seq_len')

    memory: str = 'gru'
    """'gru' (a recurrent actor and critic) or 'stack' (each sees the last ``history``
    observations; history 1 is the memoryless baseline)."""
    history: int = 4
    """Observations a 'stack' memory holds, this one included (1 to 64)."""
    memory_size: int = 64
    """Hidden units of each 'gru' memory (1 to 4096)."""
    seq_len: int = 32
    """Steps per training sequence (backpropagation through time is cut there)."""
    num_steps: int = 2048
    """Vector steps per rollout (a multiple of seq_len is used fully; the rest is cut)."""
    batch_size: int = 256
    """Steps per minibatch, in whole sequences (at least one)."""
    hidden: tuple = (64, 64)
    """Hidden widths of the actor's and the critic's MLP on their memory."""

    def __post_init__(self):
        super().__post_init__()
        check_memory(self.memory, self.history, self.memory_size)
        if self.seq_len > self.num_steps:
            raise ValueError(f'RecurrentPPOConfig.seq_len ({self.seq_len}) must be at most '
                             f'num_steps ({self.num_steps})')


def train(env_fn, config: RecurrentPPOConfig = RecurrentPPOConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train a ``MemoryActorCritic`` on ``env_fn()`` environments; see the module docstring."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision):
        return _train(env_fn, config, log, progress)


def _collect(envs, policy, carry: dict, num_steps: int) -> dict:
    """One rollout of ``num_steps`` vector steps; ``carry`` keeps obs, state and returns."""
    n = envs.num_envs
    out = {key: [] for key in ('obs', 'fresh', 'state', 'actions', 'log_probs', 'values')}
    rewards, terminated, truncated = (np.zeros((num_steps, n)) for _ in range(3))
    next_values = np.zeros((num_steps, n))
    cut_values = {}
    std = policy.log_std.exp()
    device = std.device
    with torch.inference_mode():
        for t in range(num_steps):
            obs = torch.from_numpy(carry['obs']).to(device)
            mean, value, state = policy.step(obs, carry['state'], carry['fresh'])
            actions = mean + std * torch.randn_like(mean)
            log_probs, _ = policy.log_prob_entropy(mean, actions)
            for key, item in (('obs', obs), ('fresh', carry['fresh']),
                              ('state', carry['state']), ('actions', actions),
                              ('log_probs', log_probs), ('values', value)):
                out[key].append(item)
            clipped = torch.max(torch.min(actions, policy.action_high), policy.action_low)
            next_obs, reward, term, trunc, infos = envs.step(clipped.cpu().numpy())
            done = term | trunc
            carry['returns'] += reward
            if done.any():
                carry['finished'].extend(carry['returns'][done].tolist())
                carry['returns'][done] = 0.0
                cut = trunc & ~term
                if cut.any():
                    # The true last observation, seen with the memory of its own episode.
                    final = torch.from_numpy(final_observations(next_obs, infos, cut)).to(device)
                    _, final_values, _ = policy.step(final, state, torch.zeros(
                        n, dtype=bool, device=device))
                    cut_values[t] = (cut, final_values.cpu().numpy())
            carry['obs'] = np.asarray(next_obs, dtype=np.float32)
            carry['state'], carry['fresh'] = state, torch.from_numpy(done).to(device)
            rewards[t], terminated[t], truncated[t] = reward, term, trunc
        _, last_values, _ = policy.step(torch.from_numpy(carry['obs']).to(device), carry['state'],
                                        carry['fresh'])
        rollout = {key: torch.stack(items).clone() for key, items in out.items()}
    values = rollout['values'].cpu().numpy()
    next_values[:-1] = values[1:]
    next_values[-1] = last_values.cpu().numpy()
    for t, (cut, final_values) in cut_values.items():
        next_values[t, cut] = final_values[cut]
    rollout.update(rewards=rewards, terminated=terminated, truncated=truncated,
                   next_values=next_values)
    return rollout


def _train(env_fn, config: RecurrentPPOConfig, log: TrainingLog, progress) -> RLResult:
    torch.manual_seed(config.seed)
    envs = make_vec_env(env_fn, config.num_envs, config.seed)
    space = envs.single_action_space
    if not hasattr(space, 'low'):
        raise ValueError('recurrent PPO acts on Box actions; this environment has '
                         f'{type(space).__name__} actions')
    policy = MemoryActorCritic(
        envs.single_observation_space.shape[0], space.shape[0], hidden=config.hidden,
        activation=config.activation, memory=config.memory, history=config.history,
        memory_size=config.memory_size, log_std_init=config.log_std_init,
        action_low=space.low, action_high=space.high)
    # Built on the CPU from the seeded generator, then moved: the same start on any device.
    device = resolve_device(config.device)
    policy.to(device)
    optimizer = Optimizer(policy.parameters(), lr=config.lr, kind='adam', eps=1e-5)
    obs, _ = envs.reset(seed=config.seed)
    carry = {'obs': np.asarray(obs, dtype=np.float32), 'state': policy.core_state(
        config.num_envs), 'fresh': torch.ones(config.num_envs, dtype=torch.bool, device=device),
        'returns': np.zeros(config.num_envs), 'finished': []}
    rollout_size = config.num_steps * config.num_envs
    updates = -(-config.total_steps // rollout_size)
    tracker = Progress(updates * rollout_size, progress)
    env_steps = 0
    for update in range(updates):
        remaining = 1.0 - update / updates
        optimizer.lr = lr = schedule(config.lr, config.lr_schedule, remaining)
        rollout = _collect(envs, policy, carry, config.num_steps)
        env_steps += rollout_size
        advantages, returns = gae(rollout['rewards'], rollout['values'].cpu().numpy(),
                                  rollout['terminated'], rollout['truncated'],
                                  rollout['next_values'], config.gamma, config.gae_lambda)
        metrics = _update(policy, optimizer, rollout, advantages, returns, config)
        metrics['train/lr'] = lr
        metrics['train/explained_variance'] = explained_variance(
            rollout['values'].cpu().numpy().ravel(), returns.ravel())
        if carry['finished']:
            metrics['rollout/ep_return'] = float(np.mean(carry['finished']))
            carry['finished'] = []
        for name, value in metrics.items():
            log.scalar(name, value, env_steps)
        tracker(env_steps, metrics)
    envs.close()
    policy.cpu().eval()
    policy.reset()
    return RLResult(policy=policy, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=env_steps)


def sequences(x: torch.Tensor, seq_len: int) -> torch.Tensor:
    """[T, N, ...] -> [N * (T // seq_len), seq_len, ...]: each environment's steps in order."""
    T, n = x.shape[:2]
    usable = (T // seq_len) * seq_len
    x = x[:usable].transpose(0, 1)  # [N, T, ...]
    return x.reshape(n * (usable // seq_len), seq_len, *x.shape[2:])


def _update(policy: MemoryActorCritic, optimizer: Optimizer, rollout: dict,
            advantages: np.ndarray, returns: np.ndarray, config: RecurrentPPOConfig) -> dict:
    L = config.seq_len
    obs = sequences(rollout['obs'], L)
    fresh = sequences(rollout['fresh'], L)
    # Each sequence starts from the state the rollout had there; its first step is fresh if
    # an episode began there.
    state0 = sequences(rollout['state'], L)[:, 0]
    actions = sequences(rollout['actions'], L)
    old_log_probs = sequences(rollout['log_probs'], L)
    device = obs.device
    adv = sequences(torch.as_tensor(advantages, dtype=torch.float32, device=device), L)
    ret = sequences(torch.as_tensor(returns, dtype=torch.float32, device=device), L)
    n_seq = obs.shape[0]
    per_batch = max(1, min(n_seq, config.batch_size // L))
    params = list(policy.parameters())
    losses = []
    for _ in range(config.epochs):
        # Drawn on the CPU: the same shuffles whatever device trains.
        order = torch.randperm(n_seq).to(device)
        for start in range(0, n_seq, per_batch):
            idx = order[start:start + per_batch]
            mean, values = policy.sequence(obs[idx], state0[idx], fresh[idx])
            log_probs, entropy = policy.log_prob_entropy(mean, actions[idx])
            mb_adv = adv[idx].flatten()
            if mb_adv.numel() > 1:
                mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss = clipped_surrogate_loss(log_probs.flatten(), old_log_probs[idx].flatten(),
                                             mb_adv, config.clip_range)
            v_loss = ((values - ret[idx]) ** 2).mean()
            loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy.mean()
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm(params, config.max_grad_norm)
            optimizer.step()
            losses.append(torch.stack([pg_loss.detach(), v_loss.detach()]))
    with torch.no_grad():
        mean, _ = policy.sequence(obs, state0, fresh)
        log_probs, entropy = policy.log_prob_entropy(mean, actions)
        approx_kl, clip_fraction = ppo_diagnostics(log_probs, old_log_probs, config.clip_range)
    pg_loss, v_loss = torch.stack(losses).mean(dim=0).tolist()
    return {'train/policy_loss': pg_loss, 'train/value_loss': v_loss,
            'train/entropy': entropy.mean().item(), 'train/approx_kl': approx_kl.item(),
            'train/clip_fraction': clip_fraction.item(),
            'train/std': float(policy.log_std.detach().exp().mean())}
