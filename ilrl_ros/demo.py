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
import signal
import subprocess
import sys
import time

from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.cli import format_table, summarize, train_bc
from ilrl_ros.convert import bag_to_dataset
from ilrl_ros.core.spec import load_spec


class DemoError(RuntimeError):
    """A step of the demo failed; the message says which and why."""


class Operator:
    """A ROS 2 client node driving the graph through its services and parameters."""

    def __init__(self, context):
        self.node = rclpy.create_node('ilrl_demo', context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.results = []
        self.node.create_subscription(String, 'episode/result', self._on_result, qos.EVENTS)

    def _on_result(self, msg: String) -> None:
        self.results.append(json.loads(msg.data))

    def spin_until(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise DemoError(f'timed out after {timeout_s:.0f} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.1)

    def call(self, service_type, name: str, request, timeout_s: float = 30.0):
        client = self.node.create_client(service_type, name)
        try:
            self.spin_until(client.service_is_ready, timeout_s, f'service {name}')
            future = client.call_async(request)
            self.spin_until(future.done, timeout_s, f'the answer of {name}')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def trigger(self, name: str) -> str:
        response = self.call(Trigger, name, Trigger.Request())
        if not response.success:
            raise DemoError(f'{name} refused: {response.message}')
        return response.message

    def set_parameter(self, node: str, name: str, value) -> None:
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg()]
        response = self.call(SetParameters, f'{node}/set_parameters', request)
        result = response.results[0]
        if not result.successful:
            raise DemoError(f'{node} refused {name}={value!r}: {result.reason}')

    def wait_episodes(self, count: int, label: str, timeout_s: float) -> list:
        start = len(self.results)

        def finished():
            return [r for r in self.results[start:] if r['outcome'] != 'aborted']

        shown = 0
        deadline = time.monotonic() + timeout_s
        while len(finished()) < count:
            if time.monotonic() > deadline:
                raise DemoError(f'timed out waiting for {label} episode {len(finished()) + 1}')
            self.executor.spin_once(timeout_sec=0.1)
            for result in finished()[shown:]:
                shown += 1
                print(f'    {label} episode {shown}/{count}: {result["outcome"]}, return '
                      f'{result["return"]:.1f}, {result["duration_s"]:.1f} s', flush=True)
        return finished()[:count]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _start_graph(out: Path, task: str, seed: int) -> subprocess.Popen:
    command = [sys.executable, '-m', 'ilrl_ros.cli', 'sim', '--task', task, '--record',
               '--record-no-autostart', '--bag-dir', str(out / 'bags'), '--bag-name',
               'demonstrations', '--seed', str(seed)]
    log = open(out / 'graph.log', 'w')
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ), start_new_session=True)


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
    operator = Operator(context)
    try:
        bag = operator.trigger('demo_recorder/start')
        print(f'[2/6] recording to {bag}; the expert drives {demo_episodes} episodes',
              flush=True)
        operator.set_parameter('expert', 'drive', True)
        operator.trigger('episode_manager/restart')
        expert_results = operator.wait_episodes(demo_episodes, 'expert',
                                                episode_timeout * demo_episodes)
        operator.set_parameter('expert', 'drive', False)
        stopped = operator.trigger('demo_recorder/stop')
        print(f'    recorder: {stopped}', flush=True)

        print('[3/6] converting the bag to a dataset', flush=True)
        data, report = bag_to_dataset(bag, spec)
        dataset = data.save(out / 'dataset.npz')
        print('    ' + report.summary().replace('\n', '\n    '), flush=True)

        print(f'[4/6] training behavior cloning ({bc_steps} steps) on {len(data)} samples',
              flush=True)
        checkpoint, result = train_bc(dataset, out / 'checkpoints' / 'bc',
                                      out / 'logs' / 'bc', steps=bc_steps, seed=seed)
        print(f'    checkpoint {checkpoint}: train loss {result.train_loss:.3f}, '
              f'{result.seconds:.1f} s; curves in {out / "logs" / "bc" / "curves.png"}',
              flush=True)

        print('[5/6] swapping the checkpoint into the running policy node', flush=True)
        operator.set_parameter('policy', 'checkpoint', str(checkpoint.resolve()))
        operator.trigger('episode_manager/restart')
        print(f'[6/6] evaluating the policy for {eval_episodes} episodes', flush=True)
        policy_results = operator.wait_episodes(eval_episodes, 'bc',
                                                episode_timeout * eval_episodes)
    finally:
        operator.close()
        rclpy.try_shutdown(context=context)
        if graph.poll() is None:
            os.killpg(graph.pid, signal.SIGINT)
            try:
                graph.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(graph.pid, signal.SIGKILL)
                graph.wait()

    rows = [summarize('expert (demonstrations)', expert_results),
            summarize('bc', policy_results)]
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
