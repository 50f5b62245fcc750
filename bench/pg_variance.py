"""How much a baseline reduces the variance of the REINFORCE gradient, on a fixed policy.

For each task a freshly initialised ``ActorCritic`` (seeded, never trained) is held fixed.
``repeats`` batches of ``episodes`` episodes each give ``repeats`` estimates of the policy
gradient E[sum_t grad log pi(a_t|s_t) (G_t - b_t)]; the figure is the trace of their
covariance, for no baseline, the batch mean of the reward-to-go, and a value function
fitted to the reward-to-go of other episodes of the same policy. All baselines see the same
batches. A baseline leaves the expected gradient unchanged (``|mean grad|`` stays about the
same, up to the noise of ``repeats`` estimates) and should shrink the variance (ratio < 1).

Tasks: ``CartPole-v1`` (gymnasium) and ``pendulum`` (this package's task spec, the same
dynamics as Pendulum-v1, driven by the spec's simulator). Nothing is asserted; the script
prints a table and exits 0.

Examples::

    python bench/pg_variance.py
    python bench/pg_variance.py --tasks CartPole-v1 --episodes 16 --repeats 100
    python bench/pg_variance.py --tasks pendulum --gamma 0.9 --seed 3
"""

import argparse
from pathlib import Path
import sys
import time

REPO = Path(__file__).resolve().parent.parent
TASKS = ('CartPole-v1', 'pendulum')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Examples:\n  python bench/pg_variance.py\n'
               '  python bench/pg_variance.py --tasks CartPole-v1 --episodes 16 --repeats 100')
    parser.add_argument('--tasks', nargs='+', default=list(TASKS), choices=TASKS,
                        help='tasks to measure (default: both)')
    parser.add_argument('--episodes', type=int, default=8,
                        help='episodes in one gradient estimate (default: 8)')
    parser.add_argument('--repeats', type=int, default=40,
                        help='independent estimates the variance is taken over (default: 40)')
    parser.add_argument('--gamma', type=float, default=0.99,
                        help='discount of the reward-to-go (default: 0.99)')
    parser.add_argument('--hidden', default='64,64',
                        help='hidden widths of the fixed policy (default: 64,64)')
    parser.add_argument('--value-fit-episodes', type=int, default=100,
                        help="episodes the 'value' baseline is fitted on (default: 100)")
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the policy and of the episodes (default: 0)')
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.repeats < 2 or args.value_fit_episodes < 1:
        parser.error('--episodes and --value-fit-episodes must be >= 1, --repeats >= 2')
    try:
        args.hidden = tuple(int(h) for h in args.hidden.split(',') if h.strip())
    except ValueError:
        parser.error(f'--hidden {args.hidden!r}: expected comma-separated integers, like 64,64')
    return args


def env_factory(task: str):
    import gymnasium as gym

    if task == 'pendulum':
        from ilrl_ros.core.spec import load_spec
        from ilrl_ros.core.tasks import make_env

        spec = load_spec('pendulum')
        return lambda: make_env(spec)
    return lambda: gym.make(task)


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    import torch

    from ilrl_ros.core.rl.spaces import actor_critic_for_spaces
    from ilrl_ros.core.algorithms.reinforce import BASELINES, gradient_variances

    torch.set_num_threads(1)
    print(f'REINFORCE gradient variance on a fixed, untrained policy: {args.episodes} '
          f'episodes per estimate, {args.repeats} estimates, gamma {args.gamma}, hidden '
          f'{args.hidden}, seed {args.seed}\n')
    print('| task | baseline | variance (trace of cov.) | ratio to none | |mean grad| |')
    print('| --- | --- | --- | --- | --- |')
    for task in args.tasks:
        env_fn = env_factory(task)
        env = env_fn()
        torch.manual_seed(args.seed)
        policy = actor_critic_for_spaces(env.observation_space, env.action_space,
                                         hidden=args.hidden)
        env.close()
        started = time.monotonic()
        results = gradient_variances(policy, env_fn, BASELINES, episodes=args.episodes,
                                     repeats=args.repeats, seed=args.seed, gamma=args.gamma,
                                     value_fit_episodes=args.value_fit_episodes)
        seconds = time.monotonic() - started
        none = results['none'].variance
        for baseline in BASELINES:
            r = results[baseline]
            print(f'| {task} | {baseline} | {r.variance:.4g} | {r.variance / none:.3f} | '
                  f'{r.mean_norm:.4g} |')
        print(f'| {task} | ({seconds:.1f} s) | | | |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
