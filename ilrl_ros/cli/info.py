"""`ilrl info`: describe a checkpoint or a bag."""

import json
from pathlib import Path


def cmd_info(args) -> int:
    path = Path(args.path)
    if (path / 'manifest.json').is_file():
        from ilrl_ros.core.checkpoint import read_manifest
        manifest = read_manifest(path)
        shown = {k: manifest[k] for k in ('algorithm', 'network', 'observation_labels',
                                          'action_fields', 'provenance') if k in manifest}
        shown['task'] = manifest['task_spec'].get('name')
        print(json.dumps(shown, indent=2))
        return 0
    from ilrl_ros.bag import open_bag
    with open_bag(path) as reader:
        print(f'{path}' + (' (cut short: read up to the cut)' if reader.truncated else ''))
        for name, info in sorted(reader.topics.items()):
            print(f'  {name:32s} {info.type_name:40s} {info.count:8d}')
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('info', help='describe a checkpoint or a bag')
    p.add_argument('path', help='checkpoint folder, bag folder, .mcap or .db3')
    p.set_defaults(func=cmd_info)
