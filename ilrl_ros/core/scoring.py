"""Score policies: run a checkpoint in its simulator, summarise episodes, tabulate results.

``evaluate_checkpoint`` is what ``ilrl evaluate`` runs; ``summarize`` turns per-episode
results (from the simulator or from the episode manager over ROS 2) into one row, and
``format_table`` prints rows as the Markdown table ``ilrl demo`` and live DAgger report.
``growth_exponent`` fits how a cost summed over the first T steps grows with T (compounding
error: Ross, Gordon & Bagnell 2011 bound it by T^2 eps for behavior cloning and by T eps for
DAgger), with a bootstrap interval over episodes.
"""

from dataclasses import dataclass
import math

import numpy as np


def evaluate_checkpoint(checkpoint, task=None, episodes: int = 10, seed: int = 1000) -> list:
    """Run a checkpoint in the task's simulator (no ROS); return per-episode results.

    Each result is a dict (episode from 1, seed, outcome, success, return, length,
    duration_s, and the track's mean |lateral| and collisions where the task has them),
    the shape the episode manager's results have over ROS 2.
    """
    from ilrl_ros.core.checkpoint import load_checkpoint
    from ilrl_ros.core.rl.evaluation import evaluate_policy
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    loaded = load_checkpoint(checkpoint)
    spec = load_spec(task) if task else loaded.spec
    if task:
        loaded = load_checkpoint(checkpoint, expected_spec=spec)
    evaluation = evaluate_policy(make_env(spec), loaded, episodes=episodes, seed=seed)
    results = []
    for stats in evaluation.episodes:
        row = stats.as_dict()
        del row['expert_steps']  # a policy alone: no expert
        if math.isnan(row['mean_abs_lateral']):
            row['mean_abs_lateral'] = None  # no track: null in JSON, not NaN
        row.update(episode=stats.episode + 1, length=stats.steps,
                   duration_s=stats.steps * spec.dt)
        results.append(row)
    return results


def summarize(results: list, label: str = None) -> dict:
    """Episodes, success rate, mean return and mean lap time of the finished episodes.

    ``results`` are dicts with outcome, success, return and (for the lap time) duration_s;
    aborted episodes are left out. With ``label`` the row names its policy.
    """
    done = [r for r in results if r['outcome'] != 'aborted']
    successes = [r for r in done if r['success']]
    row = {'policy': label} if label is not None else {}
    row.update({
        'episodes': len(done),
        'success_rate': len(successes) / len(done) if done else math.nan,
        'mean_return': sum(r['return'] for r in done) / len(done) if done else math.nan,
        'mean_lap_time_s': (sum(r['duration_s'] for r in successes) / len(successes)
                            if successes and all('duration_s' in r for r in successes)
                            else math.nan)})
    return row


def format_table(rows: list) -> str:
    """Rows of ``summarize`` with a label as a Markdown table."""
    header = '| policy | episodes | success rate | mean return | mean lap time (s) |'
    lines = [header, '|---|---:|---:|---:|---:|']
    for row in rows:
        lines.append(f'| {row["policy"]} | {row["episodes"]} | {row["success_rate"]:.0%} | '
                     f'{row["mean_return"]:.2f} | {row["mean_lap_time_s"]:.1f} |')
    return '\n'.join(lines)


@dataclass(frozen=True)
class Growth:
    """J(T) ~ c T^k fitted over a range of horizons: the exponent, its interval, the scale."""

    exponent: float
    """k, the least-squares slope of log J(T) against log T."""
    low: float
    """The interval's lower end (percentile bootstrap over episodes)."""
    high: float
    """The interval's upper end."""
    scale: float
    """c, so that c T^k is the fitted J(T)."""
    horizons: tuple
    """The horizons T the fit used (about evenly spaced in log T)."""


def _log_slope(log_t: np.ndarray, log_j: np.ndarray) -> tuple:
    centred = log_t - log_t.mean()
    slope = float(centred @ (log_j - log_j.mean()) / (centred @ centred))
    return slope, float(log_j.mean() - slope * log_t.mean())


def growth_exponent(costs, t_min: int = 10, points: int = 24, confidence: float = 0.95,
                    resamples: int = 2000, seed: int = 0) -> Growth:
    """Fit J(T) = c T^k to per-step costs; J(T) is the mean over episodes of the first T summed.

    ``costs`` is (episodes, horizon): row i, column t is episode i's cost at step t + 1 (fill
    steps after an episode ended as the protocol says, e.g. 1 after a crash, 0 after a
    finished lap). The fit is least squares on log J against log T at ``points`` horizons
    from ``t_min`` to the horizon, spaced evenly in log T so that long horizons do not
    outvote short ones; the interval resamples episodes with replacement (``resamples``
    times) and refits. A J(T) that is 0 somewhere cannot be fitted in logs: it is refused,
    as is a cost that is negative or not finite.
    """
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2 or costs.shape[0] < 1:
        raise ValueError(f'costs must be (episodes, horizon) with at least one episode, got '
                         f'shape {costs.shape}')
    if not np.all(np.isfinite(costs)) or np.any(costs < 0):
        raise ValueError('costs must be finite and not negative')
    horizon = costs.shape[1]
    if not 1 <= t_min < horizon or points < 2:
        raise ValueError(f't_min must be in [1, {horizon}) (the horizon) and points at least '
                         f'2; got t_min {t_min}, points {points}')
    if not 0.0 < confidence < 1.0 or resamples < 1:
        raise ValueError(f'confidence must be in (0, 1) and resamples at least 1; got '
                         f'{confidence}, {resamples}')
    horizons = np.unique(np.round(np.geomspace(t_min, horizon, points)).astype(int))
    log_t = np.log(horizons)
    summed = np.cumsum(costs, axis=1)[:, horizons - 1]       # (episodes, horizons)
    mean = summed.mean(axis=0)
    if np.any(mean <= 0.0):
        raise ValueError(f'J(T) is 0 at T = {int(horizons[np.argmax(mean <= 0)])}: a cost '
                         f'that is 0 cannot be fitted as c T^k')
    exponent, intercept = _log_slope(log_t, np.log(mean))
    rng = np.random.default_rng(seed)
    n = costs.shape[0]
    slopes = []
    for _ in range(resamples):
        resampled = summed[rng.integers(0, n, n)].mean(axis=0)
        if np.all(resampled > 0.0):
            slopes.append(_log_slope(log_t, np.log(resampled))[0])
    tail = (1.0 - confidence) / 2.0
    low, high = (np.quantile(slopes, [tail, 1.0 - tail]) if slopes
                 else (math.nan, math.nan))
    return Growth(exponent=exponent, low=float(low), high=float(high),
                  scale=float(math.exp(intercept)), horizons=tuple(int(t) for t in horizons))
