"""`ilrl evaluate`: run a checkpoint in its simulator (no ROS)."""

import json
from pathlib import Path


def cmd_evaluate(args) -> int:
    from ilrl_ros.core.scoring import evaluate_checkpoint, format_table, summarize
    results = evaluate_checkpoint(args.checkpoint, args.task, args.episodes, args.seed)
    for result in results:
        print(json.dumps(result))
    print(format_table([summarize(results, Path(args.checkpoint).name)]))
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('evaluate', help='run a checkpoint in the simulator (no ROS)',
                       description="Roll a checkpoint out in its task's simulator and print "
                       'per-episode results and a summary row.')
    p.add_argument('--checkpoint', required=True, help='checkpoint folder')
    p.add_argument('--task', default=None, help='task to check it against (default: its own)')
    p.add_argument('--episodes', type=int, default=10, help='episodes (default: %(default)s)')
    p.add_argument('--seed', type=int, default=1000, help='first start seed')
    p.set_defaults(func=cmd_evaluate)
