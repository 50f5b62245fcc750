"""Returns and advantages: the reward-to-go of an episode and GAE over a vector rollout."""

import numpy as np


def reward_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} over one episode (the REINFORCE return from step t)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def gae(rewards: np.ndarray, values: np.ndarray, terminated: np.ndarray,
        truncated: np.ndarray, next_values: np.ndarray, gamma: float, lam: float) -> tuple:
    """Generalised advantage estimation (Schulman et al. 2016) over a [T, N] rollout.

    ``values[t]`` is V(s_t); ``next_values[t]`` is V(s_{t+1}) of the same episode (for a
    truncated step, the value of the final observation before the reset). A terminated
    step bootstraps nothing; a truncated one bootstraps from ``next_values`` but stops the
    advantage recursion. Returns (advantages, returns = advantages + values).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    T = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(T - 1, -1, -1):
        not_terminal = 1.0 - terminated[t]
        delta = rewards[t] + gamma * next_values[t] * not_terminal - values[t]
        episode_goes_on = not_terminal * (1.0 - truncated[t])
        running = delta + gamma * lam * episode_goes_on * running
        advantages[t] = running
    return advantages, advantages + values
