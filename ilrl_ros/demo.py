"""The main job, end to end over ROS 2: demonstrate, record, convert, train, swap, evaluate.

The node graph runs in its own process (``ilrl sim``, as ``ros2 launch`` would start it);
this process is a ROS 2 client of it, like an operator at a terminal: it starts the
recorder by service, lets the expert drive by parameter, waits for episode results, trains
behavior cloning on the converted bag, swaps the checkpoint into the running policy node by
parameter, and waits for the evaluation episodes.
"""

import json
import os
from pathlib import Path
import time

import rclpy

from ilrl_ros.convert import bag_to_dataset
from ilrl_ros.core.imitation import train_from_file
from ilrl_ros.core.scoring import format_table, summarize
from ilrl_ros.core.spec import load_spec
from ilrl_ros.graph import GraphConfig, sim_argv
from ilrl_ros.graph_client import Operator, start_graph, stop_graph


def _start_graph(out: Path, task: str, seed: int):
    config = GraphConfig(task=task, record=True, record_autostart=False,
                         bag_dir=str(out / 'bags'), bag_name='demonstrations', seed=seed)
    return start_graph(sim_argv(config), out / 'graph.log')


def run_demo(out: Path, task: str = 'track_follow', demo_episodes: int = 4,
             eval_episodes: int = 5, bc_steps: int = 3000, seed: int = 0) -> int:
    """Run the demo; write results.md/results.json under ``out``; return an exit code."""
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    out.mkdir(parents=True, exist_ok=True)
    spec = load_spec(task)
    episode_timeout = spec.termination.timeout_s * 4 + 60
    started = time.monotonic()
    print(f'[1/6] starting the node graph for {task!r} (log: {out / "graph.log"})', flush=True)
    graph = _start_graph(out, task, seed)
    context = rclpy.Context()
    rclpy.init(context=context)
    operator = Operator(context, name='ilrl_demo')
    try:
        bag = operator.trigger('demo_recorder/start')
        print(f'[2/6] recording to {bag}; the expert drives {demo_episodes} episodes',
              flush=True)
        operator.set_parameter('expert', 'drive', True)
        # The graph may still be in its start-up reset: the restart waits for it, and only
        # episodes begun after it count.
        begun = operator.restart_episode()
        expert_results = operator.wait_episodes(demo_episodes, 'expert',
                                                episode_timeout * demo_episodes,
                                                after_episode=begun)
        operator.set_parameter('expert', 'drive', False)
        stopped = operator.trigger('demo_recorder/stop')
        print(f'    recorder: {stopped}', flush=True)

        print('[3/6] converting the bag to a dataset', flush=True)
        data, report = bag_to_dataset(bag, spec)
        dataset = data.save(out / 'dataset.npz')
        print('    ' + report.summary().replace('\n', '\n    '), flush=True)

        print(f'[4/6] training behavior cloning ({bc_steps} steps) on {len(data)} samples',
              flush=True)
        checkpoint, result = train_from_file(dataset, out / 'checkpoints' / 'bc',
                                             log_dir=out / 'logs' / 'bc',
                                             bc={'steps': bc_steps, 'seed': seed})
        print(f'    checkpoint {checkpoint}: train loss {result.train_loss:.3f}, '
              f'{result.seconds:.1f} s; curves in {out / "logs" / "bc" / "curves.png"}',
              flush=True)

        print('[5/6] swapping the checkpoint into the running policy node', flush=True)
        operator.set_parameter('policy', 'checkpoint', str(checkpoint.resolve()))
        begun = operator.restart_episode()
        print(f'[6/6] evaluating the policy for {eval_episodes} episodes', flush=True)
        policy_results = operator.wait_episodes(eval_episodes, 'bc',
                                                episode_timeout * eval_episodes,
                                                after_episode=begun)
    finally:
        operator.close()
        rclpy.try_shutdown(context=context)
        stop_graph(graph)

    rows = [summarize(expert_results, 'expert (demonstrations)'),
            summarize(policy_results, 'bc')]
    table = format_table(rows)
    text = (f'# ilrl demo: {task}\n\n{table}\n\n'
            f'Dataset: {len(data)} samples from {data.num_episodes} episodes '
            f'({report.bag}). Total time {time.monotonic() - started:.0f} s.\n')
    (out / 'results.md').write_text(text)
    (out / 'results.json').write_text(json.dumps(
        {'task': task, 'rows': rows, 'expert_episodes': expert_results,
         'policy_episodes': policy_results, 'dataset_rows': len(data),
         'checkpoint': str(checkpoint)}, indent=2))
    print('\n' + table)
    print(f'\nwrote {out / "results.md"} and {out / "results.json"}')
    return 0
