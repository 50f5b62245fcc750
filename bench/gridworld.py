"""Value iteration, policy iteration and Q-learning on AIMA's 4x3 gridworld, side by side.

Russell & Norvig, "Artificial Intelligence: A Modern Approach", 3rd ed., ch. 17: for each
living reward R(s) given, the script solves the world exactly by value iteration and by
policy iteration, learns it by tabular Q-learning from the gymnasium env (several seeds),
and prints each method's utilities and policy as grids, its iterations or episodes and its
time. For Q-learning it also prints how many seeds found value iteration's policy in every
non-terminal cell, the largest error of max_a Q(s, a) against the optimal values, and the
learning curve (mean return of the training episodes, exploration included, by tenths of
the run). Nothing is asserted; it exits 0 unless the arguments are wrong.

::

    GridworldConfig ──> make_gridworld ──> TabularMDP (P, R, terminal) ──> value / policy iteration
                                 └──> GridworldEnv (samples P, R) ──> Q-learning ──> Q, policy

Examples::

    python bench/gridworld.py
    python bench/gridworld.py --living-reward -0.04 -0.5 -2 --seeds 3
    python bench/gridworld.py --gamma 0.9 --noise 0.1 --episodes 20000 --lr-power 0.8
"""

import argparse
from pathlib import Path
import statistics
import sys
import time

REPO = Path(__file__).resolve().parent.parent


def timed(function, repeats: int, budget_s: float = 1.0) -> tuple:
    """``function()``'s result, median wall time and runs: ``repeats`` runs or ``budget_s``."""
    times = []
    while len(times) < repeats and sum(times) < budget_s:
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return result, statistics.median(times), len(times)


def indent(text: str) -> str:
    return '\n'.join('    ' + line for line in text.splitlines())


def run_one(living_reward: float, args) -> None:
    import numpy as np

    from ilrl_ros.core.algorithms import policy_iteration, q_learning, value_iteration
    from ilrl_ros.core.envs.gridworld import GridworldConfig, GridworldEnv, make_gridworld

    config = GridworldConfig(living_reward=living_reward, gamma=args.gamma, noise=args.noise)
    world = make_gridworld(config)
    live = ~world.mdp.terminal
    print(f'== {config.width}x{config.height} gridworld: living reward {living_reward:g}, '
          f'noise {config.noise:g}, gamma {config.gamma:g} ==')

    vi, vi_seconds, runs = timed(lambda: value_iteration.solve(world.mdp), args.repeats)
    state = 'converged' if vi.converged else 'did NOT converge (values unbounded?)'
    print(f'\nvalue iteration: {vi.iterations} sweeps, {state}, '
          f'{vi_seconds * 1e3:.3f} ms (median of {runs})')
    print(indent(world.render_values(vi.values)))
    print(indent(world.render_policy(vi.policy)))

    try:
        pi, pi_seconds, runs = timed(lambda: policy_iteration.solve(world.mdp), args.repeats)
    except ValueError as error:
        print(f'\npolicy iteration: {error}')
    else:
        same = 'same policy as value iteration' if np.array_equal(
            pi.policy[live], vi.policy[live]) else 'policy DIFFERS from value iteration'
        print(f'\npolicy iteration: {pi.iterations} rounds (changes {pi.changes.tolist()}), '
              f'{pi_seconds * 1e3:.3f} ms (median of {runs}); {same}; max |V_pi - V_vi| '
              f'{np.max(np.abs(pi.values - vi.values)):.1e}')
        print(indent(world.render_policy(pi.policy)))

    env = GridworldEnv(config)
    found, errors, seconds, steps, curves, first = 0, [], [], 0, [], None
    for seed in range(args.seeds):
        q_config = q_learning.QLearningConfig(episodes=args.episodes, seed=seed,
                                              lr_power=args.lr_power,
                                              epsilon_end=args.epsilon_end)
        result = q_learning.train(env, q_config)
        first = first or result
        found += bool(np.array_equal(result.policy[live], vi.policy[live]))
        errors.append(float(np.max(np.abs(result.q.max(axis=1) - vi.values)[live])))
        seconds.append(result.seconds)
        steps += result.steps
        curves.append([chunk.mean() for chunk in np.array_split(result.episode_returns, 10)])
    print(f'\nQ-learning: {args.episodes} episodes x {args.seeds} seeds, '
          f'{statistics.mean(seconds):.2f} s per run, '
          f'{steps / sum(seconds) / 1e3:.0f} k steps/s; optimal policy from {found} of '
          f'{args.seeds} seeds; max |max_a Q - V*| median {statistics.median(errors):.3f}')
    curve = np.mean(curves, axis=0)
    print('    mean return by tenths of the run: ' + ' '.join(f'{v:+.3f}' for v in curve))
    print('    seed 0:')
    print(indent(indent(world.render_values(first.q.max(axis=1)))))
    print(indent(indent(world.render_policy(first.policy))))
    print()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='gridworld.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--living-reward', type=float, nargs='+', default=[-0.04],
                        metavar='R', help='R(s) of non-terminal cells; several values run '
                        'one after another (default: -0.04)')
    parser.add_argument('--gamma', type=float, default=1.0,
                        help='discount factor in (0, 1] (default: %(default)s)')
    parser.add_argument('--noise', type=float, default=0.2,
                        help='probability of slipping 90 degrees (default: %(default)s)')
    parser.add_argument('--episodes', type=int, default=5000,
                        help='Q-learning episodes per seed (default: %(default)s)')
    parser.add_argument('--seeds', type=int, default=5,
                        help='Q-learning runs, seeds 0.. (default: %(default)s)')
    parser.add_argument('--lr-power', type=float, default=0.7,
                        help='Q-learning learning rate 1 / (1 + n)^power (default: '
                             '%(default)s)')
    parser.add_argument('--epsilon-end', type=float, default=0.1,
                        help='Q-learning exploration after the decay (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=20,
                        help='runs of each exact solver for its median time, within about '
                             'a second (default: %(default)s)')
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.seeds < 1 or args.repeats < 1:
        parser.error('--episodes, --seeds and --repeats must be at least 1')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    for living_reward in args.living_reward:
        try:
            run_one(living_reward, args)
        except ValueError as error:
            print(f'gridworld.py: {error}', file=sys.stderr)
            return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
