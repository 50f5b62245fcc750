"""Advantage-weighted regression: behavior cloning weighted by exp(advantage / beta).

Peng, Kumar, Zhang & Levine, "Advantage-Weighted Regression: Simple and Scalable
Off-Policy Reinforcement Learning", arXiv:1910.00177, 2019. A value network V(s) is fitted
to the recorded data's returns; each row's advantage A = R - V(s) says whether its action
did better than usual from that state, and the policy is a regression onto the actions
weighted by min(exp(A / beta), w_max). Unlike RWR's raw returns, the learned baseline
removes what the state alone explains (how near the episode's end it was, how good the
place was), so rows are compared with others from similar states.

Returns R are TD(lambda) returns as in Peng et al. (lambda = 0.95 there), recomputed with
the current V between rounds of value fitting, or Monte Carlo returns-to-go
(``returns='monte_carlo'``). This is the offline form: one value fit and one weighted
regression on recorded demonstrations of mixed quality with their rewards (the paper
alternates these with collecting new data). Every episode's last row is treated as
terminal (no bootstrap past it), as a bag gives no other end-of-episode signal.
"""

from dataclasses import asdict, dataclass, field
import logging
import math

import numpy as np
import torch

from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc
from ilrl_ros.core.data import Demonstrations, Normalizer
from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.networks import mlp
from ilrl_ros.core.rl.gae import gae
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.train_log import TrainingLog
from ilrl_ros.core.weighted import (effective_sample_size, require_rewards, returns_to_go,
                                    WeightedResult)

logger = logging.getLogger(__name__)

RETURNS = ('td_lambda', 'monte_carlo')


def td_lambda_returns(reward: np.ndarray, values: np.ndarray, episode: np.ndarray,
                      gamma: float, lam: float) -> np.ndarray:
    """R^lambda_t = r_t + gamma ((1 - lambda) V(s_{t+1}) + lambda R^lambda_{t+1}), per episode.

    ``values[t]`` is V(s_t); past an episode's last row nothing is bootstrapped
    (R^lambda = r there). lambda = 1 gives the Monte Carlo return-to-go, lambda = 0 the
    one-step target r_t + gamma V(s_{t+1}). Computed as GAE advantages plus V.
    """
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f'gamma and lambda must be in [0, 1], got {gamma} and {lam}')
    reward = np.asarray(reward, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(reward)
    for e in np.unique(episode):
        rows = np.flatnonzero(episode == e)
        v = values[rows]
        next_v = np.append(v[1:], 0.0)
        terminated = np.zeros(len(rows))
        terminated[-1] = 1.0
        _, returns = gae(reward[rows], v, terminated, np.zeros(len(rows)), next_v, gamma, lam)
        out[rows] = returns
    return out


def awr_weights(advantages: np.ndarray, beta: float, w_max: float) -> np.ndarray:
    """The AWR weight min(exp(A / beta), w_max), computed without overflowing exp."""
    if not beta > 0.0 or not w_max > 0.0:
        raise ValueError(f'beta and w_max must be > 0, got {beta} and {w_max}')
    a = np.asarray(advantages, dtype=np.float64)
    # Capping the exponent a little above log(w_max) avoids inf; the clip is then exact.
    return np.minimum(np.exp(np.minimum(a / beta, math.log(w_max) + 1.0)), w_max)


class ValueNet(torch.nn.Module):
    """V(s): normalised observation -> MLP -> a value in return units."""

    def __init__(self, observations: np.ndarray, targets: np.ndarray, hidden=(128, 128)):
        super().__init__()
        norm = Normalizer.fit(observations)
        self.register_buffer('obs_mean', torch.as_tensor(norm.mean, dtype=torch.float32))
        self.register_buffer('obs_std', torch.as_tensor(norm.std, dtype=torch.float32))
        # Regress in units of the returns' spread: the same learning rate suits any reward.
        self.ret_mean = float(np.mean(targets))
        self.ret_std = float(max(np.std(targets), 1e-6))
        self.net = mlp([observations.shape[1], *hidden, 1], 'relu')

    def normalized(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net((obs - self.obs_mean) / self.obs_std).squeeze(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.normalized(obs) * self.ret_std + self.ret_mean


@dataclass
class AWRConfig:
    """Advantage-weighted regression settings (defaults from Peng et al. 2019)."""

    beta: float = 1.0
    """Temperature, in units of return: an advantage higher by beta weighs e times more."""
    w_max: float = 20.0
    """Clip on the weights (the paper's omega_max)."""
    gamma: float = 0.99
    """Discount."""
    lam: float = 0.95
    """TD(lambda)'s lambda."""
    returns: str = 'td_lambda'
    """Value targets and advantages from 'td_lambda' or 'monte_carlo' returns."""
    value_hidden: tuple = (128, 128)
    """Hidden layer widths of the value network."""
    value_rounds: int = 5
    """Rounds of value fitting, TD(lambda) targets recomputed with the current V each round."""
    value_steps: int = 200
    """Gradient steps per value round (the paper's 200)."""
    value_lr: float = 1e-3
    """Adam learning rate of the value network."""
    value_batch_size: int = 256
    """Samples per value gradient step."""
    bc: BCConfig = field(default_factory=BCConfig)
    """The weighted behavior cloning (network, steps, learning rate, seed)."""


def fit_value(observations: np.ndarray, reward: np.ndarray, episode: np.ndarray,
              config: AWRConfig, rng: np.random.Generator, log: TrainingLog = None,
              progress=None) -> tuple:
    """Fit V to the returns; return (V at every row, the final returns).

    V trains on the device of the behavior cloning that follows (``config.bc.device``).
    """
    if config.returns not in RETURNS:
        raise ValueError(f'returns {config.returns!r} is not one of {", ".join(RETURNS)}')
    monte_carlo = returns_to_go(reward, episode, config.gamma)
    device = resolve_device(config.bc.device)
    obs = torch.as_tensor(np.asarray(observations, dtype=np.float32), device=device)
    # Built on the CPU from the seeded generator, then moved: the same start on any device.
    value = ValueNet(observations, monte_carlo, config.value_hidden).to(device)
    optimizer = torch.optim.Adam(value.parameters(), lr=config.value_lr)
    targets = monte_carlo
    total = config.value_rounds * config.value_steps
    n = len(obs)
    step = 0
    for _ in range(config.value_rounds):
        if config.returns == 'td_lambda':
            with torch.no_grad():
                v = value(obs).cpu().numpy().astype(np.float64)
            targets = td_lambda_returns(reward, v, episode, config.gamma, config.lam)
        target_n = torch.as_tensor((targets - value.ret_mean) / value.ret_std,
                                   dtype=torch.float32, device=device)
        for _ in range(config.value_steps):
            index = torch.from_numpy(rng.integers(0, n, size=min(config.value_batch_size, n))
                                     ).to(device)
            loss = ((value.normalized(obs[index]) - target_n[index]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        if log:
            log.scalar('train/value_loss', loss.item(), step)
        if progress:
            progress(step, total, {'train/value_loss': loss.item()})
    with torch.no_grad():
        v = value(obs).cpu().numpy().astype(np.float64)
    if config.returns == 'td_lambda':
        targets = td_lambda_returns(reward, v, episode, config.gamma, config.lam)
    return v, targets


def train(data: Demonstrations, config: AWRConfig = AWRConfig(), log: TrainingLog = None,
          progress=None) -> WeightedResult:
    """Fit V, weight every row by ``awr_weights`` of its advantage, and fit weighted BC."""
    reward = require_rewards(data, 'advantage-weighted regression')
    log = log or TrainingLog()
    with torch_settings(1):
        torch.manual_seed(config.bc.seed)
        rng = np.random.default_rng(config.bc.seed)
        values, returns = fit_value(data.observations, reward, data.episode, config, rng,
                                    log, progress)
        advantages = returns - values
        weights = awr_weights(advantages, config.beta, config.w_max)
        ess = effective_sample_size(weights)
        logger.info('AWR: advantages mean %.3g std %.3g, %.1f%% of weights clipped at %g, '
                    'effective sample size %.0f of %d rows', advantages.mean(),
                    advantages.std(), 100 * np.mean(weights >= config.w_max), config.w_max,
                    ess, len(weights))
        result = train_bc(data, config.bc, log, progress, weights=weights)
    log.scalar('train/effective_sample_size', ess, config.bc.steps)
    config_dict = asdict(config)
    config_dict['value_hidden'] = list(config.value_hidden)
    config_dict['bc'] = result.config
    return WeightedResult(policy=result.policy, log=result.log, config=config_dict,
                          train_loss=result.train_loss, val_loss=result.val_loss,
                          seconds=result.seconds, weights=weights, returns=returns,
                          advantages=advantages, effective_sample_size=ess)
