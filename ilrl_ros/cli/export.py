"""`ilrl export`: a dataset to a Minari dataset."""

from ilrl_ros.cli.common import MINARI_ROOT_HELP


def cmd_export(args) -> int:
    from ilrl_ros.core.data import Demonstrations
    from ilrl_ros.core.minari_io import export_minari
    data = Demonstrations.load(args.data)
    print(f'exporting {args.data}: {len(data)} rows, {data.num_episodes} episodes', flush=True)
    done = export_minari(data, args.minari_id, root=args.root, author=args.author,
                         description=args.description, missing_rewards=args.missing_rewards,
                         overwrite=args.overwrite)
    print(f'wrote Minari dataset {done.dataset_id} at {done.path}: {done.episodes} episodes, '
          f"{done.steps} transitions (each episode's last row is the final observation), "
          f'rewards available: {done.rewards_available}'
          + (f'; skipped {len(done.skipped_episodes)} single-row episode(s) '
             f'{list(done.skipped_episodes)}' if done.skipped_episodes else ''))
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('export', help='dataset (.npz) -> Minari dataset (offline RL format)',
                       description='Write a dataset as a Minari dataset (Farama Foundation, '
                       'HDF5), one Minari episode per episode, readable with '
                       '`minari.load_dataset(ID)`. Minari stores the observation after every '
                       'action; nothing was observed after the last action of an episode, so '
                       'an episode of N rows becomes N-1 transitions whose final observation '
                       "is the last row's (that row's action is not exported). Rewards the "
                       'bag lacked are stored as 0 and flagged in the metadata. The task spec '
                       'travels in the metadata, for `ilrl import`.')
    p.add_argument('--data', required=True, help='dataset .npz from `ilrl convert`')
    p.add_argument('--minari-id', required=True,
                   help='dataset id namespace/name-vN, e.g. ilrl/track_follow-expert-v0')
    p.add_argument('--root', default=None, help=MINARI_ROOT_HELP)
    p.add_argument('--author', default='ilrl_ros', help='author in the metadata')
    p.add_argument('--description', default='',
                   help='text put before the generated description')
    p.add_argument('--missing-rewards', choices=('error', 'zero'), default='error',
                   help='when only some rows lack a reward: refuse (default), or store 0 and '
                   'list those steps in the metadata')
    p.add_argument('--overwrite', action='store_true', help='replace a dataset of this id')
    p.set_defaults(func=cmd_export)
