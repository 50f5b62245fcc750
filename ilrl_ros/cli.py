"""The ``ilrl`` command: record, convert, train, evaluate, run the graph, and the demo.

Examples::

    ilrl demo                                   # the whole story on track_follow
    ilrl sim --task track_follow --expert-drive --record --bag-dir bags
    ilrl convert bags/demo_20261127T101500 --task track_follow -o data/demos.npz
    ilrl train bc --data data/demos.npz -o checkpoints/bc --log-dir runs/bc
    ilrl evaluate --checkpoint checkpoints/bc --episodes 10
    ilrl info checkpoints/bc
    ilrl collect --task track_follow --episodes 3 --noise-std 0.05,1.0 -o data/dart.npz
    ilrl train awr --data data/mixed.npz -o checkpoints/awr --log-dir runs/awr
    ilrl export --data data/demos.npz --minari-id ilrl/track_follow-expert-v0 --root minari
    ilrl import --minari-id ilrl/track_follow-expert-v0 --root minari -o data/back.npz

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
import textwrap


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
    from ilrl_ros.graph import config_from_flags, Graph
    config = config_from_flags(args)
    from ilrl_ros.nodes.common import StopSignals
    # SIGINT and SIGTERM alike: the nodes command zero and the recorder finishes its bag.
    signals = StopSignals()
    graph = Graph(config).start()
    manager = graph.nodes['episode_manager']
    try:
        signals.wait(alive=lambda: not (config.max_episodes
                                        and len(manager.results) >= config.max_episodes
                                        and manager.state != 'running'))
    finally:
        graph.close()
        signals.ignore_further()
    for result in manager.results:
        print(json.dumps(result.as_dict()))
    return 0


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


def train_weighted(algorithm, data_path, output, log_dir=None, bc_overrides=None,
                   overrides=None):
    """Train RWR or AWR (weighted behavior cloning) from a dataset file; save the checkpoint."""
    import importlib
    from ilrl_ros.core.algorithms.bc import BCConfig
    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.data import Demonstrations
    from ilrl_ros.core.train_log import TrainingLog
    module = importlib.import_module(f'ilrl_ros.core.algorithms.{algorithm}')
    config_class = getattr(module, f'{algorithm.upper()}Config')
    data = Demonstrations.load(data_path)
    bc = BCConfig(**{k: v for k, v in (bc_overrides or {}).items() if v is not None})
    config = config_class(bc=bc, **{k: v for k, v in (overrides or {}).items()
                                    if v is not None})
    log = TrainingLog(log_dir)
    result = module.train(data, config, log, progress=_progress(algorithm))
    log.close()
    path = save_checkpoint(output, result.policy, algorithm=algorithm, spec=data.spec,
                           config=result.config,
                           provenance={'dataset': str(data_path), 'rows': len(data),
                                       'episodes': data.num_episodes,
                                       'train_loss': result.train_loss,
                                       'val_loss': result.val_loss,
                                       'effective_sample_size': result.effective_sample_size,
                                       'seconds': result.seconds})
    return path, result


def cmd_train_weighted(args) -> int:
    hidden = tuple(int(h) for h in args.hidden.split(',')) if args.hidden else None
    extra = {'beta': args.beta, 'gamma': args.gamma}
    if args.algorithm == 'awr':
        extra.update(w_max=args.w_max, lam=args.lam, returns=args.returns)
    path, result = train_weighted(
        args.algorithm, args.data, args.output, args.log_dir,
        dict(head=args.head, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
             hidden=hidden, seed=args.seed), extra)
    w = result.weights
    print(f'{args.algorithm}: weights {w.min():.3g}..{w.max():.3g}, effective sample size '
          f'{result.effective_sample_size:.0f} of {len(w)} rows')
    print(f'wrote checkpoint {path} (train loss {result.train_loss:.4f}, validation loss '
          f'{result.val_loss:.4f}, {result.seconds:.1f} s)'
          + (f'; logs and curves.png in {args.log_dir}' if args.log_dir else ''))
    return 0


def cmd_collect(args) -> int:
    from ilrl_ros.core.rollouts import aggregate, rollout
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.tasks import make_env, make_expert
    spec = load_spec(args.task)
    if args.beta < 1.0 and not args.checkpoint:
        raise ValueError(f'--beta {args.beta} lets a learner drive some steps: give its '
                         f'--checkpoint')
    if args.dart:
        return _collect_dart(args, spec)
    learner = None
    if args.checkpoint:
        from ilrl_ros.core.checkpoint import load_checkpoint
        learner = load_checkpoint(args.checkpoint, expected_spec=spec)
    amount = {'steps': args.steps} if args.steps else {'episodes': args.episodes}
    print(f'collecting in the {spec.name} simulator (no ROS): '
          + (f'{args.steps} steps' if args.steps else f'{args.episodes} episodes')
          + (f', expert noise std {list(args.noise_std)}' if args.noise_std else '')
          + (f', beta {args.beta} with {args.checkpoint}' if args.checkpoint else ''),
          flush=True)
    result = rollout(make_env(spec), make_expert(spec), learner, beta=args.beta,
                     noise=list(args.noise_std) if args.noise_std else None, seed=args.seed,
                     max_episode_steps=args.max_episode_steps or None,
                     progress=_progress('collect'), **amount)
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


def _collect_dart(args, spec) -> int:
    import numpy as np
    from ilrl_ros.core.algorithms.bc import BCConfig
    from ilrl_ros.core.algorithms.dart import DARTConfig, run
    if args.checkpoint or args.steps or args.label != 'expert':
        raise ValueError('--dart collects whole expert episodes with clean labels; leave out '
                         '--checkpoint, --steps and --label')
    config = DARTConfig(rounds=args.rounds, episodes_per_round=args.episodes,
                        initial_noise=list(args.noise_std) if args.noise_std else None,
                        alpha=args.alpha, max_episode_steps=args.max_episode_steps,
                        bc=BCConfig(steps=args.bc_steps, seed=args.seed),
                        eval_episodes=args.eval_episodes, seed=args.seed)

    def progress(k, total, metrics):
        print(f'DART round {k}/{total}: noise trace {metrics["dart/noise_trace"]:.4g}, '
              f'dataset {metrics["dart/dataset_size"]:.0f}, eval success '
              f'{metrics["eval/success_rate"]:.0%}', flush=True)

    result = run(spec, config, progress=progress)
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


def _floats(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected numbers separated by commas, e.g. '
                                         f'0.02,0.3; got {text!r}') from None


def cmd_dagger(args) -> int:
    if args.sim:
        live_only = [name for name in ('graph', 'label_topic', 'label_tolerance', 'dart_noise',
                                       'episode_timeout') if getattr(args, name)]
        if live_only:
            raise ValueError(f'--{live_only[0].replace("_", "-")} is for live DAgger over ROS '
                             '2; leave it out with --sim')
        return _dagger_sim(args)
    from ilrl_ros.dagger_live import LiveDAggerConfig, run_live_dagger
    from ilrl_ros.graph_client import OperatorError
    config = LiveDAggerConfig(
        task=args.task, rounds=args.rounds, episodes_per_round=args.episodes_per_round,
        schedule=args.schedule, p=args.p, label_topic=args.label_topic or 'expert/action',
        label_tolerance_s=args.label_tolerance, expert_noise_std=args.dart_noise or (),
        bc_steps=args.bc_steps, eval_episodes=args.eval_episodes,
        episode_timeout_s=args.episode_timeout, out=args.out, seed=args.seed)
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
    from ilrl_ros.core.spec import load_spec
    spec = load_spec(args.task)
    config = DAggerConfig(rounds=args.rounds, episodes_per_round=args.episodes_per_round,
                          schedule=args.schedule, p=args.p, eval_episodes=args.eval_episodes,
                          seed=args.seed, bc=BCConfig(steps=args.bc_steps, seed=args.seed))

    def progress(i, total, metrics):
        print(f'round {i}/{total}: beta {metrics["dagger/beta"]:.3g}, dataset '
              f'{metrics["dagger/dataset_size"]:.0f}, eval success '
              f'{metrics["eval/success_rate"]:.0%}, return {metrics["eval/mean_return"]:.1f}',
              flush=True)

    print(f'DAgger in the {spec.name} simulator (no ROS): {args.rounds} rounds of '
          f'{args.episodes_per_round} episodes', flush=True)
    result = run(spec, config, progress=progress)
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
             'the simulator without ROS (per-step mixing, evaluation episodes each round).')
    p = sub.add_parser(
        'dagger', help='DAgger: the policy drives, the expert labels, retrain, swap, repeat',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='\n\n'.join(textwrap.fill(text, 90) for text in about) + '\n\n'
        'examples:\n'
        '  ilrl dagger --graph --task track_follow --rounds 4 --out dagger_out\n'
        '  ilrl dagger --graph --label-topic teleop/cmd_vel --label-tolerance 0.2\n'
        "  ilrl dagger --graph --dart-noise 0.05,0.5     # DART noise on the expert's drive\n"
        '  ilrl dagger --sim --task track_follow --rounds 5')
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
    p.add_argument('--dart-noise', type=_floats, default=None, metavar='STD[,STD...]',
                   help="DART: Gaussian noise on the expert's driven command, one std or one "
                   'per action field; the label stays clean')
    p.add_argument('--episode-timeout', type=float, default=None, metavar='SECONDS',
                   help="wall-clock wait per episode (default: 4 x the task's timeout + 60)")
    p.add_argument('--sim', action='store_true',
                   help='DAgger in the simulator, without ROS (ilrl_ros.core.algorithms.dagger)')
    p.set_defaults(func=cmd_dagger)

    p = sub.add_parser('sim', help='run the node graph in one process (no ros2 launch needed)',
                       description='Run mock_robot, observation, policy, reward_monitor, '
                       'episode_manager, expert (and demo_recorder) in one process, as '
                       'launch/sim.launch.py does in several. Ctrl-C stops it.')
    from ilrl_ros.graph import add_graph_flags
    add_graph_flags(p)
    p.set_defaults(func=cmd_sim)

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
                   help='the executed commands: one row per message, at its header stamp '
                   "(TwistStamped) or else its log time (default: the task's command topic); "
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

    minari_root = ('Minari datasets folder (default: $MINARI_DATASETS_PATH, else '
                   '~/.minari/datasets)')
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
    p.add_argument('--root', default=None, help=minari_root)
    p.add_argument('--author', default='ilrl_ros', help='author in the metadata')
    p.add_argument('--description', default='',
                   help='text put before the generated description')
    p.add_argument('--missing-rewards', choices=('error', 'zero'), default='error',
                   help='when only some rows lack a reward: refuse (default), or store 0 and '
                   'list those steps in the metadata')
    p.add_argument('--overwrite', action='store_true', help='replace a dataset of this id')
    p.set_defaults(func=cmd_export)

    p = sub.add_parser('import', help='Minari dataset -> dataset (.npz)',
                       description='Read a Minari dataset with flat Box observations and '
                       'actions into a dataset for `ilrl train bc`: one row per transition '
                       '(the final observation of each episode is not a row). Datasets from '
                       '`ilrl export` carry their task spec; others need --task naming a task '
                       'whose observation and action sizes match.')
    p.add_argument('--minari-id', required=True,
                   help='dataset id under --root, or the path of a dataset folder')
    p.add_argument('--root', default=None, help=minari_root)
    p.add_argument('--task', default=None,
                   help='task name or spec YAML (required for datasets not from ilrl export)')
    p.add_argument('-o', '--output', required=True, help='dataset .npz to write')
    p.set_defaults(func=cmd_import)

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
    weighted_about = {
        'rwr': ('reward-weighted regression (Peters & Schaal 2007)', 'Behavior cloning with '
                'each row weighted by exp(R_t / beta), R_t its discounted return-to-go in its '
                'episode (the largest return is subtracted before exp, which changes no '
                'relative weight).'),
        'awr': ('advantage-weighted regression (Peng et al. 2019)', 'A value network V(s) is '
                'fitted to TD(lambda) (or Monte Carlo) returns; each row is weighted by '
                'min(exp((R - V(s)) / beta), w_max) in behavior cloning.')}
    for name, (short, long) in weighted_about.items():
        w = algos.add_parser(
            name, help=short, formatter_class=argparse.RawDescriptionHelpFormatter,
            description=f'{short[0].upper()}{short[1:]}. {long} For demonstrations of mixed '
            "quality: the dataset needs rewards (record the reward monitor's topic 'reward' "
            'in the bag, or use `ilrl collect`). Writes a checkpoint the policy node runs.\n\n'
            f'example:\n  ilrl train {name} --data data/mixed.npz -o checkpoints/{name} '
            f'--log-dir runs/{name} --beta 2')
        w.add_argument('--data', required=True, help='dataset .npz with rewards')
        w.add_argument('-o', '--output', required=True, help='checkpoint folder to write')
        w.add_argument('--log-dir', default=None, help='TensorBoard/CSV/PNG log folder')
        w.add_argument('--beta', type=float, default=None,
                       help='temperature in units of return (default: 1.0)')
        w.add_argument('--gamma', type=float, default=None, help='discount (default: 0.99)')
        if name == 'awr':
            w.add_argument('--w-max', type=float, default=None,
                           help='weight clip (default: 20)')
            w.add_argument('--lam', type=float, default=None,
                           help='TD(lambda) lambda (default: 0.95)')
            w.add_argument('--returns', choices=('td_lambda', 'monte_carlo'), default=None,
                           help='value targets (default: td_lambda)')
        w.add_argument('--head', choices=('gaussian', 'deterministic'), default=None,
                       help='policy head (default: gaussian)')
        w.add_argument('--steps', type=int, default=None, help='gradient steps (default: 4000)')
        w.add_argument('--batch-size', type=int, default=None, help='batch size (default: 256)')
        w.add_argument('--lr', type=float, default=None, help='learning rate (default: 1e-3)')
        w.add_argument('--hidden', default=None, help='hidden widths, e.g. 256,256')
        w.add_argument('--seed', type=int, default=None, help='seed (default: 0)')
        w.set_defaults(func=cmd_train_weighted)
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
        "noise to its error covariance on the expert's states.\n\n"
        'examples:\n'
        '  ilrl collect --task track_follow --episodes 3 -o data/expert.npz\n'
        '  ilrl collect --task track_follow --episodes 3 --noise-std 0.05,1.0 --label '
        'executed --append -o data/expert.npz\n'
        '  ilrl collect --task track_follow --episodes 2 --dart --rounds 3 -o data/dart.npz')
    p.add_argument('--task', required=True, help='task name or spec YAML path')
    p.add_argument('--episodes', type=int, default=3,
                   help='episodes (per round with --dart) (default: %(default)s)')
    p.add_argument('--steps', type=int, default=0,
                   help='collect exactly this many steps instead of whole episodes')
    p.add_argument('--noise-std', type=_floats, default=None, metavar='STD[,STD...]',
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
    p.add_argument('--label', choices=('expert', 'executed'), default='expert',
                   help="row labels: the expert's clean action (default) or the executed one")
    p.add_argument('--append', action='store_true',
                   help='add to the dataset at --output if it exists (episodes kept apart)')
    p.add_argument('--max-episode-steps', type=int, default=0,
                   help="cut episodes after this many steps (default: the task's timeout)")
    p.add_argument('--seed', type=int, default=0, help='first start-state seed (default: 0)')
    p.add_argument('-o', '--output', required=True, help='dataset .npz to write')
    p.set_defaults(func=cmd_collect)

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
