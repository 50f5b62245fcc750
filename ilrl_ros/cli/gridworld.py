"""`ilrl gridworld`: solve the lectures' 4x3 gridworld and print its values and policy.

Value iteration, policy iteration or tabular Q-learning on the gridworld of Russell &
Norvig ch. 17 in the lectures' setting (80% of moves as intended, 10% 90 degrees off to
either side, living reward -0.03, gamma 1, exits +1 and -1); ``--replay`` then walks one
episode step by step, slips included, as the slides do.
"""

import argparse

from ilrl_ros.cli.common import grid_cell
from ilrl_ros.cli.config_flags import add_config_flags, config_overrides

METHODS = ('value-iteration', 'policy-iteration', 'q-learning')
NAMES = {'value-iteration': 'value iteration', 'policy-iteration': 'policy iteration',
         'q-learning': 'Q-learning'}
EXAMPLES = """examples:
  ilrl gridworld                                  # value iteration, the lectures' setting
  ilrl gridworld --method policy-iteration --living-reward -0.04     # AIMA's fig. 17.2
  ilrl gridworld --method q-learning --seed 3     # prints the episodes it needed
  ilrl gridworld --method q-learning --episodes 20000 --lr-power 0.7
  ilrl gridworld --replay --start 1,1 --seed 2    # one episode of the optimal policy
  ilrl gridworld --replay --replay-policy random --replay-steps 15
  ilrl gridworld --living-reward -2 --gamma 0.9 --noise 0.1
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a whole number of at least 1; got '
                                         f'{text!r}')
    return value


def _indent(text: str, by: str = '    ') -> str:
    return '\n'.join(by + line for line in text.splitlines())


def _about(config) -> str:
    noise = config.noise
    return (f'{config.width}x{config.height} gridworld: living reward '
            f'{config.living_reward:g}, moves {1 - noise:.0%} as intended and {noise / 2:.0%} '
            f'90 degrees off to either side, gamma {config.gamma:g}, exits '
            + ' and '.join(f'{r:+g} at {c}' for c, r in config.terminals.items()))


def cmd_gridworld(args) -> int:
    import numpy as np

    from ilrl_ros.core.algorithms import policy_iteration, q_learning, value_iteration
    from ilrl_ros.core.envs.gridworld import ACTIONS, GridworldConfig, make_gridworld, \
        trajectory
    config = GridworldConfig(**config_overrides(args, args.world_flags))
    if config.gamma >= 1.0 and config.living_reward > 0.0:
        raise ValueError(f'living reward {config.living_reward:g} with gamma 1: wandering '
                         f'forever is worth infinitely much, so there are no optimal values; '
                         f'use a living reward of at most 0, or --gamma below 1')
    world = make_gridworld(config)
    if args.start is not None:
        start = world.state(args.start)
        if world.mdp.terminal[start]:
            raise ValueError(f'--start {args.start} is a terminal cell; expected a cell to '
                             f'act from')
    live = ~world.mdp.terminal
    print(_about(config))
    optimal = value_iteration.solve(world.mdp)
    if not optimal.converged:
        raise ValueError('value iteration did not converge: some policy never reaches an '
                         'exit, so with gamma 1 the values are unbounded; use --gamma < 1')
    legend = 'policy (^ N, > E, v S, < W; exits show their reward):'
    if args.method == 'value-iteration':
        print(f'\nvalue iteration: converged in {optimal.iterations} sweeps '
              f'({optimal.seconds * 1e3:.1f} ms)')
        values, policy, label = optimal.values, optimal.policy, 'utilities U(s)'
    elif args.method == 'policy-iteration':
        result = policy_iteration.solve(world.mdp)
        same = np.array_equal(result.policy[live], optimal.policy[live])
        print(f'\npolicy iteration: {"converged" if result.converged else "did NOT converge"}'
              f' in {result.iterations} rounds (cells changed per round: '
              f'{result.changes.tolist()}; {result.seconds * 1e3:.1f} ms); '
              + ('same policy as value iteration' if same
                 else 'policy DIFFERS from value iteration'))
        values, policy, label = result.values, result.policy, 'utilities U(s)'
    else:
        overrides = config_overrides(args, args.q_flags)
        q_config = q_learning.QLearningConfig(**{**overrides, 'seed': args.seed})
        reference = np.where(live, optimal.policy, -1)
        result = q_learning.train(q_learning.TableSampler(world.mdp, config.max_steps),
                                  q_config, reference_policy=reference)
        schedule = (f'lr {q_config.lr:g} / (1 + n)^{q_config.lr_power:g}'
                    if q_config.lr_schedule == 'visits' else f'{q_config.lr_schedule} lr')
        print(f'\nQ-learning (seed {args.seed}): {q_config.episodes} episodes, '
              f'{result.steps} steps in {result.seconds:.1f} s; {schedule}, epsilon '
              f'{q_config.epsilon_start:g} -> {q_config.epsilon_end:g} over '
              f'{q_config.epsilon_decay_fraction:.0%} of the episodes')
        if result.episodes_to_reference is not None:
            print(f"found the optimal policy (value iteration's, in every cell): after "
                  f'{result.episodes_to_reference} episodes its greedy policy equalled it and '
                  f'stayed equal')
        else:
            wrong = [f'{world.cells[s]} {ACTIONS[result.policy[s]]} instead of '
                     f'{ACTIONS[optimal.policy[s]]}' for s in np.flatnonzero(live)
                     if result.policy[s] != optimal.policy[s]]
            print('did NOT find the optimal policy in '
                  f'{q_config.episodes} episodes: ' + '; '.join(wrong))
        error = np.abs(result.q.max(axis=1) - optimal.values)[live].max()
        print(f'largest error of max_a Q(s, a) against the optimal values: {error:.4f}')
        values, policy, label = result.q.max(axis=1), result.policy, 'max_a Q(s, a)'
    print(f'{label} (# wall):')
    print(_indent(world.render_values(values)))
    print(legend)
    print(_indent(world.render_policy(policy)))
    if args.replay:
        _replay(args, world, policy, trajectory)
    return 0


def _replay(args, world, policy, trajectory) -> None:
    import numpy as np

    from ilrl_ros.core.envs.gridworld import ACTIONS
    rng = np.random.default_rng(args.seed)
    if args.replay_policy == 'random':
        def acting(state):
            return int(rng.integers(len(ACTIONS)))
        whose = 'a uniformly random policy'
    else:
        acting = policy
        whose = f"{NAMES[args.method]}'s policy"
    steps = trajectory(world, acting, rng, start=args.start, max_steps=args.replay_steps)
    print(f'\nreplay of {whose} from {world.cells[steps[0].state]} (seed {args.seed}, at most '
          f'{args.replay_steps} steps):')
    print(f'{"step":>4}  {"state":6}  {"action":6}  {"moved":12}  {"to":6}  {"reward":>7}  '
          f'{"return":>7}')
    for t, step in enumerate(steps, 1):
        moved = ACTIONS[step.direction] + ('' if step.direction == step.action else
                                          ' (slipped)')
        note = ''
        if step.terminated:
            note = f'  exit {world.state_reward[step.next_state]:+g}'
        elif step.next_state == step.state:
            note = '  bumped, stays'
        print(f'{t:4d}  {str(world.cells[step.state]):6}  {ACTIONS[step.action]:6}  '
              f'{moved:12}  {str(world.cells[step.next_state]):6}  {step.reward:+7.3f}  '
              f'{step.ret:+7.3f}{note}')
    last = steps[-1]
    print(f'return {last.ret:+.3f} in {len(steps)} steps'
          + ('' if last.terminated else ' (stopped before an exit)'))


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    from ilrl_ros.core.algorithms.q_learning import QLearningConfig
    from ilrl_ros.core.envs.gridworld import GridworldConfig
    p = sub.add_parser('gridworld', help="solve the lectures' 4x3 gridworld (value/policy "
                       'iteration, Q-learning) and replay an episode',
                       description=__doc__, epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--method', choices=METHODS, default='value-iteration',
                   help='how to solve it (default: %(default)s); Q-learning is compared with '
                   'value iteration')
    p.add_argument('--seed', type=int, default=0,
                   help="seeds Q-learning and the replay's draws (default: %(default)s)")
    p.add_argument('--replay', action='store_true',
                   help='then play one episode and print each step: state, action, where '
                   'it really went (slips), reward, return so far')
    p.add_argument('--replay-policy', choices=('solved', 'random'), default='solved',
                   help="the replay's policy: the one --method found, or uniformly random "
                   'actions (default: %(default)s)')
    p.add_argument('--replay-steps', type=_positive, default=30,
                   help='stop the replay after this many steps (default: %(default)s)')
    p.add_argument('--start', type=grid_cell, default=None, metavar='COLUMN,ROW',
                   help='start cell of the replay, e.g. 1,1 (default: drawn at random)')
    world_flags = add_config_flags(p, GridworldConfig, title='the gridworld',
                                   skip=('width', 'height', 'walls', 'terminals', 'start'))
    q_flags = add_config_flags(p, QLearningConfig, title='Q-learning (--method q-learning)',
                               skip=('gamma', 'seed'))
    p.set_defaults(func=cmd_gridworld, world_flags=world_flags, q_flags=q_flags)
