"""Value iteration, policy iteration and Q-learning on the 4x3 gridworld, side by side.

Russell & Norvig, "Artificial Intelligence: A Modern Approach", 3rd ed., ch. 17, in the
lectures' setting by default (living reward -0.03, gamma 1, noise 0.2): for each living
reward R(s) given, the script solves the world exactly by value iteration and by policy
iteration, learns it by tabular Q-learning (several seeds, ``QLearningConfig``'s defaults
unless told otherwise; transitions drawn from the tables by ``TableSampler``, as
``GridworldEnv`` draws them, or through the gymnasium env with ``--through-env``), and
prints each method's utilities and policy as grids, its iterations or episodes and its time.
For Q-learning it prints, per seed, the episodes after which its greedy policy equalled
value iteration's in every non-terminal cell and stayed equal ('-': not by the end), and the
largest error of max_a Q(s, a) against the optimal values; then how many seeds found the
optimal policy and the learning curve (mean return of the training episodes, exploration
included, by tenths of the run). Nothing is asserted; it exits 0 unless the arguments are
wrong.

::

    GridworldConfig ──> make_gridworld ──> TabularMDP (P, R, terminal) ──> value / policy iteration
                                 └──> TableSampler / GridworldEnv ──> Q-learning ──> Q, policy

Examples::

    python bench/gridworld.py                              # -0.03, 10 seeds (about a minute)
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

    chosen = {name: value for name, value in (('episodes', args.episodes),
                                               ('lr_power', args.lr_power),
                                               ('epsilon_end', args.epsilon_end))
              if value is not None}
    reference = np.where(live, vi.policy, -1)
    found, errors, seconds, steps, curves, first = 0, [], [], 0, [], None
    print('\nQ-learning, per seed: episodes until its greedy policy equalled value '
          "iteration's for good ('-': not by the end), max |max_a Q - V*|, seconds")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        q_config = q_learning.QLearningConfig(seed=seed, **chosen)
        env = GridworldEnv(config) if args.through_env \
            else q_learning.TableSampler(world.mdp, config.max_steps)
        result = q_learning.train(env, q_config, reference_policy=reference)
        first = first or result
        found += result.episodes_to_reference is not None
        errors.append(float(np.max(np.abs(result.q.max(axis=1) - vi.values)[live])))
        seconds.append(result.seconds)
        steps += result.steps
        curves.append([chunk.mean() for chunk in np.array_split(result.episode_returns, 10)])
        needed = result.episodes_to_reference
        print(f'    seed {seed:2d}: {needed if needed is not None else "-":>7}  '
              f'{errors[-1]:.4f}  {result.seconds:5.1f}', flush=True)
    print(f'Q-learning: {q_config.episodes} episodes x {args.seeds} seeds (lr_power '
          f'{q_config.lr_power:g}, epsilon_end {q_config.epsilon_end:g}), '
          f'{statistics.mean(seconds):.2f} s per run, '
          f'{steps / sum(seconds) / 1e3:.0f} k steps/s; optimal policy from {found} of '
          f'{args.seeds} seeds; max |max_a Q - V*| median {statistics.median(errors):.4f}')
    curve = np.mean(curves, axis=0)
    print('    mean return by tenths of the run: ' + ' '.join(f'{v:+.3f}' for v in curve))
    print(f'    seed {args.first_seed}:')
    print(indent(indent(world.render_values(first.q.max(axis=1)))))
    print(indent(indent(world.render_policy(first.policy))))
    print()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='gridworld.py', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--living-reward', type=float, nargs='+', default=[-0.03],
                        metavar='R', help='R(s) of non-terminal cells; several values run '
                        "one after another (default: -0.03, the lectures')")
    parser.add_argument('--gamma', type=float, default=1.0,
                        help='discount factor in (0, 1] (default: %(default)s)')
    parser.add_argument('--noise', type=float, default=0.2,
                        help='probability of slipping 90 degrees (default: %(default)s)')
    parser.add_argument('--episodes', type=int, default=None,
                        help="Q-learning episodes per seed (default: QLearningConfig's)")
    parser.add_argument('--seeds', type=int, default=10,
                        help='Q-learning runs, seeds --first-seed.. (default: %(default)s)')
    parser.add_argument('--first-seed', type=int, default=0,
                        help='seed of the first Q-learning run (default: %(default)s)')
    parser.add_argument('--lr-power', type=float, default=None,
                        help="Q-learning learning rate 1 / (1 + n)^power (default: "
                             "QLearningConfig's)")
    parser.add_argument('--epsilon-end', type=float, default=None,
                        help="Q-learning exploration after the decay (default: "
                             "QLearningConfig's)")
    parser.add_argument('--through-env', action='store_true',
                        help='Q-learning steps the gymnasium GridworldEnv (about 4x slower) '
                             'instead of drawing from the tables')
    parser.add_argument('--repeats', type=int, default=20,
                        help='runs of each exact solver for its median time, within about '
                             'a second (default: %(default)s)')
    args = parser.parse_args(argv)
    if (args.episodes is not None and args.episodes < 1) or args.seeds < 1 \
            or args.repeats < 1:
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
