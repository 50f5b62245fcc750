"""Targets and losses that more than one algorithm uses, as small pure functions.

Each algorithm's own losses stay in its file; these are the ones they share: the TD target
(DQN, DDPG, TD3, SAC), the critics' squared TD error (TD3, SAC), the value loss and the
explained variance of the value function (REINFORCE, A2C, PPO).
"""

from typing import Optional

import numpy as np
import torch


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, next_values: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """The TD target y = r + gamma (1 - terminated) V(s'): terminal steps do not bootstrap.

    A step cut by a time limit is not terminal; it bootstraps from its true next state.
    """
    return rewards + gamma * (1.0 - terminated) * next_values


def critic_loss(q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum over the critics of the mean squared TD error, q [n, B], targets [B]."""
    return ((q - targets) ** 2).mean(dim=-1).sum()


def value_loss(values: torch.Tensor, returns: torch.Tensor,
               old_values: Optional[torch.Tensor] = None,
               clip_range: Optional[float] = None) -> torch.Tensor:
    """Mean squared error of V(s) against the return targets.

    With ``clip_range``, the pessimistic (larger) error of the new value and of the value
    kept within ``clip_range`` of the rollout's (``old_values``), as in OpenAI Baselines'
    PPO2. No factor 1/2: ``vf_coef`` carries the weight, as in Stable-Baselines3.
    """
    unclipped = (values - returns) ** 2
    if clip_range is None:
        return unclipped.mean()
    clipped_values = old_values + (values - old_values).clamp(-clip_range, clip_range)
    return torch.max(unclipped, (clipped_values - returns) ** 2).mean()


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - predicted] / Var[target]: 1 is perfect, 0 no better than a constant."""
    variance = np.var(target)
    return float('nan') if variance == 0 else float(1.0 - np.var(target - predicted) / variance)
