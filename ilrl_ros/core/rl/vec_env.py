"""Vectorised environments with same-step auto-reset, and the true final observations."""

import gymnasium as gym
import numpy as np


def make_vec_env(env_fn, num_envs: int, seed: int):
    """N copies of ``env_fn()`` stepped together (auto-reset on the next step after done)."""
    envs = gym.vector.SyncVectorEnv([env_fn for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)
    return envs


def final_observations(next_obs: np.ndarray, infos: dict, done: np.ndarray) -> np.ndarray:
    """The true s_{t+1} of each environment: the pre-reset observation where one ended.

    With same-step auto-reset, a vector env returns the next episode's first observation for
    environments that just ended, and the last one in ``infos['final_obs']``.
    """
    out = np.array(next_obs, dtype=np.float32, copy=True)
    if 'final_obs' in infos:
        for i in np.flatnonzero(done):
            out[i] = infos['final_obs'][i]
    return out
