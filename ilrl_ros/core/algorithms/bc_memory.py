"""Behavior cloning of a policy with memory: sequences of whole episodes, truncated BPTT.

``bc.train`` comes here when its config asks for a memory (``memory: stack`` or ``gru``;
``networks/memory.py``). Each gradient step takes the next ``chunk`` steps of a minibatch of
training episodes, starting from the memory state the previous chunk of the same episodes
left (detached: backpropagation through time is truncated at chunk boundaries, Williams &
Peng, "An efficient gradient-based algorithm for on-line training of recurrent network
trajectories", Neural Computation 1990); an episode's first chunk starts fresh, as the
deployed policy does after ``reset()``. So every step is trained with the memory it will
have when it acts, not with a window cut out of the middle of an episode.
"""

import logging

import numpy as np
import torch

from ilrl_ros.core.data import Demonstrations, Normalizer
from ilrl_ros.core.networks.actor_critic import gaussian_log_prob
from ilrl_ros.core.networks.memory import check_memory, MemoryPolicy
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

MAX_CHUNK = 10_000
"""Steps in one chunk of truncated backpropagation through time."""


def check_chunk(chunk) -> int:
    """``chunk`` as a whole number of steps from 1 to ``MAX_CHUNK``, or a ValueError."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
        raise ValueError(f'chunk must be a whole number of steps from 1 to {MAX_CHUNK}, got '
                         f'{chunk!r}')
    return chunk


def episode_arrays(data: Demonstrations, rows: np.ndarray) -> tuple:
    """The chosen rows as whole episodes: (obs [E, T, D], actions [E, T, A], mask [E, T]).

    Episodes shorter than the longest are padded at the end; ``mask`` is 1 on real steps.
    """
    episodes = [np.flatnonzero(rows & (data.episode == e))
                for e in np.unique(data.episode[rows])]
    length = max(len(index) for index in episodes)
    obs = np.zeros((len(episodes), length, data.observations.shape[1]), np.float32)
    act = np.zeros((len(episodes), length, data.actions.shape[1]), np.float32)
    mask = np.zeros((len(episodes), length), np.float32)
    for i, index in enumerate(episodes):
        obs[i, :len(index)] = data.observations[index]
        act[i, :len(index)] = data.actions[index]
        mask[i, :len(index)] = 1.0
    return torch.from_numpy(obs), torch.from_numpy(act), torch.from_numpy(mask)


def sequence_loss(policy: MemoryPolicy, obs: torch.Tensor, actions: torch.Tensor,
                  mask: torch.Tensor, fresh: torch.Tensor, state: torch.Tensor = None) -> tuple:
    """(loss over the real steps, state after the chunk, mean-action MSE) in normalised units.

    The head's loss as in ``bc.bc_loss``: Gaussian negative log-likelihood or squared error,
    summed over action dimensions, averaged over the steps where ``mask`` is 1.
    """
    mean, log_std, state = policy.sequence_distribution(obs, fresh, state)
    target = policy.normalize_action(actions)
    steps = mask.sum().clamp(min=1.0)
    mse = (((mean - target) ** 2).sum(dim=-1) * mask).sum() / steps
    if log_std is None:
        return mse, state, mse
    nll = -(gaussian_log_prob(target, mean, log_std) * mask).sum() / steps
    return nll, state, mse


def train_memory(data: Demonstrations, config, split: tuple, rng: np.random.Generator,
                 log: TrainingLog = None, progress=None, weights=None,
                 init_policy: MemoryPolicy = None, device=torch.device('cpu')) -> tuple:
    """Fit a ``MemoryPolicy`` to ``data``; (policy, train loss, validation loss).

    ``config`` is a ``bc.BCConfig`` naming a memory; ``split`` the (train, validation) row
    masks of ``bc.split_episodes``, whole episodes each; ``rng`` draws the minibatches;
    ``device`` is where it trains (the policy comes back on the CPU).
    """
    check_memory(config.memory, config.history, config.memory_size)
    chunk = check_chunk(config.chunk)
    if config.head not in ('gaussian', 'deterministic'):
        raise ValueError(f'a policy with memory has a gaussian or deterministic head, got '
                         f'head {config.head!r}')
    if weights is not None:
        raise ValueError('sample weights are not supported with a memory (memory '
                         f'{config.memory!r}); train without weights or with memory none')
    if data.spec.observation.image_layout():
        raise ValueError(f'a policy with memory takes vector observations; task '
                         f'{data.spec.name!r} sees images')
    log = log or TrainingLog()
    torch.manual_seed(config.seed)
    train_rows, val_rows = split
    obs, act, mask = episode_arrays(data, train_rows)
    policy = MemoryPolicy(obs.shape[2], act.shape[2], hidden=config.hidden,
                          activation=config.activation, head=config.head,
                          memory=config.memory, history=config.history,
                          memory_size=config.memory_size)
    policy.set_normalization(Normalizer.fit(data.observations[train_rows]),
                             Normalizer.fit(data.actions[train_rows]))
    if init_policy is not None:
        try:
            policy.load_state_dict(init_policy.state_dict())
        except RuntimeError as error:
            raise ValueError(f'init_policy does not fit this config and dataset '
                             f'({error})') from None
    val = episode_arrays(data, val_rows) if val_rows.any() else None
    # Built and normalised on the CPU from the seeded generator, then moved: the same start
    # on any device. The padded episodes move once; chunks are sliced there.
    policy.to(device)
    obs, act, mask = obs.to(device), act.to(device), mask.to(device)
    val = None if val is None else tuple(x.to(device) for x in val)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps,
                                                          eta_min=0.1 * config.lr)
    n_episodes, length = mask.shape
    per_batch = max(1, min(n_episodes, config.batch_size // chunk))
    train_loss = val_loss = float('nan')
    running, step, pending = [], 0, []
    while step < config.steps:
        if not pending:
            # A new minibatch of episodes, run from their starts chunk by chunk.
            index = torch.from_numpy(rng.choice(n_episodes, per_batch, replace=False)).to(device)
            pending = [(index, start) for start in range(0, length, chunk)]
            state = None
        index, start = pending.pop(0)
        rows = mask[index, start:start + chunk]
        if rows.sum() == 0:
            pending = []
            continue
        fresh = torch.zeros_like(rows, dtype=torch.bool)
        fresh[:, 0] = start == 0
        loss, state, _ = sequence_loss(policy, obs[index, start:start + chunk],
                                       act[index, start:start + chunk], rows, fresh, state)
        state = state.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        running.append(loss.item())
        if step % config.log_every == 0 or step == config.steps:
            train_loss = float(np.mean(running))
            running = []
            metrics = {'train/loss': train_loss, 'train/lr': schedule.get_last_lr()[0]}
            if val is not None:
                with torch.no_grad():
                    v_obs, v_act, v_mask = val
                    v_fresh = torch.zeros_like(v_mask, dtype=torch.bool)
                    v_fresh[:, 0] = True
                    val_loss, _, val_mse = sequence_loss(policy, v_obs, v_act, v_mask, v_fresh)
                    val_loss = val_loss.item()
                metrics['eval/val_loss'] = val_loss
                metrics['eval/val_action_mse'] = val_mse.item()
            for name, value in metrics.items():
                log.scalar(name, value, step)
            if progress:
                progress(step, config.steps, metrics)
    policy.cpu().eval()
    policy.reset()
    return policy, train_loss, val_loss
