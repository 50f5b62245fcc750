"""Mixed-quality demonstrations on track_follow: behavior cloning against RWR and AWR.

Per seed the script collects, in the simulator, ``--expert-laps`` laps of the expert and
``--noisy-laps`` laps of the expert with Gaussian noise (std ``--noise``) added to the
command it executes, labelled with what was executed (as a bag of ``cmd_vel`` would be),
with the simulator's rewards: the dataset ``ilrl collect ... --label executed --append``
writes. On that one dataset it trains behavior cloning, reward-weighted regression (Peters &
Schaal 2007, temperature ``--rwr-beta``) and advantage-weighted regression (Peng et al.
2019, ``--awr-beta``), the network and gradient steps of ``ilrl train bc``'s defaults, and
scores each policy alone on the same evaluation laps (seeds 10000 + k): lap success, mean
return and mean distance from the centerline. It prints one Markdown table (the README's)
and writes it, with every number, to ``--out``. Nothing is asserted.

::

    expert laps ─┐
                 ├─> dataset (labels = executed commands, rewards) ─> BC | RWR | AWR ─> laps
    noisy laps ──┘

Examples::

    python bench/mixed_data.py                                 # 3 + 3 laps, seeds 0 1 2
    python bench/mixed_data.py --expert-laps 1 --noisy-laps 4 --seeds 1
    python bench/mixed_data.py --seeds 0 --bc-steps 300 --eval-episodes 3    # smoke run
"""

import argparse
from dataclasses import replace
import json
import os
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ilrl_ros.core.algorithms import awr, rwr  # noqa: E402
from ilrl_ros.core.algorithms.bc import BCConfig, train as train_bc  # noqa: E402
from ilrl_ros.core.rl.evaluation import evaluate_policy  # noqa: E402
from ilrl_ros.core.rollouts import aggregate, rollout  # noqa: E402
from ilrl_ros.core.spec import load_spec  # noqa: E402
from ilrl_ros.core.tasks import make_env, make_expert  # noqa: E402
from ilrl_ros.core.rl.torch_settings import torch_settings  # noqa: E402

METHODS = ('bc', 'rwr', 'awr')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], epilog='See the module docstring for the '
        'protocol.', formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--task', default='track_follow', help='Task with an expert.')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                        help='Seeds: collection starts, noise, network initialisation.')
    parser.add_argument('--expert-laps', type=int, default=3, help='Clean expert laps.')
    parser.add_argument('--noisy-laps', type=int, default=3, help='Noisy expert laps.')
    parser.add_argument('--noise', type=float, nargs='+', default=[0.1, 2.0],
                        help="Noise std added to the noisy laps' executed command, one per "
                             'action dimension (or one for all).')
    parser.add_argument('--rwr-beta', type=float, default=2.0, help='RWR temperature.')
    parser.add_argument('--awr-beta', type=float, default=0.2, help='AWR temperature.')
    parser.add_argument('--bc-steps', type=int, default=None,
                        help="Gradient steps of every fit (default: BC's own default).")
    parser.add_argument('--eval-episodes', type=int, default=10,
                        help='Evaluation laps per policy (seeds 10000 + k).')
    parser.add_argument('--out', type=Path, default=Path('bench_out/mixed_data'),
                        help='Folder for results.json and results.md.')
    args = parser.parse_args(argv)
    if min(args.expert_laps, args.noisy_laps) < 0 or args.expert_laps + args.noisy_laps < 1:
        parser.error('--expert-laps and --noisy-laps must not be negative, nor both 0')
    if args.eval_episodes < 1:
        parser.error('--eval-episodes must be at least 1')
    return args


def dataset(spec, seed: int, args):
    """The seed's mixed dataset, labelled with the executed commands, and its collection."""
    env, expert = make_env(spec), make_expert(spec)
    parts, collected = [], {}
    for name, laps, noise, first in (('expert', args.expert_laps, None, 100 * seed),
                                     ('noisy', args.noisy_laps, list(args.noise),
                                      100 * seed + 50)):
        if laps:
            result = rollout(env, expert, None, episodes=laps, seed=first, noise=noise)
            parts.append(result.with_executed_labels())
            collected[name] = result.summary()
    return aggregate(parts), collected


def run_seed(spec, seed: int, args, log) -> dict:
    data, collected = dataset(spec, seed, args)
    bc = BCConfig(seed=seed) if args.bc_steps is None else BCConfig(seed=seed,
                                                                   steps=args.bc_steps)
    trainers = {'bc': lambda: train_bc(data, bc).policy,
                'rwr': lambda: rwr.train(data, rwr.RWRConfig(beta=args.rwr_beta, bc=bc)).policy,
                'awr': lambda: awr.train(data, replace(awr.AWRConfig(), beta=args.awr_beta,
                                                       bc=bc)).policy}
    row = {'seed': seed, 'rows': len(data), 'collected': collected, 'methods': {}}
    for method in METHODS:
        started = time.monotonic()
        policy = trainers[method]()
        summary = evaluate_policy(make_env(spec), policy, episodes=args.eval_episodes).summary()
        row['methods'][method] = {**summary, 'seconds': time.monotonic() - started}
        log(f'seed {seed} {method}: success {summary["success_rate"]:.0%}, return '
            f'{summary["mean_return"]:.1f}, |lateral| {summary["mean_abs_lateral"]:.3f} m')
    return row


def table(rows: list) -> str:
    out = ['| seed | rows | ' + ' | '.join(m.upper() for m in METHODS) + ' |',
           '|---:|---:|' + '---|' * len(METHODS)]
    for row in rows:
        cells = [f'{m["success_rate"]:.0%}, return {m["mean_return"]:.1f}, '
                 f'{m["mean_abs_lateral"]:.3f} m'
                 for m in (row['methods'][name] for name in METHODS)]
        out.append(f'| {row["seed"]} | {row["rows"]} | ' + ' | '.join(cells) + ' |')
    means = [np.mean([r['methods'][name]['success_rate'] for r in rows]) for name in METHODS]
    out.append('| mean | | ' + ' | '.join(f'{m:.0%}' for m in means) + ' |')
    return '\n'.join(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    spec = load_spec(args.task)
    started = time.monotonic()

    def log(text):
        print(f'[{time.monotonic() - started:7.1f} s] {text}', flush=True)

    rows = []
    with torch_settings(1):
        for seed in args.seeds:
            rows.append(run_seed(spec, seed, args, log))
    text = table(rows)
    header = (f'# Mixed-quality data on {args.task}\n\n{args.expert_laps} expert laps + '
              f'{args.noisy_laps} laps with executed-command noise std {args.noise}, labels = '
              f'executed commands; RWR beta {args.rwr_beta}, AWR beta {args.awr_beta}; '
              f'{args.eval_episodes} evaluation laps per policy (success, mean return, mean '
              f'|lateral|); {os.cpu_count()} CPUs, {time.monotonic() - started:.0f} s.\n\n')
    (args.out / 'results.md').write_text(header + text + '\n')
    (args.out / 'results.json').write_text(json.dumps(
        {'args': {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
         'rows': rows}, indent=1))
    print(header + text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
