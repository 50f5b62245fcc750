"""What reward- and advantage-weighted regression share (core/algorithms/rwr.py, awr.py).

The dataset's rewards (refused with what to record when a row has none), discounted
returns-to-go within each episode, the effective sample size of a set of weights, and the
result type both return.
"""

from dataclasses import dataclass

import numpy as np

from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.rl.gae import reward_to_go
from ilrl_ros.core.train_log import TrainingLog


def require_rewards(data: Demonstrations, algorithm: str) -> np.ndarray:
    """The dataset's rewards; a clear error if any row has none (NaN)."""
    reward = np.asarray(data.reward, dtype=np.float64)
    missing = int(np.sum(~np.isfinite(reward)))
    if missing:
        raise ValueError(
            f'{algorithm} weights samples by reward, but {missing} of {len(reward)} dataset '
            f'rows have no reward (NaN): the bag needs the reward topic (the reward '
            f"monitor's 'reward'), recorded alongside the commands, before `ilrl convert`; "
            f'or collect in the simulator with `ilrl collect`, which records rewards')
    return reward


def returns_to_go(reward: np.ndarray, episode: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_k gamma^k r_{t+k} within each episode (rows of an episode in time order).

    An episode's return stops at its last row: a recording cut short counts as ended.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f'gamma must be in [0, 1], got {gamma}')
    reward = np.asarray(reward, dtype=np.float64)
    out = np.empty_like(reward)
    for e in np.unique(episode):
        rows = np.flatnonzero(episode == e)
        out[rows] = reward_to_go(reward[rows], gamma)
    return out


def effective_sample_size(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: how many equally weighted rows the weights amount to."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w ** 2))


@dataclass
class WeightedResult:
    """What RWR/AWR training returns: the policy, its log, and the weights it used."""

    policy: object
    log: TrainingLog
    config: dict
    train_loss: float
    val_loss: float
    seconds: float
    weights: np.ndarray
    """The weight of every dataset row (before scaling to mean 1)."""
    returns: np.ndarray
    """The return each weight came from (RWR: return-to-go; AWR: the value targets)."""
    advantages: np.ndarray = None
    """AWR only: returns minus the learned value."""
    effective_sample_size: float = float('nan')
