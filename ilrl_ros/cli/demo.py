"""`ilrl demo`: the showcase run (record, convert, train BC, swap, evaluate)."""

from pathlib import Path


def cmd_demo(args) -> int:
    from ilrl_ros.demo import run_demo
    return run_demo(Path(args.out), task=args.task, demo_episodes=args.demo_episodes,
                    eval_episodes=args.eval_episodes, bc_steps=args.bc_steps, seed=args.seed)


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('demo', help='record expert demos, train BC, swap it in, evaluate',
                       description='The main job on track_follow: the expert drives while the '
                       'recorder writes an MCAP bag; the bag is converted; behavior cloning '
                       'trains; the checkpoint is swapped into the running policy node by '
                       'parameter; the policy runs evaluation episodes through the episode '
                       'manager. Prints and writes a results table.')
    p.add_argument('--out', default='demo_out', help='output folder (default: %(default)s)')
    p.add_argument('--task', default='track_follow', help='task (default: %(default)s)')
    p.add_argument('--demo-episodes', type=int, default=4,
                   help='expert episodes to record (default: %(default)s)')
    p.add_argument('--eval-episodes', type=int, default=5,
                   help='evaluation episodes of the trained policy (default: %(default)s)')
    p.add_argument('--bc-steps', type=int, default=3000,
                   help='behavior cloning gradient steps (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='start-state seed (default: 0)')
    p.set_defaults(func=cmd_demo)
