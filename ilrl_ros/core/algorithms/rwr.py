"""Reward-weighted regression: behavior cloning weighted by exp(return-to-go / beta).

Peters & Schaal, "Reinforcement Learning by Reward-Weighted Regression for Operational
Space Control", ICML 2007. Each recorded (observation, action) pair is weighted by the
exponentiated discounted return that followed it in its episode, R_t = sum_k gamma^k
r_{t+k}, so that from demonstrations of mixed quality the actions that led to more reward
count more. This is the offline form: one weighted regression on recorded data (their
algorithm alternates it with collecting new rollouts). The rewards are the dataset's
``reward`` column: the reward monitor's topic in the bag.
"""

from dataclasses import asdict, dataclass, field
import logging

import numpy as np

from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.train_log import TrainingLog
from ilrl_ros.core.weighted import (effective_sample_size, require_rewards, returns_to_go,
                                    WeightedResult)

logger = logging.getLogger(__name__)


def rwr_weights(returns: np.ndarray, beta: float) -> np.ndarray:
    """w_t = exp((R_t - max R) / beta), in (0, 1].

    Subtracting the largest return before exponentiating keeps exp() from overflowing and
    changes every weight by the same factor exp(-max R / beta), which the weighted
    regression's normalisation (weights scaled to mean 1) removes again.
    """
    if not beta > 0.0:
        raise ValueError(f'the temperature beta must be > 0, got {beta}')
    returns = np.asarray(returns, dtype=np.float64)
    return np.exp((returns - returns.max()) / beta)


@dataclass
class RWRConfig:
    """Reward-weighted regression settings."""

    beta: float = 1.0
    """Temperature, in units of return: a return higher by beta weighs e times more."""
    gamma: float = 0.99
    """Discount of the return-to-go."""
    bc: BCConfig = field(default_factory=BCConfig)
    """The weighted behavior cloning (network, steps, learning rate, seed)."""


def train(data: Demonstrations, config: RWRConfig = RWRConfig(), log: TrainingLog = None,
          progress=None) -> WeightedResult:
    """Weight every row by ``rwr_weights`` of its return-to-go and fit weighted BC."""
    reward = require_rewards(data, 'reward-weighted regression')
    returns = returns_to_go(reward, data.episode, config.gamma)
    weights = rwr_weights(returns, config.beta)
    ess = effective_sample_size(weights)
    logger.info('RWR: returns-to-go %.3g..%.3g, effective sample size %.0f of %d rows',
                returns.min(), returns.max(), ess, len(weights))
    log = log or TrainingLog()
    with torch_settings(1):
        result = train_bc(data, config.bc, log, progress, weights=weights)
    log.scalar('train/effective_sample_size', ess, config.bc.steps)
    config_dict = asdict(config)
    config_dict['bc'] = result.config
    return WeightedResult(policy=result.policy, log=result.log, config=config_dict,
                          train_loss=result.train_loss, val_loss=result.val_loss,
                          seconds=result.seconds, weights=weights, returns=returns,
                          effective_sample_size=ess)
