"""The ``ilrl`` command: record, convert, train, evaluate, run the graph, and the demo.

Examples::

    ilrl demo                                   # the whole story on track_follow
    ilrl sim --task track_follow --expert-drive --record --bag-dir bags
    ilrl convert bags/demo_20261127T101500 --task track_follow -o data/demos.npz
    ilrl train bc --data data/demos.npz -o checkpoints/bc --log-dir runs/bc
    ilrl evaluate --checkpoint checkpoints/bc --episodes 10
    ilrl info checkpoints/bc

Data flow::

    mock_robot/robot --sensors--> expert --cmd--> robot        (demonstrations)
                  `--> demo_recorder --MCAP bag--> ilrl convert --> dataset.npz
    dataset.npz --> ilrl train bc --> checkpoint/ --> ros2 param set /policy checkpoint ...
"""

import argparse
import json
import logging
from pathlib import Path
import sys
import time


def _progress(label: str):
    # On a terminal the line updates in place; in a log every report is a line of its own.
    live = sys.stdout.isatty()

    def report(step, total, metrics):
        text = ' '.join(f'{k.split("/")[-1]}={v:.4g}' for k, v in metrics.items())
        line = f'{label}: step {step}/{total} {text}'
        if live:
            print('\r' + line, end='' if step < total else '\n', flush=True)
        else:
            print('    ' + line, flush=True)
    return report


def cmd_sim(args) -> int:
    from ilrl_ros.graph import Graph, GraphConfig
    config = GraphConfig(task=args.task, checkpoint=args.checkpoint, robot=not args.no_robot,
                         robot_mode=args.robot_mode, clock=args.clock,
                         real_time_factor=args.real_time_factor, policy_mode=args.policy_mode,
                         expert_drive=args.expert_drive, record=args.record,
                         record_autostart=not args.record_no_autostart, bag_dir=args.bag_dir,
                         bag_name=args.bag_name, seed=args.seed, max_episodes=args.episodes)
    graph = Graph(config).start()
    manager = graph.nodes['episode_manager']
    try:
        while not (args.episodes and len(manager.results) >= args.episodes
                   and manager.state != 'running'):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        graph.close()
    for result in manager.results:
        print(json.dumps(result.as_dict()))
    return 0


def cmd_convert(args) -> int:
    from ilrl_ros.convert import bag_to_dataset
    from ilrl_ros.core.spec import load_spec
    spec = load_spec(args.task)
    data, report = bag_to_dataset(args.bag, spec, action_topic=args.action_topic)
    data.save(args.output)
    print(report.summary())
    print(f'wrote {args.output}: {len(data)} rows, {data.num_episodes} episodes, '
          f'observation {data.observations.shape[1]}, action {data.actions.shape[1]}')
    return 0


def train_bc(data_path, output, log_dir=None, **overrides):
    """Train behavior cloning from a dataset file and save the checkpoint; return it."""
    from ilrl_ros.core.algorithms.bc import BCConfig, train
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.data import Demonstrations
    from ilrl_ros.core.train_log import TrainingLog
    data = Demonstrations.load(data_path)
    config = BCConfig(**{k: v for k, v in overrides.items() if v is not None})
    log = TrainingLog(log_dir)
    result = train(data, config, log, progress=_progress('bc'))
    log.close()
    path = save_checkpoint(output, result.policy, algorithm='bc', spec=data.spec,
                           config=result.config,
                           provenance={'dataset': str(data_path), 'rows': len(data),
                                       'episodes': data.num_episodes,
                                       'train_loss': result.train_loss,
                                       'val_loss': result.val_loss,
                                       'seconds': result.seconds, **data.info})
    return path, result


def cmd_train_rl(args) -> int:
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.training import train_rl
    if args.env and args.output:
        raise ValueError('a checkpoint needs a task spec: train on --task to write one '
                         '(--env runs are for benchmarks)')
    run = train_rl(args.algorithm, task=args.task, env_id=args.env, steps=args.steps,
                   seed=args.seed, log_dir=args.log_dir,
                   progress=_progress(args.algorithm), eval_episodes=args.eval_episodes)
    evaluation = run.evaluation
    print(f'{args.algorithm}: {run.env_steps} environment steps in {run.seconds:.1f} s'
          + (f'; evaluation over {len(evaluation["returns"])} episodes: return '
             f'{evaluation["mean"]:.1f} +/- {evaluation["std"]:.1f}' if evaluation else ''))
    if args.output:
        path = save_checkpoint(args.output, run.policy, algorithm=args.algorithm,
                               spec=run.spec, config=run.config,
                               provenance={'env_steps': run.env_steps, 'seconds': run.seconds,
                                           'seed': args.seed, 'evaluation': evaluation})
        print(f'wrote checkpoint {path}')
    if args.log_dir:
        print(f'logs and curves.png in {args.log_dir}')
    return 0


def cmd_train(args) -> int:
    hidden = tuple(int(h) for h in args.hidden.split(',')) if args.hidden else None
    path, result = train_bc(args.data, args.output, args.log_dir, head=args.head,
                            steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                            hidden=hidden, seed=args.seed)
    print(f'wrote checkpoint {path} (train loss {result.train_loss:.4f}, validation loss '
          f'{result.val_loss:.4f}, {result.seconds:.1f} s)'
          + (f'; logs and curves.png in {args.log_dir}' if args.log_dir else ''))
    return 0


def evaluate_in_sim(checkpoint, task=None, episodes=10, seed=1000):
    """Run a checkpoint in the task's simulator (no ROS); return per-episode results."""
    from ilrl_ros.core.checkpoint import load_checkpoint
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env
    loaded = load_checkpoint(checkpoint)
    spec = load_spec(task) if task else loaded.spec
    if task:
        loaded = load_checkpoint(checkpoint, expected_spec=spec)
    env = make_env(spec)
    results = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(loaded.act(obs))
            total += reward
            steps += 1
            done = terminated or truncated
        results.append({'episode': episode + 1, 'outcome': info['outcome'],
                        'success': info['outcome'] == 'success', 'return': total,
                        'length': steps, 'duration_s': steps * spec.dt})
    return results


def summarize(label: str, results: list) -> dict:
    """One table row: policy, episodes, success rate, mean return, mean lap time."""
    done = [r for r in results if r['outcome'] != 'aborted']
    successes = [r for r in done if r['success']]
    return {'policy': label, 'episodes': len(done),
            'success_rate': len(successes) / len(done) if done else float('nan'),
            'mean_return': sum(r['return'] for r in done) / len(done) if done else float('nan'),
            'mean_lap_time_s': (sum(r['duration_s'] for r in successes) / len(successes)
                                if successes else float('nan'))}


def format_table(rows: list) -> str:
    header = '| policy | episodes | success rate | mean return | mean lap time (s) |'
    lines = [header, '|---|---:|---:|---:|---:|']
    for row in rows:
        lines.append(f'| {row["policy"]} | {row["episodes"]} | {row["success_rate"]:.0%} | '
                     f'{row["mean_return"]:.2f} | {row["mean_lap_time_s"]:.1f} |')
    return '\n'.join(lines)


def cmd_evaluate(args) -> int:
    results = evaluate_in_sim(args.checkpoint, args.task, args.episodes, args.seed)
    for result in results:
        print(json.dumps(result))
    print(format_table([summarize(Path(args.checkpoint).name, results)]))
    return 0


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


def cmd_demo(args) -> int:
    from ilrl_ros.demo import run_demo
    return run_demo(Path(args.out), task=args.task, demo_episodes=args.demo_episodes,
                    eval_episodes=args.eval_episodes, bc_steps=args.bc_steps, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='ilrl', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    p = sub.add_parser('demo', help='record expert demos, train BC, swap it in, evaluate',
                       description='The main job on track_follow: the expert drives while the '
                       'recorder writes an MCAP bag; the bag is converted; behavior cloning '
                       'trains; the checkpoint is swapped into the running policy node by '
                       'parameter; the policy runs evaluation episodes through the episode '
                       'manager. Prints and writes a results table.')
    p.add_argument('--out', default='demo_out', help='output folder (default: %(default)s)')
    p.add_argument('--task', default='track_follow', help='task (default: %(default)s)')
    p.add_argument('--demo-episodes', type=int, default=4,
                   help='expert episodes to record (default: %(default)s)')
    p.add_argument('--eval-episodes', type=int, default=5,
                   help='evaluation episodes of the trained policy (default: %(default)s)')
    p.add_argument('--bc-steps', type=int, default=3000,
                   help='behavior cloning gradient steps (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='start-state seed (default: 0)')
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser('sim', help='run the node graph in one process (no ros2 launch needed)',
                       description='Run mock_robot, observation, policy, reward_monitor, '
                       'episode_manager, expert (and demo_recorder) in one process, as '
                       'launch/sim.launch.py does in several. Ctrl-C stops it.')
    p.add_argument('--task', default='track_follow', help='task name or spec YAML path')
    p.add_argument('--checkpoint', default='', help='checkpoint for the policy node')
    p.add_argument('--no-robot', action='store_true',
                   help="no mock robot: run the loop against a real robot's topics")
    p.add_argument('--robot-mode', choices=('lock_step', 'free_run'), default='lock_step',
                   help='mock robot stepping (default: %(default)s)')
    p.add_argument('--clock', choices=('sim', 'wall'), default='sim',
                   help='sim: simulation time on /clock; wall: real time')
    p.add_argument('--real-time-factor', type=float, default=1.0,
                   help='free_run speed-up (default: %(default)s)')
    p.add_argument('--policy-mode', choices=('event', 'timer'), default='event',
                   help='policy node mode (default: %(default)s)')
    p.add_argument('--expert-drive', action='store_true', help='the expert drives the robot')
    p.add_argument('--record', action='store_true', help='run the demo recorder')
    p.add_argument('--record-no-autostart', action='store_true',
                   help='recorder waits for its ~/start service')
    p.add_argument('--bag-dir', default='bags', help='where bags go (default: %(default)s)')
    p.add_argument('--bag-name', default='', help='bag folder name (default: timestamped)')
    p.add_argument('--seed', type=int, default=0, help='mock robot start-state seed')
    p.add_argument('--episodes', type=int, default=0,
                   help='stop after this many episodes and print them (default: run on)')
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser('convert', help='bag -> demonstration dataset (.npz)',
                       description='Build the observation of every recorded command with the '
                       'task spec and write a dataset. Reads our bags and those of `ros2 bag '
                       'record` (MCAP or sqlite3). Reports what it kept and dropped.')
    p.add_argument('bag', help='bag folder, .mcap or .db3 file')
    p.add_argument('--task', required=True, help='task name or spec YAML path')
    p.add_argument('-o', '--output', required=True, help='dataset .npz to write')
    p.add_argument('--action-topic', default=None,
                   help="topic whose messages are the labels (default: the task's command "
                   'topic; expert/action for expert labels)')
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser('train', help='train a policy from a dataset',
                       description='Train with PyTorch and write a checkpoint '
                       '(safetensors + manifest.json), TensorBoard logs, metrics.csv and '
                       'curves.png: behavior cloning from a dataset, or reinforcement '
                       'learning on a task.')
    algos = p.add_subparsers(dest='algorithm', required=True, metavar='ALGORITHM')
    b = algos.add_parser('bc', help='behavior cloning',
                         description='Behavior cloning (Gaussian maximum likelihood or '
                         'deterministic regression) with observation/action normalisation.')
    b.add_argument('--data', required=True, help='dataset .npz from `ilrl convert`')
    b.add_argument('-o', '--output', required=True, help='checkpoint folder to write')
    b.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
    b.add_argument('--head', choices=('gaussian', 'deterministic'), default=None,
                   help='policy head (default: gaussian)')
    b.add_argument('--steps', type=int, default=None, help='gradient steps (default: 4000)')
    b.add_argument('--batch-size', type=int, default=None, help='batch size (default: 256)')
    b.add_argument('--lr', type=float, default=None, help='learning rate (default: 1e-3)')
    b.add_argument('--hidden', default=None, help='hidden widths, e.g. 256,256')
    b.add_argument('--seed', type=int, default=None, help='seed (default: 0)')
    b.set_defaults(func=cmd_train)
    from ilrl_ros.core.training import ALGORITHMS
    about = {'reinforce': 'REINFORCE with reward-to-go and a baseline (Williams 1992)',
             'a2c': 'advantage actor-critic with GAE', 'ppo': 'PPO (Schulman et al. 2017)',
             'dqn': 'DQN (Mnih et al. 2015); continuous tasks get discretised actions',
             'ddpg': 'DDPG (Lillicrap et al. 2015)', 'td3': 'TD3 (Fujimoto et al. 2018)',
             'sac': 'SAC with automatic entropy tuning (Haarnoja et al. 2018)',
             'mbrl': 'learned dynamics ensemble + CEM model-predictive control',
             'lqr': 'LQR on the linearised pendulum (no training)'}
    for name in ALGORITHMS:
        r = algos.add_parser(name, help=about[name], description=about[name] + '. Trains '
                             'on a task (writes a checkpoint the policy node runs) or a '
                             'gymnasium env, then evaluates the deterministic policy.')
        where = r.add_mutually_exclusive_group(required=True)
        where.add_argument('--task', help='our task (pendulum, track_follow, or a spec YAML)')
        where.add_argument('--env', help='a gymnasium env id, e.g. CartPole-v1 (no checkpoint)')
        r.add_argument('-o', '--output', default=None, help='checkpoint folder to write')
        r.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
        r.add_argument('--steps', type=int, default=None,
                       help='environment steps (default: the preset for the env/task)')
        r.add_argument('--seed', type=int, default=0, help='seed (default: 0)')
        r.add_argument('--eval-episodes', type=int, default=10,
                       help='evaluation episodes after training (default: %(default)s)')
        r.set_defaults(func=cmd_train_rl)

    p = sub.add_parser('evaluate', help='run a checkpoint in the simulator (no ROS)',
                       description="Roll a checkpoint out in its task's simulator and print "
                       'per-episode results and a summary row.')
    p.add_argument('--checkpoint', required=True, help='checkpoint folder')
    p.add_argument('--task', default=None, help='task to check it against (default: its own)')
    p.add_argument('--episodes', type=int, default=10, help='episodes (default: %(default)s)')
    p.add_argument('--seed', type=int, default=1000, help='first start seed')
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser('info', help='describe a checkpoint or a bag')
    p.add_argument('path', help='checkpoint folder, bag folder, .mcap or .db3')
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as error:
        # Our errors are sentences meant for the user: print them, not a traceback.
        print(f'ilrl {args.command}: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
