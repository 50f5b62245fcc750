"""`ilrl learn <algorithm>`: reinforcement learning on the live loop, over ROS 2."""

import argparse

from ilrl_ros.cli.config_flags import add_config_flags, config_overrides

ABOUT = """Learn on the running loop, over ROS 2.

Asynchronous (the default): a free-running mock robot (or, with --graph, whatever graph is
already running, e.g. `ros2 launch ilrl_ros learn.launch.py`) is driven by the policy node,
the actor, which explores (SAC samples; TD3 / DDPG add noise; DQN is epsilon-greedy). The
transition publisher sends each step's (s, a, r, s', terminated, truncated) on the
`transitions` topic; the learner (this process) trains continuously and swaps a new
checkpoint into the policy node every --swap-every updates. The control loop never waits.

Synchronous (--sync): this process acts through RosEnv, then updates, one step at a time,
while the world goes on (--lock-step: the robot waits for each action).

Writes OUTPUT/checkpoints/final (and the recent swapped ones), logs and curves.png in
OUTPUT, the graph's log in OUTPUT/graph.log and, with --record, a bag of every transition in
OUTPUT/bags. Then evaluates the final policy in the in-process simulator.

examples:
  ilrl learn sac --task pendulum -o runs/learn_sac --steps 10000 --real-time-factor 2
  ilrl learn sac --task pendulum -o runs/sync_sac --steps 10000 --sync --real-time-factor 2
  ilrl learn sac --task pendulum -o runs/rlpd --data data/demos.npz --teleop-topic teleop/cmd
"""


def cmd_learn(args) -> int:
    from pathlib import Path

    from ilrl_ros.core.train_log import console_progress
    from ilrl_ros.online_run import run_async, run_sync
    overrides = config_overrides(args, args.config_flags)
    progress = console_progress(f'learn {args.algorithm}')
    common = dict(seed=args.seed, clock=args.clock, real_time_factor=args.real_time_factor,
                  config=overrides, demonstrations=args.data or '', graph=not args.graph,
                  progress=progress, replay=args.replay or '')
    if args.sync:
        run = run_sync(args.task, args.algorithm, args.steps, Path(args.output),
                       lock_step=args.lock_step, **common)
    else:
        run = run_async(args.task, args.algorithm, args.steps, Path(args.output),
                        swap_every=args.swap_every,
                        updates_per_transition=args.updates_per_transition,
                        record=args.record, teleop_topic=args.teleop_topic, **common)
    accepted = sum(1 for s in run.swaps if s[4])
    print(f'learn {args.algorithm} ({run.mode}): {run.env_steps} environment steps, '
          f'{run.updates} updates in {run.seconds:.1f} s ({run.updates / run.seconds:.0f} '
          f'updates/s); {len(run.episodes)} episodes'
          + (f', {accepted} of {len(run.swaps)} checkpoints swapped in' if run.swaps else '')
          + (f', {run.skipped} world steps without a fresh action' if run.mode == 'sync'
             else ''))
    on_time, missing = run.robot.get('commands_on_time', 0), run.robot.get('commands_missing', 0)
    if on_time + missing:
        print(f'mock robot: {on_time} of {on_time + missing} steps had a fresh command '
              f'({100 * on_time / (on_time + missing):.2f}%), at most '
              f'{run.robot.get("longest_command_gap")} in a row without one')
    if run.final_checkpoint is None:
        print('no checkpoint: no transition arrived')
        return 1
    print(f'wrote checkpoint {run.final_checkpoint}')
    if args.eval_episodes:
        from ilrl_ros.core.scoring import evaluate_checkpoint
        import numpy as np
        results = evaluate_checkpoint(run.final_checkpoint, episodes=args.eval_episodes,
                                      seed=10_000 + args.seed)
        returns = [r['return'] for r in results]
        print(f'evaluation over {len(returns)} episodes in the simulator: return '
              f'{np.mean(returns):.1f} +/- {np.std(returns):.1f}')
    return 0


def add_to(sub, algorithms: bool = True) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands (``algorithms``: as train's)."""
    p = sub.add_parser('learn', help='reinforcement learning on the live loop over ROS 2',
                       description=ABOUT, formatter_class=argparse.RawDescriptionHelpFormatter)
    if not algorithms:
        return
    from ilrl_ros.cli.train import _config_class
    from ilrl_ros.core.rl.learners import OFF_POLICY
    algos = p.add_subparsers(dest='algorithm', required=True, metavar='ALGORITHM')
    for name in OFF_POLICY:
        a = algos.add_parser(name, help=f'{name.upper()} on the live loop',
                             description=ABOUT,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        a.add_argument('--task', required=True,
                       help='our task (pendulum, track_follow, or a spec YAML)')
        a.add_argument('-o', '--output', required=True,
                       help='folder for checkpoints, logs, curves.png and the graph log')
        a.add_argument('--steps', type=int, default=20_000,
                       help='environment steps (transitions) to learn from (default: '
                       '%(default)s)')
        a.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
        a.add_argument('--clock', choices=('sim', 'wall'), default='sim',
                       help='sim: the mock robot publishes /clock and every node runs on it; '
                       'wall: real time (default: %(default)s)')
        a.add_argument('--real-time-factor', type=float, default=1.0,
                       help='simulated seconds per wall second of the free-running mock '
                       'robot (default: %(default)s)')
        a.add_argument('--sync', action='store_true',
                       help='synchronous learner: act through RosEnv, then update')
        a.add_argument('--lock-step', action='store_true',
                       help='with --sync: the mock robot waits for each action')
        a.add_argument('--graph', action='store_true',
                       help='use the graph already running (ros2 launch ilrl_ros '
                       'learn.launch.py) instead of starting one')
        a.add_argument('--swap-every', type=int, default=500,
                       help='gradient steps between checkpoints swapped into the policy node '
                       '(default: %(default)s)')
        a.add_argument('--updates-per-transition', type=float, default=1.0,
                       help='most gradient steps per transition received; 0: no limit '
                       '(default: %(default)s)')
        a.add_argument('--data', default=None,
                       help='dataset .npz from `ilrl convert` (with rewards) to seed the '
                       'demonstration buffer')
        a.add_argument('--replay', default=None,
                       help='a bag an earlier run recorded (--record): its transitions fill '
                       'the replay buffer first, so learning goes on where it stopped (or '
                       'trains offline on it before the robot moves)')
        a.add_argument('--teleop-topic', default='',
                       help="a person's command topic: while they command, they drive, and "
                       'those steps are kept as demonstrations')
        a.add_argument('--record', action='store_true',
                       help='record every transition (and the loop) to OUTPUT/bags')
        a.add_argument('--eval-episodes', type=int, default=10,
                       help='simulator episodes to evaluate the final policy on (default: '
                       '%(default)s)')
        # The loop's own pacing settings do not apply: online, updates follow the data
        # (--updates-per-transition) and the learner logs every two seconds.
        a.set_defaults(func=cmd_learn, config_flags=add_config_flags(
            a, _config_class(name), skip=('total_steps', 'seed', 'train_freq',
                                          'gradient_steps', 'log_every')))
