r"""Online RL through ROS 2: SAC on ``pendulum`` four ways, and the delay table.

The same step budget for each way:

=====  =======================================================================
mode   what runs
=====  =======================================================================
(a)    in-process simulator, act then update (``train_synchronous``), no ROS
(b)    through ROS 2, lock-step mock robot: ``RosEnv`` acts, then updates
(c)    through ROS 2, free-running mock robot on a sim clock at
       ``--real-time-factor``; the policy node acts (exploring), the learner
       (``ilrl_ros.nodes.learner``, this process) trains on ``transitions``
       and swaps a checkpoint into the policy node every ``--swap-every``
       updates: the asynchronous learner. The world does not wait.
(d)    the same free-running robot and clock; ``RosEnv`` acts, then updates
       in one process: the synchronous learner.
=====  =======================================================================

The graph of (b)-(d) runs as an ``ilrl sim`` process of its own (as ``ros2 launch`` would),
with its own ``ROS_DOMAIN_ID`` per run. Every mode uses the same learner code
(``core/rl/online.py`` over ``core/rl/learners.py``) with the zoo's SAC preset for
Pendulum-v1 and one gradient step per environment step at most.

Learning curves: a copy of the policy every ``--snapshot-every`` environment steps in
(a), (b), (d), and every checkpoint the learner swapped in (c), evaluated afterwards in the
simulator (deterministic, ``--eval-episodes`` episodes, the same reset seeds for all).
Printed: return against environment steps and against wall-clock seconds, control steps
answered on time while the learner ran (the mock robot's ``commands_on_time`` over its
steps: a fresh command arrived before the next physics step), learner updates per second,
checkpoint swaps; a PNG of the curves; JSON of everything.

The delay table: SAC in the simulator with every action applied 2 control periods late
(``DelayedActions``, as a lock-step mock robot with ``action_delay_s`` = 2 periods), with
and without the last 2 actions appended to the observation (``observation.action_history``),
next to no delay.

Targets (printed as PASS / MISS, never asserted): (b) within seed noise of (a); (c) reaches
-200 within 20k steps; (c) >= 99.5% of control steps on time; (c) at least as fast per
wall-clock second as (d) (time to first reach -400); augmentation recovers most of the
return lost to the delay.

    ROS_DOMAIN_ID=80 python bench/online_rl.py --json bench/results/online_rl.json \\
        --png bench/results/online_rl.png
"""

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TASK = 'pendulum'
MODES = ('a', 'b', 'c', 'd')
LABELS = {'a': '(a) in-process', 'b': '(b) ROS 2 lock-step', 'c': '(c) ROS 2 async learner',
          'd': '(d) ROS 2 sync learner'}


def evaluate(policy, episodes: int, spec=None) -> float:
    """Mean deterministic return of a policy network in the simulator (fixed reset seeds)."""
    import torch

    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    env = make_env(spec or load_spec(TASK))
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=50_000 + k)
        total, done = 0.0, False
        while not done:
            with torch.inference_mode():
                action = policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def run_mode(mode: str, seed: int, args, out: Path) -> dict:
    from ilrl_ros.core.checkpoint import load_checkpoint
    from ilrl_ros.core.rl.online import OnlineLearner, train_synchronous
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    from ilrl_ros.core.training import make_config, PRESET_FOR_TASK
    from ilrl_ros.online_run import run_async, run_sync
    import gymnasium as gym
    spec = load_spec(TASK)
    snapshots = []

    def keep(snapshot):
        snapshots.append((snapshot.env_steps, snapshot.seconds, snapshot.updates,
                          snapshot.policy))
    os.environ['ROS_DOMAIN_ID'] = str(args.domain + MODES.index(mode) * 10 + seed % 10)
    folder = out / f'{mode}_seed{seed}'
    common = dict(seed=seed, clock='sim', real_time_factor=args.real_time_factor)
    started = time.monotonic()
    result = {'mode': mode, 'seed': seed}
    if mode == 'a':
        config = make_config('sac', PRESET_FOR_TASK[TASK], seed=seed)
        online = OnlineLearner('sac', spec.observation.size,
                               gym.spaces.Box(spec.action.low.astype(np.float32),
                                              spec.action.high.astype(np.float32)), config)
        counts = train_synchronous(make_env(spec), online, args.steps, seed=seed,
                                   snapshot_every=args.snapshot_every, on_snapshot=keep)
        result.update(seconds=counts['seconds'], updates=counts['updates'], skipped=0)
    elif mode in ('b', 'd'):
        run = run_sync(TASK, 'sac', args.steps, folder, lock_step=mode == 'b',
                       snapshot_every=args.snapshot_every, on_snapshot=keep, **common)
        result.update(seconds=run.seconds, updates=run.updates, skipped=run.skipped,
                      robot=run.robot)
    else:
        run = run_async(TASK, 'sac', args.steps, folder, swap_every=args.swap_every,
                        keep_checkpoints=10**6, **common)
        result.update(seconds=run.seconds, updates=run.updates, robot=run.robot,
                      swaps=len(run.swaps), swaps_accepted=sum(1 for s in run.swaps if s[4]))
        for updates, steps, seconds, path, accepted in run.swaps:
            if accepted and Path(path).exists():
                snapshots.append((steps, seconds, updates,
                                  load_checkpoint(path, expected_spec=spec).network))
    result['wall_s'] = time.monotonic() - started
    result['curve'] = [(steps, seconds, updates, evaluate(policy, args.eval_episodes))
                       for steps, seconds, updates, policy in snapshots]
    result['final_return'] = result['curve'][-1][3] if result['curve'] else float('nan')
    robot = result.get('robot') or {}
    counted = robot.get('commands_on_time', 0) + robot.get('commands_missing', 0)
    if mode in ('c', 'd') and counted:
        # A free-running robot: the share of its steps (from the first command on) before
        # which a fresh command came.
        result['on_time'] = robot['commands_on_time'] / counted
        result['longest_command_gap'] = robot.get('longest_command_gap')
    return result


def delay_table(args) -> list:
    """SAC in the simulator: no delay, a 2-period action delay, and the delay with history."""
    import yaml

    from ilrl_ros.core.training import train_rl
    from ilrl_ros.core.spec import tasks_dir
    text = yaml.safe_load((tasks_dir() / f'{TASK}.yaml').read_text())
    text['observation']['action_history'] = 2
    folder = Path(tempfile.mkdtemp())
    augmented = folder / 'pendulum_history.yaml'
    augmented.write_text(yaml.safe_dump(text))
    rows = []
    for label, task, delay in (('no delay', TASK, 0), ('delay 2, no history', TASK, 2),
                               ('delay 2, last 2 actions', str(augmented), 2)):
        returns = []
        for seed in range(args.seeds):
            run = train_rl('sac', task=task, steps=args.steps, seed=seed,
                           eval_episodes=args.eval_episodes, action_delay_steps=delay)
            returns.append(run.evaluation.mean_return)
        rows.append({'setting': label, 'returns': returns, 'mean': float(np.mean(returns)),
                     'std': float(np.std(returns))})
        print(f'  {label:<26} {np.mean(returns):8.1f} +/- {np.std(returns):6.1f}  '
              f'({", ".join(f"{r:.0f}" for r in returns)})', flush=True)
    return rows


def first_reaching(curve, threshold: float, index: int):
    for point in curve:
        if point[3] >= threshold:
            return point[index]
    return None


def summarize(results: list, delays: list, args) -> dict:
    by_mode = {m: [r for r in results if r['mode'] == m] for m in MODES}
    print('\nmode                        final return        wall s  updates/s  on time  '
          'swaps  steps to -200  s to -400')
    summary = {}
    for mode, runs in by_mode.items():
        if not runs:
            continue
        finals = [r['final_return'] for r in runs]
        ups = [r['updates'] / r['seconds'] for r in runs]
        on_time = [r['on_time'] for r in runs if 'on_time' in r]
        to200 = [first_reaching(r['curve'], -200, 0) for r in runs]
        to400 = [first_reaching(r['curve'], -400, 1) for r in runs]
        summary[mode] = {'final_mean': float(np.mean(finals)), 'final_std': float(np.std(finals)),
                         'seconds': float(np.mean([r['seconds'] for r in runs])),
                         'updates_per_s': float(np.mean(ups)),
                         'on_time': float(np.mean(on_time)) if on_time else None,
                         'steps_to_-200': to200, 'seconds_to_-400': to400}
        swaps = [r.get('swaps_accepted') for r in runs if 'swaps' in r]
        print(f'{LABELS[mode]:<27} {np.mean(finals):7.1f} +/- {np.std(finals):5.1f} '
              f'{np.mean([r["seconds"] for r in runs]):8.0f} {np.mean(ups):9.0f} '
              f'{(100 * np.mean(on_time)) if on_time else float("nan"):7.2f}% '
              f'{np.mean(swaps) if swaps else 0:5.0f}  {to200}  '
              f'{[None if t is None else round(t) for t in to400]}')
    checks = []
    if 'a' in summary and 'b' in summary:
        a, b = summary['a'], summary['b']
        noise = 2 * np.hypot(a['final_std'], b['final_std']) / np.sqrt(args.seeds) + 1e-9
        checks.append(('(b) matches (a) within seed noise',
                       abs(a['final_mean'] - b['final_mean']) <= max(noise, 30.0)))
    if 'c' in summary:
        c = summary['c']
        reached = [s for s in c['steps_to_-200'] if s is not None and s <= 20_000]
        checks.append(('(c) reaches -200 within 20k steps (mean of final evaluations)',
                       c['final_mean'] >= -200))
        checks.append((f'(c) reaches -200 within 20k steps in every seed ({len(reached)}/'
                       f'{args.seeds})', len(reached) == args.seeds))
        if c['on_time'] is not None:
            checks.append(('(c) >= 99.5% of control steps on time', c['on_time'] >= 0.995))
    if 'c' in summary and 'd' in summary:
        c400 = [t for t in summary['c']['seconds_to_-400'] if t is not None]
        d400 = [t for t in summary['d']['seconds_to_-400'] if t is not None]
        faster = len(c400) >= len(d400) and (not d400 or np.mean(c400) <= np.mean(d400))
        checks.append(('(c) learns at least as fast per wall-clock second as (d)', faster))
    if delays:
        base, lost, fixed = (row['mean'] for row in delays)
        checks.append(('the augmentation recovers most of the return lost to the delay',
                       base - lost > 0 and (fixed - lost) >= 0.5 * (base - lost)))
    print()
    for text, ok in checks:
        print(f'{"PASS" if ok else "MISS"}  {text}')
    summary['checks'] = [{'target': text, 'pass': bool(ok)} for text, ok in checks]
    return summary


def print_curves(results: list) -> None:
    """Evaluation return against environment steps and against wall-clock, mean of seeds."""
    print('\nevaluation return against environment steps (mean over seeds) and the '
          'wall-clock seconds at which each mode got there')
    for mode in MODES:
        runs = [r for r in results if r['mode'] == mode and r['curve']]
        if not runs:
            continue
        marks = sorted({int(p[0]) for p in runs[0]['curve']})
        cells = []
        for mark in marks[::max(1, len(marks) // 10)]:
            points = [min(r['curve'], key=lambda p: abs(p[0] - mark)) for r in runs]
            cells.append(f'{mark}: {np.mean([p[3] for p in points]):.0f} '
                         f'@{np.mean([p[1] for p in points]):.0f}s')
        print(f'{LABELS[mode]:<27} ' + ', '.join(cells))


def plot(results: list, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = dict(zip(MODES, ('tab:blue', 'tab:orange', 'tab:green', 'tab:red')))
    for r in results:
        curve = np.array(r['curve'])
        if not len(curve):
            continue
        label = LABELS[r['mode']] if r['seed'] == 0 else None
        axes[0].plot(curve[:, 0], curve[:, 3], color=colors[r['mode']], alpha=0.7, label=label)
        axes[1].plot(curve[:, 1], curve[:, 3], color=colors[r['mode']], alpha=0.7, label=label)
    for ax, xlabel in zip(axes, ('environment steps', 'wall-clock seconds')):
        ax.axhline(-200, color='grey', linestyle=':', linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel('evaluation return')
        ax.grid(alpha=0.3)
        ax.legend(loc='lower right')
    fig.suptitle('SAC on pendulum: in-process vs through ROS 2 (one line per seed)')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--steps', type=int, default=10_000,
                        help='environment steps per run, every mode (default: %(default)s)')
    parser.add_argument('--seeds', type=int, default=3, help='seeds per mode (default: 3)')
    parser.add_argument('--modes', default='abcd', help='which of a, b, c, d to run')
    parser.add_argument('--real-time-factor', type=float, default=5.0,
                        help='sim clock speed of the free-running robot in (c) and (d) '
                        '(default: %(default)s)')
    parser.add_argument('--swap-every', type=int, default=500,
                        help='(c): updates between swapped checkpoints (default: %(default)s)')
    parser.add_argument('--snapshot-every', type=int, default=1000,
                        help='(a), (b), (d): steps between policy snapshots (default: '
                        '%(default)s)')
    parser.add_argument('--eval-episodes', type=int, default=5,
                        help='simulator episodes per evaluation (default: %(default)s)')
    parser.add_argument('--no-delay-table', action='store_true', help='skip the delay table')
    parser.add_argument('--domain', type=int, default=int(os.environ.get('ROS_DOMAIN_ID', 80)),
                        help='first ROS_DOMAIN_ID; each run takes its own above it')
    parser.add_argument('--json', type=Path, default=None, help='write every figure here')
    parser.add_argument('--png', type=Path, default=None, help='write the curves here')
    parser.add_argument('--report', type=Path, default=None,
                        help='run nothing: print the tables and curves of a JSON this script '
                        'wrote (and draw --png from it)')
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        args.seeds = int(saved['args']['seeds'])
        summarize(saved['results'], saved['delays'], args)
        print_curves(saved['results'])
        if args.png:
            plot(saved['results'], args.png)
        return 0
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    import torch
    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp(prefix='online_rl_'))
    results = []
    for seed in range(args.seeds):
        for mode in args.modes:
            print(f'{LABELS[mode]}, seed {seed}: {args.steps} steps ...', flush=True)
            result = run_mode(mode, seed, args, out)
            results.append(result)
            print(f'  final return {result["final_return"]:.1f}, {result["seconds"]:.0f} s, '
                  f'{result["updates"]} updates'
                  + (f', on time {100 * result["on_time"]:.2f}%' if 'on_time' in result else '')
                  + (f', {result.get("swaps_accepted")} swaps' if 'swaps' in result else ''),
                  flush=True)
    delays = []
    if not args.no_delay_table:
        print('\ndelay table: SAC in the simulator, evaluation return (mean +/- std over seeds)')
        delays = delay_table(args)
    summary = summarize(results, delays, args)
    print_curves(results)
    if args.png:
        plot(results, args.png)
        print(f'curves: {args.png}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({'args': {k: str(v) for k, v in vars(args).items()},
                                         'results': results, 'delays': delays,
                                         'summary': summary}, indent=1, default=str))
        print(f'figures: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
