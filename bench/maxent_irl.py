"""MaxEnt IRL on coloured grids over many seeds: signs, policies and errors by demonstrations.

For each number of sampled demonstrations (0: the demonstrator's exact expected feature
counts) and each seed, a coloured grid with weights drawn from the seed is built, the
soft-optimal demonstrator walks it and ``maxent_irl`` learns the weights back
(``ilrl_ros/core/algorithms/maxent_irl.py``; one seed's run is what `ilrl train irl` prints).
The table gives, over the seeds: in how many worlds every sign came back, the states where
the learned reward's optimal policy is optimal for the true reward (mean and worst, of the
non-exit cells), the largest error of the weights divided by their largest magnitude (mean
and worst), and the mean optimisation time. Nothing is asserted; it exits 0.

::

    ColouredGridConfig(seed) ──> make_coloured_grid ──> soft VI of the true weights ──> walks
    walks ──> exact mu_E, or N sampled demonstrations ──> maxent_irl (L-BFGS) ──> theta

Examples::

    python bench/maxent_irl.py
    python bench/maxent_irl.py --demos 0 100 --seeds 20 --size 8 --colours 5
    python bench/maxent_irl.py --floor 0        # no plain floor: signs tied only to the exit
"""

import argparse
from pathlib import Path
import sys

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--demos', type=int, nargs='+', default=[0, 20, 50, 200, 1000],
                        help='numbers of sampled demonstrations, 0 for exact feature counts '
                        '(default: %(default)s)')
    parser.add_argument('--seeds', type=int, default=10, help='worlds per row, seeds 0.. '
                        '(default: %(default)s)')
    parser.add_argument('--size', type=int, default=6, help='grid side (default: %(default)s)')
    parser.add_argument('--colours', type=int, default=4, help='colours (default: %(default)s)')
    parser.add_argument('--floor', type=float, default=0.5,
                        help='share of plain floor cells (default: %(default)s)')
    parser.add_argument('--demonstrator', choices=('soft', 'optimal'), default='soft',
                        help='the demonstrator (default: %(default)s)')
    parser.add_argument('--l2', type=float, default=0.0, help='L2 weight (default: %(default)s)')
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from ilrl_ros.core.algorithms.maxent_irl import ColouredGridConfig, MaxEntIRLConfig, \
        normalised, run, signs_match

    cells = args.size * args.size - 1
    print(f'MaxEnt IRL, {args.size}x{args.size} grid, {args.colours} colours, floor '
          f'{args.floor:g}, {args.demonstrator} demonstrator, l2 {args.l2:g}, seeds 0-'
          f'{args.seeds - 1}, weights drawn from each seed')
    print(f'| demonstrations | all signs right | optimal in states (of {cells}) mean / worst '
          f'| weight error mean / worst | converged | seconds |')
    print('|---|---|---|---|---|---|')
    for demos in args.demos:
        signs, optimal, errors, converged, seconds = 0, [], [], 0, []
        for seed in range(args.seeds):
            report = run(ColouredGridConfig(size=args.size, colours=args.colours,
                                            floor=args.floor, seed=seed),
                         MaxEntIRLConfig(demos=demos, demonstrator=args.demonstrator,
                                         l2=args.l2))
            true, learned = report.world.true_weights, report.result.theta
            signs += bool(signs_match(true, learned).all())
            optimal.append(report.optimal_states)
            errors.append(float(np.max(np.abs(normalised(learned) - normalised(true)))))
            converged += report.result.converged
            seconds.append(report.result.seconds)
        label = 'exact counts' if demos == 0 else str(demos)
        print(f'| {label} | {signs} of {args.seeds} | {np.mean(optimal):.1f} / {min(optimal)} '
              f'| {np.mean(errors):.3f} / {max(errors):.3f} | {converged} of {args.seeds} '
              f'| {np.mean(seconds):.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
