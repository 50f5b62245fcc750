"""`ilrl bag`: bag tools (reindex: repair a bag cut short or damaged)."""



def cmd_bag_reindex(args) -> int:
    from ilrl_ros.bag import format_log_time, reindex_bag
    result = reindex_bag(args.bag)
    for note in result.notes:
        print(f'note: {note}')
    for loss in result.losses:
        print(f'lost: {loss.describe()}')
    total = sum(result.counts.values())
    if result.original is None:
        print(f'{result.bag} is complete and intact ({total} messages): nothing to do')
        return 0
    if result.truncated:
        after = format_log_time(result.truncated_after_ns)
        print(f'{result.original.name} was cut short: messages logged after {after} are gone')
    print(f'wrote {result.bag}: {total} messages ('
          + ', '.join(f'{topic} {n}' for topic, n in sorted(result.counts.items()))
          + f'); the original is kept as {result.original}')
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('bag', help='bag tools: reindex (repair) a bag',
                       description='Tools for rosbag2 MCAP bags.')
    bag_sub = p.add_subparsers(dest='bag_command', required=True, metavar='BAG_COMMAND')
    r = bag_sub.add_parser(
        'reindex', help='repair a bag cut short or damaged, keeping the original',
        description='As `ros2 bag reindex`, for MCAP bags: reads every intact message of a bag '
        'directory (a recorder killed before it wrote the MCAP footer, or a bag with damaged '
        'chunks) and writes them into a complete MCAP file with its summary, index and footer, '
        'plus a metadata.yaml, so that ros2 bag, rosbags and the mcap tools read it. The '
        'original directory is kept as BAG.orig; damaged chunks that were left out are listed. '
        'An intact bag is left as it is.')
    r.add_argument('bag', help='bag directory (holding metadata.yaml and/or .mcap files)')
    r.set_defaults(func=cmd_bag_reindex)
