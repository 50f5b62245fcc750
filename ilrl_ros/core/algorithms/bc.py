"""Behavior cloning: supervised learning of pi(a | s) from expert demonstrations.

Pomerleau, "ALVINN: An Autonomous Land Vehicle in a Neural Network", NIPS 1988; the
maximum-likelihood view as in Bain & Sammut, "A Framework for Behavioural Cloning", 1995.
Two heads: a deterministic one trained by mean squared error, and a diagonal Gaussian
trained by maximum likelihood. Observations and actions are normalised with statistics of
the training set, which the checkpoint stores inside the network.
"""

from dataclasses import asdict, dataclass
import logging
import math
import time

import numpy as np
import torch

from ilrl_ros.core.data import Demonstrations, Normalizer
from ilrl_ros.core.policies import MLPPolicy
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


@dataclass
class BCConfig:
    """Behavior cloning settings."""

    head: str = 'gaussian'
    """'gaussian' (maximum likelihood) or 'deterministic' (mean squared error)."""
    hidden: tuple = (256, 256)
    """Hidden layer widths of the MLP."""
    activation: str = 'relu'
    """Activation between hidden layers: relu, tanh or elu."""
    steps: int = 4000
    """Gradient steps."""
    batch_size: int = 256
    """Samples per gradient step."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to 10% over the run)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    val_fraction: float = 0.1
    """Fraction of whole episodes held out to report validation loss."""
    seed: int = 0
    """Seed for initialisation, the split and minibatches."""
    log_every: int = 200
    """Log and report progress every this many steps."""


def mse_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the squared error summed over action dimensions."""
    return ((predicted - target) ** 2).sum(dim=-1).mean()


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor,
                 target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -log N(target; mean, exp(log_std)^2), summed over dimensions."""
    z = (target - mean) * torch.exp(-log_std)
    per_dim = 0.5 * z ** 2 + log_std + 0.5 * math.log(2.0 * math.pi)
    return per_dim.sum(dim=-1).mean()


def bc_loss(policy: MLPPolicy, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The head's loss in normalised action units."""
    mean, log_std = policy.normalized_distribution(obs)
    target = policy.normalize_action(actions)
    if log_std is None:
        return mse_loss(mean, target)
    return gaussian_nll(mean, log_std, target)


def split_episodes(episode: np.ndarray, val_fraction: float, rng: np.random.Generator):
    """Return boolean train/validation masks that keep whole episodes together."""
    ids = np.unique(episode)
    n_val = max(1, int(round(len(ids) * val_fraction))) \
        if val_fraction > 0.0 and len(ids) >= 3 else 0
    val_ids = rng.choice(ids, size=n_val, replace=False) if n_val else np.array([], int)
    val = np.isin(episode, val_ids)
    return ~val, val


@dataclass
class TrainResult:
    """What ``train`` returns: the trained network and its log."""

    policy: MLPPolicy
    log: TrainingLog
    config: dict
    train_loss: float
    val_loss: float
    seconds: float


def train(data: Demonstrations, config: BCConfig = BCConfig(), log: TrainingLog = None,
          progress=None) -> TrainResult:
    """Fit a policy to ``data``. ``progress(step, total, metrics)`` is called as it goes."""
    if len(data) < 2:
        raise ValueError(f'behavior cloning needs at least 2 samples, the dataset has '
                         f'{len(data)}')
    log = log or TrainingLog()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_mask, val_mask = split_episodes(data.episode, config.val_fraction, rng)
    obs = torch.as_tensor(data.observations, dtype=torch.float32)
    act = torch.as_tensor(data.actions, dtype=torch.float32)
    obs_train, act_train = obs[train_mask], act[train_mask]
    policy = MLPPolicy(obs.shape[1], act.shape[1], hidden=config.hidden,
                       activation=config.activation, head=config.head)
    policy.set_normalization(Normalizer.fit(obs_train.numpy()),
                             Normalizer.fit(act_train.numpy()))
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps,
                                                          eta_min=0.1 * config.lr)
    n = len(obs_train)
    started = time.monotonic()
    train_loss = val_loss = float('nan')
    running = []
    for step in range(1, config.steps + 1):
        index = torch.from_numpy(rng.integers(0, n, size=min(config.batch_size, n)))
        loss = bc_loss(policy, obs_train[index], act_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(loss.item())
        if step % config.log_every == 0 or step == config.steps:
            train_loss = float(np.mean(running))
            running = []
            metrics = {'train/loss': train_loss, 'train/lr': schedule.get_last_lr()[0]}
            if val_mask.any():
                with torch.no_grad():
                    val_loss = bc_loss(policy, obs[val_mask], act[val_mask]).item()
                    # The likelihood of held-out actions falls as the Gaussian sharpens on
                    # near-deterministic experts; the mean action's error says whether the
                    # policy still generalises.
                    mean, _ = policy.normalized_distribution(obs[val_mask])
                    val_mse = mse_loss(mean, policy.normalize_action(act[val_mask])).item()
                metrics['eval/val_loss'] = val_loss
                metrics['eval/val_action_mse'] = val_mse
            for name, value in metrics.items():
                log.scalar(name, value, step)
            if progress:
                progress(step, config.steps, metrics)
    policy.eval()
    config_dict = asdict(config)
    config_dict['hidden'] = list(config.hidden)
    return TrainResult(policy=policy, log=log, config=config_dict, train_loss=train_loss,
                       val_loss=val_loss, seconds=time.monotonic() - started)
