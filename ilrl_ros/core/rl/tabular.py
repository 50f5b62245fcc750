"""The Bellman backup that value iteration and policy iteration share (tabular MDPs)."""

import numpy as np


def bellman_backup(P: np.ndarray, R: np.ndarray, values: np.ndarray, gamma: float,
                   terminal: np.ndarray) -> np.ndarray:
    """Q[s, a] = sum_s' P[s, a, s'] (R[s, a, s'] + gamma V[s']), and 0 for terminal s.

    One look ahead from ``values``: the max over actions is the value iteration update, the
    argmax is policy improvement.
    """
    q = np.einsum('ijk,ijk->ij', P, R) + gamma * (P @ values)
    q[terminal] = 0.0
    return q
