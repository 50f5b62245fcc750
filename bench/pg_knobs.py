"""REINFORCE's knobs as the lectures turn them: a constant reward offset, baselines, returns.

Adding a constant c to every reward leaves the best policy of a fixed-horizon task as it
was, but without a baseline every step's weight G_t grows by c (T - t), a term that has
nothing to do with the action taken: the gradient estimate gets noisier and learning slows.
A baseline takes it out again, if it can represent it: per time step of the episode
('time_mean', exactly; c (T - t) depends on t only), a learned V(s) that sees t (once the
critic has caught up with targets c times larger), but not one mean over the whole batch
('batch_mean' leaves c (T - t - mean)), except with the full return, where every step gets
the same c T.

The task is ``FixedHorizonReach`` (defined here): a point on a line starting at x0 ~ U[-1,
1], actions left / stay / right by 0.1, reward -|x| per step, exactly 20 steps, observation
(x, t / 20). A uniformly random policy scores about -11, the best about -2. REINFORCE
(``ilrl_ros.core.algorithms.reinforce``, one thread, hidden (32, 32), gamma 1, 8 episodes a
batch) learns it in a few thousand steps. The grid: returns {reward-to-go, full} x baseline
{none, batch_mean, time_mean, value (the default critic: 10 Adam steps at 3e-3 per batch),
value+ (50 steps at 1e-2)} x offset {0, +c, -c}, ``--seeds`` seeds each.

Then CartPole-v1, where the policy decides how long an episode lasts: there the offset is a
reward for living, and its sign decides the task. +c turns reward 1 into 1 + c, a rescale
the optimizer hardly sees; -c (c > 1) pays for every step alive, and REINFORCE, baseline or
not, learns to drop the pole.

Printed: per condition the final greedy return (mean +/- std over seeds, 100 evaluation
episodes each, the env's own reward whatever the offset), the last training return, the
steps until the training return (mean of the last 5 batches) first reaches ``--threshold``
(median over the seeds that reach it, and how many do), and seconds per run. Written to
``--out`` (default ``bench/results/``): ``pg_knobs.json`` (every curve) and
``pg_knobs.png`` (learning curves, mean and +/- one std band over seeds). Nothing is
asserted.

Examples::

    nice -n 10 python bench/pg_knobs.py
    nice -n 10 python bench/pg_knobs.py --seeds 3 --steps 15000 --offset 20
    nice -n 10 python bench/pg_knobs.py --quick          # 2 seeds, short, a smoke test
"""

import argparse
import json
from pathlib import Path
import statistics
import sys
import time

import gymnasium as gym
import numpy as np

REPO = Path(__file__).resolve().parent.parent
HORIZON = 20
# (label, config overrides): the baselines compared, 'value+' a critic that keeps up.
BASELINE_RUNS = (('none', {'baseline': 'none'}),
                 ('batch_mean', {'baseline': 'batch_mean'}),
                 ('time_mean', {'baseline': 'time_mean'}),
                 ('value', {'baseline': 'value'}),
                 ('value+', {'baseline': 'value', 'value_steps': 50, 'value_lr': 1e-2}))
FULL_RETURN_BASELINES = ('none', 'batch_mean', 'value+')
CARTPOLE_BASELINES = ('none', 'value')
CARTPOLE_THRESHOLD = 100.0  # training return; a random policy's is about 22


class FixedHorizonReach(gym.Env):
    """Reach x = 0 on a line in exactly ``horizon`` steps; observation (x, t / horizon).

    x0 ~ U[-1, 1]; action 0, 1, 2 moves x by -step, 0, +step (x kept in [-2, 2]); reward
    -|x| after the move. Every episode is cut (truncated) at the horizon, never terminated,
    so a reward offset c adds exactly c * horizon to every episode's return.
    """

    def __init__(self, horizon: int = HORIZON, step: float = 0.1):
        self.horizon, self.step_size = horizon, step
        self.observation_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.x, self.t = 0.0, 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1.0, 1.0)), 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.t / self.horizon], dtype=np.float32)

    def step(self, action):
        self.x = float(np.clip(self.x + (int(action) - 1) * self.step_size, -2.0, 2.0))
        self.t += 1
        return self._obs(), -abs(self.x), False, self.t >= self.horizon, {}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Examples:\n  nice -n 10 python bench/pg_knobs.py\n'
               '  nice -n 10 python bench/pg_knobs.py --seeds 3 --steps 15000 --offset 20\n'
               '  nice -n 10 python bench/pg_knobs.py --quick')
    parser.add_argument('--seeds', type=int, default=5, help='seeds per condition (default: 5)')
    parser.add_argument('--steps', type=int, default=15_000,
                        help='environment steps per run on the reach task (default: 15000)')
    parser.add_argument('--offset', type=float, default=10.0,
                        help='the offset c; runs use 0, +c and -c (default: 10)')
    parser.add_argument('--threshold', type=float, default=-4.0,
                        help='training return that counts as learned on the reach task '
                        '(default: -4; random about -11, best about -2)')
    parser.add_argument('--cartpole-steps', type=int, default=10_000,
                        help='environment steps per CartPole-v1 run; 0 skips CartPole '
                        '(default: 10000)')
    parser.add_argument('--out', type=Path, default=REPO / 'bench' / 'results',
                        help='folder for pg_knobs.json and pg_knobs.png (default: '
                        'bench/results)')
    parser.add_argument('--quick', action='store_true',
                        help='2 seeds, 4000 steps, CartPole 3000: checks that it runs')
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.cartpole_steps = 2, 4000, 3000
    if args.seeds < 1 or args.steps < 1 or args.cartpole_steps < 0:
        parser.error('--seeds and --steps must be >= 1, --cartpole-steps >= 0')
    if not np.isfinite(args.offset) or args.offset == 0:
        parser.error(f'--offset must be a finite non-zero number, got {args.offset}')
    return args


def conditions(offset: float) -> list:
    """(task, returns, baseline label, offset, config overrides) of every condition."""
    runs = []
    for c in (0.0, offset, -offset):
        for label, overrides in BASELINE_RUNS:
            runs.append(('reach', 'reward_to_go', label, c, overrides))
    baseline_overrides = dict(BASELINE_RUNS)
    for c in (0.0, offset):
        for label in FULL_RETURN_BASELINES:
            runs.append(('reach', 'full', label, c, baseline_overrides[label]))
    for c in (0.0, offset, -offset):
        for label in CARTPOLE_BASELINES:
            runs.append(('CartPole-v1', 'reward_to_go', label, c, baseline_overrides[label]))
    return runs


def _curve(log, name: str) -> tuple:
    rows = [row for row in log.rows if row['name'] == name]
    return [int(row['step']) for row in rows], [float(row['value']) for row in rows]


def steps_to_threshold(steps: list, returns: list, threshold: float, window: int = 5):
    """First step at which the mean of the last ``window`` batch returns reaches threshold."""
    for i in range(len(returns)):
        if np.mean(returns[max(0, i - window + 1):i + 1]) >= threshold and i + 1 >= window:
            return steps[i]
    return None


def run_one(task: str, returns: str, overrides: dict, offset: float, seed: int,
            steps: int) -> dict:
    from ilrl_ros.core.algorithms import reinforce
    from ilrl_ros.core.rl.evaluation import evaluate_policy

    env_fn = FixedHorizonReach if task == 'reach' else (lambda: gym.make(task))
    hidden = (32, 32) if task == 'reach' else (64, 64)
    gamma = 1.0 if task == 'reach' else 0.99
    config = reinforce.REINFORCEConfig(total_steps=steps, returns=returns,
                                       reward_offset=offset, gamma=gamma, hidden=hidden,
                                       seed=seed, **overrides)
    started = time.monotonic()
    result = reinforce.train(env_fn, config)
    seconds = time.monotonic() - started
    curve_steps, curve_returns = _curve(result.log, 'rollout/ep_return')
    _, entropy = _curve(result.log, 'train/entropy')
    evaluation = evaluate_policy(env_fn(), result.policy.act,
                                 episodes=100 if task == 'reach' else 10,
                                 seed=100_000 + 1000 * seed)
    return {'steps': curve_steps, 'returns': curve_returns, 'entropy': entropy,
            'eval_return': evaluation.mean_return, 'seconds': seconds}


def _fmt_steps(values: list, total: int) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return f'not in {total // 1000}k (0/{len(values)})'
    return f'{statistics.median(reached) / 1000:.1f}k ({len(reached)}/{len(values)})'


def _mean_std(values: list) -> str:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f'{np.mean(values):.2f} ± {std:.2f}'


def summarise(results: list, args) -> list:
    """One table row (a dict) per condition, over its seeds."""
    rows = []
    for entry in results:
        runs = entry['runs']
        threshold = args.threshold if entry['task'] == 'reach' else CARTPOLE_THRESHOLD
        total = args.steps if entry['task'] == 'reach' else args.cartpole_steps
        rows.append({
            'task': entry['task'], 'returns': entry['returns'], 'baseline': entry['baseline'],
            'offset': entry['offset'],
            'final': _mean_std([r['eval_return'] for r in runs]),
            'last_train': _mean_std([float(np.mean(r['returns'][-5:])) for r in runs]),
            'to_threshold': _fmt_steps([steps_to_threshold(r['steps'], r['returns'],
                                                           threshold) for r in runs], total),
            'threshold': threshold,
            'entropy': f'{np.mean([r["entropy"][-1] for r in runs]):.2f}',
            'seconds': f'{np.mean([r["seconds"] for r in runs]):.1f}'})
    return rows


def print_table(rows: list) -> None:
    print('| task | returns | baseline | offset | greedy return (mean ± std) | last training '
          'return | steps to threshold (reached) | final entropy | s/run |')
    print('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for r in rows:
        print(f'| {r["task"]} | {r["returns"]} | {r["baseline"]} | {r["offset"]:+g} | '
              f'{r["final"]} | {r["last_train"]} | {r["to_threshold"]} | {r["entropy"]} | '
              f'{r["seconds"]} |')


def _smooth(values: list, window: int = 5) -> np.ndarray:
    """Mean of the last ``window`` batches at each batch (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def _band(runs: list, grid: np.ndarray) -> tuple:
    curves = np.array([np.interp(grid, r['steps'], _smooth(r['returns'])) for r in runs])
    return curves.mean(axis=0), curves.std(axis=0)


def plot(results: list, args, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [('reach', 'reward_to_go', 0.0), ('reach', 'reward_to_go', args.offset),
              ('reach', 'reward_to_go', -args.offset), ('reach', 'full', None),
              ('CartPole-v1', 'reward_to_go', None)]
    if not args.cartpole_steps:
        panels.pop()
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, (task, returns, offset) in zip(axes.flat, panels):
        chosen = [e for e in results if e['task'] == task and e['returns'] == returns
                  and (offset is None or e['offset'] == offset)]
        total = args.steps if task == 'reach' else args.cartpole_steps
        grid = np.linspace(0, total, 101)[1:]
        for entry in chosen:
            mean, std = _band(entry['runs'], grid)
            label = entry['baseline'] + (f', offset {entry["offset"]:+g}' if offset is None
                                         else '')
            line, = ax.plot(grid, mean, label=label)
            ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        if task == 'reach':
            ax.axhline(args.threshold, color='grey', lw=0.8, ls=':')
        title = f'{task}, {returns.replace("_", "-")}'
        ax.set_title(title + (f', offset {offset:+g}' if offset is not None else ''))
        ax.set_xlabel('environment steps')
        ax.set_ylabel("training episodes' return (env's own reward)")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    fig.suptitle(f'REINFORCE, {args.seeds} seeds: mean and ±1 std band over seeds of the '
                 'training return (mean of the last 5 batches)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _rounded(document):
    """Floats to 5 significant digits, so that the JSON stays small."""
    if isinstance(document, float):
        return float(f'{document:.5g}')
    if isinstance(document, dict):
        return {k: _rounded(v) for k, v in document.items()}
    if isinstance(document, (list, tuple)):
        return [_rounded(v) for v in document]
    return document


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(1)
    todo = [c for c in conditions(args.offset)
            if c[0] == 'reach' or args.cartpole_steps]
    print(f'REINFORCE knobs: {len(todo)} conditions x {args.seeds} seeds; reach task '
          f'{args.steps} steps, CartPole-v1 {args.cartpole_steps} steps; offset c = '
          f'{args.offset:g}\n', flush=True)
    started, cpu_started = time.monotonic(), time.process_time()
    results = []
    for task, returns, label, offset, overrides in todo:
        steps = args.steps if task == 'reach' else args.cartpole_steps
        runs = [run_one(task, returns, overrides, offset, seed, steps)
                for seed in range(args.seeds)]
        results.append({'task': task, 'returns': returns, 'baseline': label,
                        'offset': offset, 'overrides': overrides, 'runs': runs})
        print(f'  {task} {returns} {label} offset {offset:+g}: greedy '
              f'{_mean_std([r["eval_return"] for r in runs])}', flush=True)
    rows = summarise(results, args)
    print(f'\nthreshold: reach {args.threshold:g} (random about -11, best about -2), '
          f'CartPole-v1 {CARTPOLE_THRESHOLD:g}; total {time.monotonic() - started:.0f} s wall, '
          f'{time.process_time() - cpu_started:.0f} s CPU\n')
    print_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / 'pg_knobs.json', 'w') as f:
        json.dump(_rounded({'args': {k: str(v) if isinstance(v, Path) else v
                                     for k, v in vars(args).items()},
                            'table': rows, 'results': results}), f)
    plot(results, args, args.out / 'pg_knobs.png')
    print(f'\nwrote {args.out / "pg_knobs.json"} and {args.out / "pg_knobs.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
