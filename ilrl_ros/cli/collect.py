"""`ilrl collect`: expert demonstrations in the simulator (no ROS), optionally noisy or by DART."""

import argparse
import json
from pathlib import Path

from ilrl_ros.cli.common import floats


def cmd_collect(args) -> int:
    from ilrl_ros.core.train_log import console_progress
    from ilrl_ros.core.rollouts import aggregate, rollout
    from ilrl_ros.core.experts.teacher import make_named_expert
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    if args.graph:
        return _collect_graph(args)
    spec = load_spec(args.task)
    if args.beta < 1.0 and not args.checkpoint:
        raise ValueError(f'--beta {args.beta} lets a learner drive some steps: give its '
                         f'--checkpoint')
    if args.dart:
        return _collect_dart(args, spec)
    # A checkpoint teacher is loaded (and checked against the task) before any rollout.
    expert = make_named_expert(spec, args.expert)
    learner = None
    if args.checkpoint:
        from ilrl_ros.core.checkpoint import load_checkpoint
        learner = load_checkpoint(args.checkpoint, expected_spec=spec)
    amount = {'steps': args.steps} if args.steps else {'episodes': args.episodes}
    print(f'collecting in the {spec.name} simulator (no ROS): '
          + (f'{args.steps} steps' if args.steps else f'{args.episodes} episodes')
          + (f', expert noise std {list(args.noise_std)}' if args.noise_std else '')
          + (f', beta {args.beta} with {args.checkpoint}' if args.checkpoint else '')
          + (f', expert {args.expert}' if args.expert != 'scripted' else ''),
          flush=True)
    result = rollout(make_env(spec), expert, learner, beta=args.beta,
                     noise=list(args.noise_std) if args.noise_std else None, seed=args.seed,
                     max_episode_steps=args.max_episode_steps or None,
                     progress=console_progress('collect'), **amount)
    data = result.with_executed_labels() if args.label == 'executed' else result.data
    if args.append and Path(args.output).exists():
        from ilrl_ros.core.data import Demonstrations
        data = aggregate([Demonstrations.load(args.output), data])
    data.save(args.output)
    summary = result.summary()
    for stats in result.episodes:
        print(json.dumps(stats.as_dict()))
    print(f'success rate {summary["success_rate"]:.0%}, mean return '
          f'{summary["mean_return"]:.2f}, expert executed {summary["expert_fraction"]:.0%} '
          f'of steps; wrote {args.output}: {len(data)} rows, {data.num_episodes} episodes, '
          f'labels: {args.label}, rewards recorded')
    return 0


def _collect_graph(args) -> int:
    """Expert demonstrations through the live ROS 2 graph, from every robot in parallel."""
    import os
    sim_only = [flag for flag, on in (
        ('--dart', args.dart), ('--noise-std', args.noise_std), ('--steps', args.steps),
        ('--checkpoint', args.checkpoint), ('--beta', args.beta != 1.0),
        ('--label executed', args.label != 'expert'), ('--append', args.append),
        ('--max-episode-steps', args.max_episode_steps)) if on]
    if sim_only:
        raise ValueError(f'{sim_only[0]} is for collecting in the simulator; --graph records '
                         "whole episodes of the expert's driving through ROS 2")
    from ilrl_ros.fleet import collect
    from ilrl_ros.graph import GraphConfig
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    output = Path(args.output)
    out = output.parent / (output.stem + '_run')
    config = GraphConfig(task=args.task, namespace=args.namespace, robots=args.robots,
                         seed=args.seed, expert_source=args.expert,
                         robot_mode=args.robot_mode, observation_node=False)
    print(f'collecting {args.episodes} expert episodes per robot from {args.robots} '
          f'robot(s) through ROS 2 ({config.robot_mode}); bags under {out / "bags"}',
          flush=True)
    result = collect(config, args.episodes, out)
    result.data.save(output)
    for robot in result.robots:
        for episode in robot['episodes']:
            print(json.dumps({'robot': robot['namespace'], **episode}))
    for robot in result.robots:
        print(f'{robot["namespace"] or "robot"}: {len(robot["episodes"])} episodes, '
              f'{robot["steps"]} steps in {robot["seconds"]:.1f} s '
              f'({robot["steps_per_s"]:.0f} steps/s), {robot["rows"]} rows from '
              f'{robot["bag"]}')
    print(f'all robots: {result.steps} steps in {result.seconds:.1f} s '
          f'({result.steps_per_s:.0f} steps/s); wrote {output}: {len(result.data)} rows, '
          f'{result.data.num_episodes} episodes')
    return 0


def _collect_dart(args, spec) -> int:
    import numpy as np
    from ilrl_ros.core.algorithms.bc import BCConfig
    from ilrl_ros.core.algorithms.dart import DARTConfig, run
    if args.checkpoint or args.steps or args.label != 'expert':
        raise ValueError('--dart collects whole expert episodes with clean labels; leave out '
                         '--checkpoint, --steps and --label')
    from ilrl_ros.core.experts.teacher import make_named_expert
    expert = make_named_expert(spec, args.expert)
    config = DARTConfig(rounds=args.rounds, episodes_per_round=args.episodes,
                        initial_noise=list(args.noise_std) if args.noise_std else None,
                        alpha=args.alpha, max_episode_steps=args.max_episode_steps,
                        bc=BCConfig(steps=args.bc_steps, seed=args.seed),
                        eval_episodes=args.eval_episodes, seed=args.seed)

    def progress(k, total, metrics):
        print(f'DART round {k}/{total}: noise trace {metrics["dart/noise_trace"]:.4g}, '
              f'dataset {metrics["dart/dataset_size"]:.0f}, eval success '
              f'{metrics["eval/success_rate"]:.0%}', flush=True)

    result = run(spec, config, progress=progress, expert=expert)
    result.data.save(args.output)
    for row in result.rounds:
        print(json.dumps({k: row[k] for k in ('round', 'noise_std', 'new_labels',
                                              'dataset_size', 'collect_success_rate',
                                              'eval_success_rate', 'eval_mean_return')}))
    print(f'wrote {args.output}: {len(result.data)} rows, {result.data.num_episodes} '
          f'episodes; next noise std {np.sqrt(np.diag(result.next_noise)).round(4).tolist()}')
    if args.policy_out:
        from ilrl_ros.core.checkpoint import save_checkpoint
        path = save_checkpoint(args.policy_out, result.policy, algorithm='dart', spec=spec,
                               config=result.config,
                               provenance={'rows': len(result.data), 'rounds': result.rounds,
                                           'seconds': result.seconds})
        print(f'wrote checkpoint {path}')
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser(
        'collect', help='expert demonstrations in the simulator (no ROS), optionally noisy',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Roll out episodes in the task's simulator without ROS and write a "
        'dataset with rewards. The expert labels every visited state; what is executed is the '
        "expert's action, plus Gaussian noise with --noise-std (DART: the label stays the "
        'clean action), or with --beta < 1 and --checkpoint, a per-step mixture in which the '
        'checkpoint acts with probability 1 - beta (one DAgger round). --label executed '
        'records the executed actions instead (mixed-quality data for RWR/AWR); --append adds '
        'to an existing dataset. --dart runs DART (Laskey et al. 2017): --rounds rounds of '
        "--episodes episodes, fitting a policy after each round and setting the next round's "
        "noise to its error covariance on the expert's states. --expert checkpoint:<folder> "
        "makes a trained policy the expert (a teacher: it sees its own task's observation, "
        "e.g. the lidar, while the rows hold this task's, e.g. the camera; learning by "
        'cheating).\n\n'
        'examples:\n'
        '  ilrl collect --task track_follow --episodes 3 -o data/expert.npz\n'
        '  ilrl collect --task track_follow --episodes 3 --noise-std 0.05,1.0 --label '
        'executed --append -o data/expert.npz\n'
        '  ilrl collect --task track_follow --episodes 2 --dart --rounds 3 -o data/dart.npz\n'
        '  ilrl collect --task track_follow_camera --expert checkpoint:checkpoints/teacher '
        '--steps 2000 -o data/taught.npz\n'
        '  ilrl collect --graph --robots 3 --task pendulum --episodes 2 -o data/fleet.npz')
    p.add_argument('--task', required=True, help='task name or spec YAML path')
    p.add_argument('--episodes', type=int, default=3,
                   help='episodes (per round with --dart) (default: %(default)s)')
    p.add_argument('--steps', type=int, default=0,
                   help='collect exactly this many steps instead of whole episodes')
    p.add_argument('--noise-std', type=floats, default=None, metavar='STD[,STD...]',
                   help="Gaussian noise on the expert's executed action: one std or one per "
                   "action field (with --dart: the first round's noise)")
    p.add_argument('--dart', action='store_true',
                   help='optimise the noise as DART does over --rounds rounds')
    p.add_argument('--rounds', type=int, default=3, help='DART rounds (default: %(default)s)')
    p.add_argument('--alpha', type=float, default=None,
                   help='DART: scale each noise covariance estimate to trace alpha, keeping '
                   'its shape (default: the raw estimate)')
    p.add_argument('--bc-steps', type=int, default=2000,
                   help='DART: behavior cloning steps per round (default: %(default)s)')
    p.add_argument('--eval-episodes', type=int, default=0,
                   help="DART: evaluation episodes of each round's policy (default: "
                   '%(default)s)')
    p.add_argument('--policy-out', default=None,
                   help="DART: also write the last round's policy as a checkpoint")
    p.add_argument('--beta', type=float, default=1.0,
                   help='probability per step that the expert acts (default: %(default)s)')
    p.add_argument('--checkpoint', default=None, help='the learner for --beta < 1')
    p.add_argument('--expert', default='scripted', metavar='scripted|checkpoint:FOLDER',
                   help="who labels (and drives, with --beta 1): the task's scripted expert or "
                   "a trained checkpoint acting on its own task's observation (default: "
                   '%(default)s)')
    p.add_argument('--label', choices=('expert', 'executed'), default='expert',
                   help="row labels: the expert's clean action (default) or the executed one")
    p.add_argument('--append', action='store_true',
                   help='add to the dataset at --output if it exists (episodes kept apart)')
    p.add_argument('--max-episode-steps', type=int, default=0,
                   help="cut episodes after this many steps (default: the task's timeout)")
    p.add_argument('--seed', type=int, default=0, help='first start-state seed (default: 0)')
    p.add_argument('-o', '--output', required=True, help='dataset .npz to write')
    p.add_argument('--graph', action='store_true',
                   help="through ROS 2: run the node graph (ilrl sim) in this process, the "
                   "expert driving each robot's mock robot, one bag per robot (under "
                   '<output>_run/bags), converted and merged with per-robot episode ids')
    p.add_argument('--robots', type=int, default=1,
                   help='--graph: robots collecting in parallel, each in its namespace '
                   '(default: %(default)s)')
    p.add_argument('--namespace', default='',
                   help="--graph: the namespace (one robot) or the prefix of the robots' "
                   'namespaces (default: robot_1 .. robot_N; none for one robot)')
    p.add_argument('--robot-mode', choices=('lock_step', 'free_run'), default='lock_step',
                   help='--graph: how the mock robots step (default: %(default)s)')
    p.set_defaults(func=cmd_collect)
