"""`ilrl import`: a Minari dataset to a dataset."""

from ilrl_ros.cli.common import MINARI_ROOT_HELP


def cmd_import(args) -> int:
    from ilrl_ros.core.minari_io import import_minari
    from ilrl_ros.core.spec import load_spec
    spec = load_spec(args.task) if args.task else None
    data = import_minari(args.minari_id, root=args.root, spec=spec)
    data.save(args.output)
    print(f'wrote {args.output}: {len(data)} rows, {data.num_episodes} episodes, task '
          f'{data.spec.name!r}, observation {data.observations.shape[1]}, action '
          f'{data.actions.shape[1]}')
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('import', help='Minari dataset -> dataset (.npz)',
                       description='Read a Minari dataset with flat Box observations and '
                       'actions into a dataset for `ilrl train bc`: one row per transition '
                       '(the final observation of each episode is not a row). Datasets from '
                       '`ilrl export` carry their task spec; others need --task naming a task '
                       'whose observation and action sizes match.')
    p.add_argument('--minari-id', required=True,
                   help='dataset id under --root, or the path of a dataset folder')
    p.add_argument('--root', default=None, help=MINARI_ROOT_HELP)
    p.add_argument('--task', default=None,
                   help='task name or spec YAML (required for datasets not from ilrl export)')
    p.add_argument('-o', '--output', required=True, help='dataset .npz to write')
    p.set_defaults(func=cmd_import)
