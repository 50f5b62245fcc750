"""Behavior cloning: supervised learning of pi(a | s) from expert demonstrations.

Pomerleau, "ALVINN: An Autonomous Land Vehicle in a Neural Network", NIPS 1988; the
maximum-likelihood view as in Bain & Sammut, "A Framework for Behavioural Cloning", 1995.
Three heads: a deterministic one trained by mean squared error, a diagonal Gaussian
trained by maximum likelihood, and a mixture of Gaussians (``mdn``; Bishop, "Mixture Density
Networks", 1994) for demonstrations with more than one answer per state. Observations and
actions are normalised with statistics of the training set, which the checkpoint stores
inside the network.
"""

from dataclasses import asdict, dataclass
import logging
import math
import time

import numpy as np
import torch

from ilrl_ros.core.data import Demonstrations, Normalizer
from ilrl_ros.core.device import check_device_setting, resolve_device
from ilrl_ros.core.networks import make_policy, MLPPolicy
from ilrl_ros.core.networks.mixture import (check_components, mixture_log_prob,
                                            MixtureDensityPolicy)
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

BC_HEADS = ('gaussian', 'deterministic', 'mdn')


@dataclass
class BCConfig:
    """Behavior cloning settings."""

    head: str = 'gaussian'
    """'gaussian' (maximum likelihood), 'deterministic' (mean squared error) or 'mdn' (a
    mixture of ``components`` Gaussians by maximum likelihood; it acts on the mean of its
    most probable component, so it commits to one mode where the others average them)."""
    components: int = 2
    """Gaussians in the mixture of the 'mdn' head (1 to 64); other heads ignore it."""
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
    memory: str = 'none'
    """'none' (a policy of the current observation), 'stack' (of the last ``history``
    observations) or 'gru' (a recurrent policy); with a memory the network is trained on
    episode chunks (``bc_memory.py``) and keeps its state between actions until reset."""
    history: int = 4
    """Observations a 'stack' memory holds, this one included (1 to 64)."""
    memory_size: int = 64
    """Hidden units of a 'gru' memory (1 to 4096)."""
    chunk: int = 32
    """With a memory: steps per gradient step; gradients flow back through a chunk only
    (truncated backpropagation through time), the state carries on to the next."""
    device: str = 'cpu'
    """Where the network, the optimiser and the dataset's tensors live: 'cpu', 'cuda',
    'cuda:N' or 'auto' (a GPU when there is one); the checkpoint holds CPU tensors
    whatever trained it."""

    def __post_init__(self):
        check_device_setting(type(self).__name__, self.device)


def _batch_mean(per_sample: torch.Tensor, weights: torch.Tensor = None) -> torch.Tensor:
    # Weighted: the mean of w_i * loss_i, so weights of mean 1 keep the loss's scale.
    return per_sample.mean() if weights is None else (per_sample * weights).mean()


def mse_loss(predicted: torch.Tensor, target: torch.Tensor,
             weights: torch.Tensor = None) -> torch.Tensor:
    """Mean over the batch (of w_i times) the squared error summed over action dimensions."""
    return _batch_mean(((predicted - target) ** 2).sum(dim=-1), weights)


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor,
                 weights: torch.Tensor = None) -> torch.Tensor:
    """Mean over the batch (of w_i times) -log N(target; mean, exp(log_std)^2)."""
    z = (target - mean) * torch.exp(-log_std)
    per_dim = 0.5 * z ** 2 + log_std + 0.5 * math.log(2.0 * math.pi)
    return _batch_mean(per_dim.sum(dim=-1), weights)


def mdn_nll(logits: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor,
            target: torch.Tensor, weights: torch.Tensor = None) -> torch.Tensor:
    """Mean over the batch (of w_i times) -log sum_k softmax(logits)_k N(target; mean_k, std_k).

    Shapes: logits [B, K], means and log_stds [B, K, D], target [B, D]; with K = 1 it is
    ``gaussian_nll``. Log-sum-exp inside (``networks.mixture.mixture_log_prob``).
    """
    return _batch_mean(-mixture_log_prob(logits, means, log_stds, target), weights)


def bc_loss(policy: MLPPolicy, obs: torch.Tensor, actions: torch.Tensor,
            weights: torch.Tensor = None) -> torch.Tensor:
    """The head's loss in normalised action units, optionally weighted per sample."""
    target = policy.normalize_action(actions)
    if isinstance(policy, MixtureDensityPolicy):
        return mdn_nll(*policy.normalized_mixture(obs), target, weights)
    mean, log_std = policy.normalized_distribution(obs)
    if log_std is None:
        return mse_loss(mean, target, weights)
    return gaussian_nll(mean, log_std, target, weights)


def check_weights(weights, rows: int) -> np.ndarray:
    """Validate per-sample weights (finite, >= 0, one per row, not all zero); float64 copy."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (rows,):
        raise ValueError(f'sample weights: expected one weight per dataset row ({rows},), '
                         f'got shape {w.shape}')
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(f'sample weights: {int(bad.sum())} of {rows} are not finite (NaN or '
                         f'inf), first at row {int(np.flatnonzero(bad)[0])}')
    if (w < 0).any():
        raise ValueError(f'sample weights: {int((w < 0).sum())} of {rows} are negative '
                         f'(minimum {w.min():.4g}); weights must be >= 0')
    if not (w > 0).any():
        raise ValueError(f'sample weights: all {rows} are zero; at least one row must count')
    return w


def mean_one(weights: np.ndarray) -> np.ndarray:
    """Scale weights to mean 1 (the unweighted loss's scale); all-zero weights are refused."""
    total = float(np.sum(weights))
    if not total > 0.0:
        raise ValueError('sample weights: every weight of these rows is zero')
    return np.asarray(weights, dtype=np.float64) * (len(weights) / total)


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
          progress=None, weights=None, init_policy: MLPPolicy = None) -> TrainResult:
    """Fit a policy to ``data``. ``progress(step, total, metrics)`` is called as it goes.

    ``weights`` (one per row, >= 0) weight each sample's loss, scaled to mean 1 over the
    training rows (RWR, AWR; the validation metrics are weighted alike); without them every
    row counts the same. ``init_policy`` warm-starts from a network of the same shape, its
    weights and its normalisation.
    """
    if len(data) < 2:
        raise ValueError(f'behavior cloning needs at least 2 samples, the dataset has '
                         f'{len(data)}')
    device = resolve_device(config.device)
    if config.memory != 'none':
        from ilrl_ros.core.algorithms.bc_memory import train_memory
        started, log = time.monotonic(), log or TrainingLog()
        rng = np.random.default_rng(config.seed)
        split = split_episodes(data.episode, config.val_fraction, rng)
        policy, train_loss, val_loss = train_memory(data, config, split, rng, log, progress,
                                                    weights, init_policy, device)
        return TrainResult(policy=policy, log=log, config={**asdict(config), 'hidden': list(
            config.hidden)}, train_loss=train_loss, val_loss=val_loss,
            seconds=time.monotonic() - started)
    if config.head not in BC_HEADS:
        raise ValueError(f'head must be one of {", ".join(BC_HEADS)}, got {config.head!r}')
    check_components(config.components)
    if weights is not None:
        weights = check_weights(weights, len(data))
    log = log or TrainingLog()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_mask, val_mask = split_episodes(data.episode, config.val_fraction, rng)
    obs = torch.as_tensor(data.observations, dtype=torch.float32)
    act = torch.as_tensor(data.actions, dtype=torch.float32)
    obs_train, act_train = obs[train_mask], act[train_mask]
    w_train = w_val = None
    if weights is not None:
        if not (weights[train_mask] > 0).any():
            raise ValueError('sample weights: every training row has weight zero (the '
                             'weighted rows all fell in held-out episodes); lower '
                             'val_fraction or give the training episodes weight')
        w_train = torch.as_tensor(mean_one(weights[train_mask]), dtype=torch.float32)
        if (weights[val_mask] > 0).any():
            w_val = torch.as_tensor(mean_one(weights[val_mask]), dtype=torch.float32)
    if config.head == 'mdn':
        if data.spec.observation.image_layout():
            raise ValueError(f'head mdn takes vector observations; task {data.spec.name!r} '
                             f'sees images (use head gaussian or deterministic)')
        policy = MixtureDensityPolicy(obs.shape[1], act.shape[1], hidden=config.hidden,
                                      activation=config.activation,
                                      components=check_components(config.components))
    else:
        policy = make_policy(data.spec, obs.shape[1], act.shape[1], hidden=config.hidden,
                             activation=config.activation, head=config.head)
    policy.set_normalization(Normalizer.fit(obs_train.numpy()),
                             Normalizer.fit(act_train.numpy()))
    if init_policy is not None:
        try:
            policy.load_state_dict(init_policy.state_dict())
        except RuntimeError as error:
            raise ValueError(f'init_policy does not fit this config and dataset '
                             f'({error})') from None
    # Built and normalised on the CPU from the seeded generator, then moved: the same start
    # on any device. The whole dataset moves once; minibatches are gathered there.
    policy.to(device)
    obs_val, act_val = obs[val_mask].to(device), act[val_mask].to(device)
    obs_train, act_train = obs_train.to(device), act_train.to(device)
    w_train = None if w_train is None else w_train.to(device)
    w_val = None if w_val is None else w_val.to(device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps,
                                                          eta_min=0.1 * config.lr)
    n = len(obs_train)
    started = time.monotonic()
    train_loss = val_loss = float('nan')
    running = []
    for step in range(1, config.steps + 1):
        index = torch.from_numpy(rng.integers(0, n, size=min(config.batch_size, n))).to(device)
        loss = bc_loss(policy, obs_train[index], act_train[index],
                       None if w_train is None else w_train[index])
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
                    val_loss = bc_loss(policy, obs_val, act_val, w_val).item()
                    # The likelihood of held-out actions falls as the Gaussian sharpens on
                    # near-deterministic experts; the mean action's error says whether the
                    # policy still generalises.
                    mean, _ = policy.normalized_distribution(obs_val)
                    val_mse = mse_loss(mean, policy.normalize_action(act_val),
                                       w_val).item()
                metrics['eval/val_loss'] = val_loss
                metrics['eval/val_action_mse'] = val_mse
            for name, value in metrics.items():
                log.scalar(name, value, step)
            if progress:
                progress(step, config.steps, metrics)
    policy.cpu().eval()
    config_dict = asdict(config)
    config_dict['hidden'] = list(config.hidden)
    return TrainResult(policy=policy, log=log, config=config_dict, train_loss=train_loss,
                       val_loss=val_loss, seconds=time.monotonic() - started)
