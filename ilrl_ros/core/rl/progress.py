"""Reporting a run as it goes: progress callbacks and the returns of finished episodes."""

import math
import time

import numpy as np

from ilrl_ros.core.train_log import TrainingLog


class Progress:
    """Reports ``step/total`` with elapsed time to a callback at most every ``period_s``."""

    def __init__(self, total: int, report=None, period_s: float = 2.0):
        self.total, self.report, self.period_s = total, report, period_s
        self.started = time.monotonic()
        self._last = -math.inf

    def __call__(self, step: int, metrics: dict, force: bool = False) -> None:
        now = time.monotonic()
        if self.report and (force or now - self._last >= self.period_s or step >= self.total):
            self._last = now
            self.report(step, self.total, metrics)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class EpisodeReturns:
    """Sums rewards per episode; logs ``rollout/ep_return`` and ``rollout/ep_length``."""

    def __init__(self, log: TrainingLog, window: int = 10):
        self.log, self.window = log, window
        self.ret, self.length = 0.0, 0
        self.finished: list = []

    def add(self, reward: float, done: bool, step: int) -> None:
        self.ret += float(reward)
        self.length += 1
        if done:
            self.log.scalar('rollout/ep_return', self.ret, step)
            self.log.scalar('rollout/ep_length', self.length, step)
            self.finished.append(self.ret)
            self.ret, self.length = 0.0, 0

    def recent_mean(self) -> float:
        """Mean return of the last ``window`` episodes (nan before the first ends)."""
        recent = self.finished[-self.window:]
        return float(np.mean(recent)) if recent else float('nan')
