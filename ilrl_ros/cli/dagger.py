"""`ilrl dagger`: DAgger over the live ROS 2 graph, or in the simulator (--sim)."""

import argparse
import json
from pathlib import Path
import sys
import textwrap

from ilrl_ros.cli.common import floats
from ilrl_ros.cli.config_flags import add_device_flag


def cmd_dagger(args) -> int:
    if args.sim:
        live_only = [name for name in ('graph', 'label_topic', 'label_tolerance', 'dart_noise',
                                       'episode_timeout', 'namespace') if getattr(args, name)]
        live_only += ['robots'] if args.robots != 1 else []
        if live_only:
            raise ValueError(f'--{live_only[0].replace("_", "-")} is for live DAgger over ROS '
                             '2; leave it out with --sim')
        return _dagger_sim(args)
    from ilrl_ros.core.experts.teacher import parse_expert_name, SCRIPTED
    parse_expert_name(args.expert)
    if args.expert != SCRIPTED and not args.graph:
        raise ValueError('--expert chooses the expert of a graph started here (--graph) or '
                         "of --sim; a graph running already uses its expert node's `expert` "
                         'parameter (e.g. ros2 launch ilrl_ros sim.launch.py '
                         'expert_source:=checkpoint:<folder>)')
    from ilrl_ros.dagger_live import LiveDAggerConfig, run_live_dagger
    from ilrl_ros.graph_client import OperatorError
    config = LiveDAggerConfig(
        task=args.task, rounds=args.rounds, episodes_per_round=args.episodes_per_round,
        schedule=args.schedule, p=args.p, label_topic=args.label_topic or 'expert/action',
        label_tolerance_s=args.label_tolerance, expert=args.expert,
        expert_noise_std=args.dart_noise or (),
        bc_steps=args.bc_steps, eval_episodes=args.eval_episodes,
        episode_timeout_s=args.episode_timeout, out=args.out, seed=args.seed,
        robots=args.robots, namespace=args.namespace,
        device=args.device)
    try:
        return run_live_dagger(config, start_graph=args.graph)
    except OperatorError as error:
        # The graph did not answer or refused a step: say which, no traceback.
        print(f'ilrl dagger: {error}', file=sys.stderr)
        return 2


def _dagger_sim(args) -> int:
    from ilrl_ros.core.algorithms.bc import BCConfig
    from ilrl_ros.core.algorithms.dagger import DAggerConfig, format_rounds, run
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.experts.teacher import make_named_expert
    from ilrl_ros.core.spec import load_spec
    spec = load_spec(args.task)
    # A checkpoint teacher is loaded and checked against the task before any round.
    expert = make_named_expert(spec, args.expert)
    config = DAggerConfig(rounds=args.rounds, episodes_per_round=args.episodes_per_round,
                          schedule=args.schedule, p=args.p, eval_episodes=args.eval_episodes,
                          seed=args.seed, bc=BCConfig(steps=args.bc_steps, seed=args.seed,
                                                      device=args.device))

    def progress(i, total, metrics):
        print(f'round {i}/{total}: beta {metrics["dagger/beta"]:.3g}, dataset '
              f'{metrics["dagger/dataset_size"]:.0f}, eval success '
              f'{metrics["eval/success_rate"]:.0%}, return {metrics["eval/mean_return"]:.1f}',
              flush=True)

    print(f'DAgger in the {spec.name} simulator (no ROS): {args.rounds} rounds of '
          f'{args.episodes_per_round} episodes', flush=True)
    result = run(spec, config, progress=progress, expert=expert)
    out = Path(args.out)
    path = save_checkpoint(out / 'checkpoints' / 'final', result.policy, algorithm='dagger',
                           spec=spec, config=result.config,
                           provenance={'rows': len(result.data), 'rounds': result.rounds,
                                       'seconds': result.seconds})
    result.data.save(out / 'dataset.npz')
    table = format_rounds(result.rounds)
    (out / 'results.md').write_text(f'# ilrl dagger --sim: {spec.name}\n\n{table}\n')
    (out / 'results.json').write_text(json.dumps(
        {'task': spec.name, 'config': result.config, 'rounds': result.rounds,
         'checkpoint': str(path), 'seconds': result.seconds}, indent=2))
    print('\n' + table + f'\n\nwrote checkpoint {path}, {out / "results.md"} and '
          f'{out / "results.json"}')
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    about = ('DAgger (Ross, Gordon & Bagnell, AISTATS 2011) on the running ROS 2 graph. '
             'Round 0: the expert drives (demonstrations). Each later round: the policy '
             'trained so far drives (the expert drives an episode with probability beta), the '
             'expert node labels every observed state on expert/action (or a human labels on '
             '--label-topic), the recorder writes bags/dagger_round_NNN, the bag is converted '
             '(states without a label are dropped), aggregated with the earlier rounds, '
             'behavior cloning is retrained, and the checkpoint is swapped into the running '
             'policy node by parameter: no node restarts. Prints and writes (results.md, '
             'results.json) a table per round: beta, episodes, new labelled states, dataset '
             'size, success rate, mean return.',
             'The graph must run already (ros2 launch ilrl_ros dagger.launch.py starts it and '
             'this command), or give --graph to start `ilrl sim` here. --sim runs DAgger in '
             'the simulator without ROS (per-step mixing, evaluation episodes each round).',
             '--expert checkpoint:<folder> makes a trained policy the expert: a teacher that '
             "acts on its own task's observation (e.g. track_follow's lidar) built from the "
             "same robot's readings, labelling a student that sees this task's (e.g. "
             "track_follow_camera's image): learning by cheating (Chen et al. 2020).")
    p = sub.add_parser(
        'dagger', help='DAgger: the policy drives, the expert labels, retrain, swap, repeat',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='\n\n'.join(textwrap.fill(text, 90) for text in about) + '\n\n'
        'examples:\n'
        '  ilrl dagger --graph --task track_follow --rounds 4 --out dagger_out\n'
        '  ilrl dagger --graph --robots 3 --episodes-per-round 1   # 3 robots gather at once\n'
        '  ilrl dagger --graph --label-topic teleop/cmd_vel --label-tolerance 0.2\n'
        "  ilrl dagger --graph --dart-noise 0.05,0.5     # DART noise on the expert's drive\n"
        '  ilrl dagger --sim --task track_follow --rounds 5\n'
        '  ilrl dagger --sim --task track_follow_camera --expert checkpoint:checkpoints/teacher')
    p.add_argument('--task', default='track_follow', help='task (default: %(default)s)')
    p.add_argument('--rounds', type=int, default=4,
                   help='rounds, round 0 (expert demonstrations) included (default: '
                   '%(default)s)')
    p.add_argument('--episodes-per-round', type=int, default=3,
                   help='episodes driven per round (default: %(default)s)')
    p.add_argument('--schedule', choices=('ross', 'exponential'), default='ross',
                   help='beta schedule: ross (1, then 0) or exponential (p^i) '
                   '(default: %(default)s)')
    p.add_argument('--p', type=float, default=0.5,
                   help='decay of the exponential schedule (default: %(default)s)')
    p.add_argument('--bc-steps', type=int, default=2000,
                   help='behavior cloning steps per round (default: %(default)s)')
    p.add_argument('--eval-episodes', type=int, default=3,
                   help="episodes of the final policy (live) or of each round's policy "
                   '(--sim) (default: %(default)s)')
    add_device_flag(p, "each round's behavior cloning")
    p.add_argument('--out', default='dagger_out', help='output folder (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
    p.add_argument('--graph', action='store_true',
                   help='start the `ilrl sim` graph as a child process (no ros2 launch needed)')
    p.add_argument('--label-topic', default=None,
                   help='where labels come from (default: expert/action); e.g. '
                   "teleop/cmd_vel for a human teleoperator's Twist")
    p.add_argument('--label-tolerance', type=float, default=None, metavar='SECONDS',
                   help='how long a label stays valid for a later command (unstamped '
                   "labels); default: the converter's")
    p.add_argument('--dart-noise', type=floats, default=None, metavar='STD[,STD...]',
                   help="DART: Gaussian noise on the expert's driven command, one std or one "
                   'per action field; the label stays clean')
    p.add_argument('--episode-timeout', type=float, default=None, metavar='SECONDS',
                   help="wall-clock wait per episode (default: 4 x the task's timeout + 60)")
    p.add_argument('--expert', default='scripted', metavar='scripted|checkpoint:FOLDER',
                   help="the expert: the task's scripted one or a trained checkpoint (a "
                   'teacher), with --sim or --graph (default: %(default)s)')
    p.add_argument('--robots', type=int, default=1,
                   help='robots gathering each round in parallel, each in its namespace '
                   '(robot_1 .. robot_N, or NAMESPACE_1 ..); every robot drives '
                   '--episodes-per-round episodes per round (default: %(default)s)')
    p.add_argument('--namespace', default='',
                   help="the robot's namespace, or the prefix of the robots' (default: none; "
                   'robot_<i> with --robots)')
    p.add_argument('--sim', action='store_true',
                   help='DAgger in the simulator, without ROS (ilrl_ros.core.algorithms.dagger)')
    p.set_defaults(func=cmd_dagger)
