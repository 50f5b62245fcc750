"""`ilrl convert`: a rosbag2 bag to a demonstration dataset."""

import json
from pathlib import Path


def cmd_convert(args) -> int:
    from ilrl_ros.convert import bag_to_dataset
    from ilrl_ros.core.spec import load_spec
    spec = load_spec(args.task)
    print(f'converting {args.bag} for task {spec.name!r}', flush=True)
    data, report = bag_to_dataset(args.bag, spec, action_topic=args.action_topic,
                                  label_topic=args.label_topic,
                                  label_tolerance_s=args.label_tolerance,
                                  align_tolerance_s=args.align_tolerance,
                                  allow_partial=args.allow_partial)
    data.save(args.output)
    report_path = Path(args.output).with_suffix('.report.json')
    report_path.write_text(json.dumps(report.to_dict(), indent=2) + '\n')
    print(report.summary())
    print(f'wrote {args.output}: {len(data)} rows, {data.num_episodes} episodes, '
          f'observation {data.observations.shape[1]}, action {data.actions.shape[1]}; '
          f'report {report_path}')
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('convert', help='bag -> demonstration dataset (.npz)',
                       description='One row per executed command (the control clock): the '
                       'observation from the newest reading of each sensor at or before the '
                       'command, within a tolerance, built with the task spec; the label from '
                       'the command or from --label-topic. Rows without a reading or a label in '
                       'time are dropped and counted, never filled. Reads our bags and those of '
                       '`ros2 bag record` (MCAP or sqlite3, split, or cut short by a kill). '
                       'Prints what it kept and dropped, and writes that report next to the '
                       'dataset as NAME.report.json.')
    p.add_argument('bag', help='bag folder, .mcap or .db3 file')
    p.add_argument('--task', required=True, help='task name or spec YAML path')
    p.add_argument('-o', '--output', required=True, help='dataset .npz to write')
    p.add_argument('--action-topic', default=None,
                   help='the executed commands: one row per message, at its stamp '
                   '(TwistStamped header, Float64MultiArray layout label stamp_ns=) or else its '
                   "log time (default: the task's command topic); "
                   'they are the labels unless --label-topic is given')
    p.add_argument('--label-topic', default=None,
                   help='take the action labels from this topic instead, e.g. expert/action '
                   'or teleop/cmd_vel (Twist or TwistStamped for a twist action): the newest '
                   'label at or before each command; states without one are dropped')
    p.add_argument('--label-tolerance', type=float, default=None, metavar='SECONDS',
                   help="how old a label may be at the command (default: the spec's "
                   'sync_tolerance_s when both are stamped, else one control period)')
    p.add_argument('--align-tolerance', type=float, default=None, metavar='SECONDS',
                   help='how old a sensor reading may be at the command; a row without one '
                   "is dropped, never filled (default: the spec's sync_tolerance_s for "
                   'stamped commands, its max_age_s for unstamped ones)')
    p.add_argument('--allow-partial', action='store_true',
                   help='convert a corrupt bag anyway: damaged chunks (failing their CRC or not '
                   'decoding) are skipped and listed in the report. Without it such a bag is '
                   'refused (exit 2). A bag merely cut short by a killed recorder converts '
                   'either way, with a warning')
    p.set_defaults(func=cmd_convert)
