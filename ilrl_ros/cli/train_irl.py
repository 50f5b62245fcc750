"""`ilrl train irl`: tabular maximum causal entropy IRL on a grid of coloured squares.

A sub-command of `ilrl train` (added by ``train.add_to``); the algorithm is
``core/algorithms/maxent_irl.py``.
"""

import argparse

from ilrl_ros.cli.common import grid_cell
from ilrl_ros.cli.config_flags import add_config_flags, config_overrides

ABOUT = ('tabular maximum causal entropy IRL (Ziebart et al. 2008, 2010)',
         'A demonstrator with secret likes (+) and dislikes (-) for the colours of a grid of '
         'squares walks it (from a random cell, until it exits or for --demo-steps) by the '
         'soft-optimal policy of its reward; MaxEnt IRL learns a reward linear in the '
         "colours (one-hot, plain floor 0) whose soft-optimal policy has the demonstrator's "
         'discounted feature counts. Prints the learned weights next to the true ones '
         '(also divided by the largest magnitude), whether every sign matches, and whether '
         "the learned reward's optimal policy is optimal for the true reward, with the grid "
         'and both policies drawn.')


def _floats(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(',') if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected numbers separated by commas, e.g. '
                                         f'-1,0.5,1; got {text!r}') from None


def cmd_train_irl(args) -> int:
    from ilrl_ros.core.algorithms.maxent_irl import ColouredGridConfig, MaxEntIRLConfig, \
        report_text, run
    from ilrl_ros.core.train_log import TrainingLog
    world = config_overrides(args, args.world_flags)
    if args.weights is not None:
        world['weights'] = args.weights
    if args.exit is not None:
        world['exit'] = args.exit
    log = TrainingLog(args.log_dir)
    try:
        report = run(ColouredGridConfig(**world),
                     MaxEntIRLConfig(**config_overrides(args, args.config_flags)), log=log)
    finally:
        log.close()
    print(report_text(report))
    if args.log_dir:
        print(f'logs and curves.png in {args.log_dir}')
    return 0


def add_parser(algos) -> None:
    """Add the ``irl`` parser to `ilrl train`'s sub-commands."""
    from ilrl_ros.core.algorithms.maxent_irl import ColouredGridConfig, MaxEntIRLConfig
    short, long = ABOUT
    p = algos.add_parser(
        'irl', help=short, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f'{short[0].upper()}{short[1:]}. {long} No ROS, no checkpoint.\n\n'
        'examples:\n'
        '  ilrl train irl                                  # 6x6, 4 colours, exact counts\n'
        '  ilrl train irl --demos 200 --seed 3             # from 200 sampled walks\n'
        '  ilrl train irl --size 8 --colours 5 --weights=-1,-0.5,0.3,0.6,1\n'
        '  ilrl train irl --demonstrator optimal --l2 0.01 --log-dir runs/irl')
    p.add_argument('--weights', type=_floats, default=None,
                   help="the demonstrator's true weight of each colour, comma-separated, "
                   'written --weights=-1,0.5 when the first is negative (default: drawn '
                   'from --seed)')
    p.add_argument('--exit', type=grid_cell, default=None,
                   help='the exit cell column,row from 1,1 at the bottom left (default: the '
                   'top right corner)')
    p.add_argument('--log-dir', default=None, help='CSV/PNG/TensorBoard log folder')
    world_flags = add_config_flags(p, ColouredGridConfig, skip=('weights', 'exit'),
                                   title='the coloured grid')
    p.set_defaults(func=cmd_train_irl, world_flags=world_flags,
                   config_flags=add_config_flags(p, MaxEntIRLConfig))
