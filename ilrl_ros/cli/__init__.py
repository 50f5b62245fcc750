"""The ``ilrl`` command: record, convert, train, evaluate, run the graph, and the demo.

Examples::

    ilrl demo                                   # the whole story on track_follow
    ilrl sim --task track_follow --expert-drive --record --bag-dir bags
    ilrl convert bags/demo_20261127T101500 --task track_follow -o data/demos.npz
    ilrl train bc --data data/demos.npz -o checkpoints/bc --log-dir runs/bc
    ilrl evaluate --checkpoint checkpoints/bc --episodes 10
    ilrl info checkpoints/bc
    ilrl collect --task track_follow --episodes 3 --noise-std 0.05,1.0 -o data/dart.npz
    ilrl train awr --data data/mixed.npz -o checkpoints/awr --log-dir runs/awr
    ilrl learn sac --task pendulum -o runs/learn_sac --real-time-factor 5
    ilrl export --data data/demos.npz --minari-id ilrl/track_follow-expert-v0 --root minari
    ilrl import --minari-id ilrl/track_follow-expert-v0 --root minari -o data/back.npz

Data flow::

    mock_robot/robot --sensors--> expert --cmd--> robot        (demonstrations)
                  `--> demo_recorder --MCAP bag--> ilrl convert --> dataset.npz
    dataset.npz --> ilrl train bc --> checkpoint/ --> ros2 param set /policy checkpoint ...
"""

import argparse
import logging
import sys

from ilrl_ros.cli import (bag, collect, convert, dagger, demo, evaluate, export, import_dataset,
                          info, learn, sim, train)
from ilrl_ros.cli import gridworld

# One module per verb, in the order `ilrl --help` lists them; each has add_to(sub).
VERBS = (demo, dagger, sim, convert, bag, export, import_dataset, train, learn, collect,
         evaluate, info, gridworld)


def build_parser(command=None) -> argparse.ArgumentParser:
    """The whole ``ilrl`` parser; with ``command``, one that only names the algorithm verbs.

    The algorithm flags of ``train`` and ``learn`` come from config classes whose modules
    load torch (about 1.4 s): a command line running another verb, or ``ilrl --help``,
    starts without them.
    """
    parser = argparse.ArgumentParser(
        prog='ilrl', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for verb in VERBS:
        if verb in (train, learn) and command is not None:
            verb.add_to(sub, algorithms=verb.__name__.rsplit('.', 1)[1] == command)
        else:
            verb.add_to(sub)
    return parser


def command_of(words) -> str:
    """The verb of an ``ilrl`` command line: its first word that is not an option.

    (``ilrl`` has no options of its own but ``--help``.)
    """
    return next((word for word in words if not word.startswith('-')), '')


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_of(words)).parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as error:
        # Our errors are sentences meant for the user: print them, not a traceback.
        print(f'ilrl {args.command}: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
