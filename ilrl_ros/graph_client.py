"""A ROS 2 client that drives a running ilrl_ros graph, as an operator at a terminal would.

``ilrl demo`` and ``ilrl dagger`` use it against a graph started by ``ros2 launch`` or by
``ilrl sim`` (``start_graph`` runs the latter as a child process): it calls the recorder's
and the episode manager's Trigger services, sets node parameters through their
``set_parameters`` services, follows ``episode/result`` and the policy node's latched
``policy/status``, and spins only while it waits, in the calling thread.
"""

import json
import os
from pathlib import Path
import re
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


class OperatorError(RuntimeError):
    """A step against the running graph failed; the message says which and why."""


class Operator:
    """A ROS 2 client node driving the graph through its services and parameters."""

    def __init__(self, context, name: str = 'ilrl_operator',
                 policy_status_topic: str = 'policy/status', namespace: str = None):
        # In a robot's namespace (a fleet's robot_2), its relative names are that robot's.
        self.node = rclpy.create_node(name, context=context, namespace=namespace)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.results = []
        self.policy_status = None
        self.node.create_subscription(String, 'episode/result', self._on_result, qos.EVENTS)
        self.node.create_subscription(String, policy_status_topic, self._on_policy_status,
                                      qos.LATCHED)

    def _on_result(self, msg: String) -> None:
        self.results.append(json.loads(msg.data))

    def _on_policy_status(self, msg: String) -> None:
        self.policy_status = json.loads(msg.data)

    def spin_until(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise OperatorError(f'timed out after {timeout_s:.0f} s waiting for {what}')
            self.executor.spin_once(timeout_sec=0.1)

    def spin_for(self, seconds: float) -> None:
        """Process what arrives for ``seconds`` (e.g. to let a latched status come in)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.05, max(deadline - time.monotonic(), 0)))

    def call(self, service_type, name: str, request, timeout_s: float = 30.0):
        client = self.node.create_client(service_type, name)
        try:
            self.spin_until(client.service_is_ready, timeout_s, f'service {name}')
            future = client.call_async(request)
            self.spin_until(future.done, timeout_s, f'the answer of {name}')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def trigger(self, name: str, retry_s: float = 0.0) -> str:
        """Call a Trigger service; return its message, or raise with its refusal.

        A refusal is retried for up to ``retry_s`` seconds (e.g. the episode manager's
        restart while a reset is under way).
        """
        deadline = time.monotonic() + retry_s
        while True:
            response = self.call(Trigger, name, Trigger.Request())
            if response.success:
                return response.message
            if time.monotonic() > deadline:
                raise OperatorError(f'{name} refused: {response.message}')
            self.spin_for(0.1)

    def set_parameter(self, node: str, name: str, value) -> None:
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg()]
        response = self.call(SetParameters, f'{node}/set_parameters', request)
        result = response.results[0]
        if not result.successful:
            raise OperatorError(f'{node} refused {name}={value!r}: {result.reason}')

    def restart_episode(self, manager: str = 'episode_manager') -> int:
        """Abort the running episode and reset; return the number of the last episode begun.

        That is the aborted episode, or, when none was running, the last that ran (the
        manager's answer names it first). Results of episodes numbered above it are of
        episodes started after this call.
        """
        # A reset under way (the graph's start-up reset, a slow driven one) is waited out.
        message = self.trigger(f'{manager}/restart', retry_s=30.0)
        found = re.search(r'episode (\d+)', message)
        if found is None:
            raise OperatorError(f'{manager}/restart answered {message!r}; expected '
                                "'episode <n> aborted; resetting' or 'episode <n> was the "
                                "last to run; ...'")
        return int(found.group(1))

    def wait_episodes(self, count: int, label: str, timeout_s: float,
                      after_episode: int = None) -> list:
        """Wait for ``count`` finished (not aborted) episodes; print each as it ends.

        With ``after_episode``, only episodes numbered above it count (see
        ``restart_episode``); otherwise those that end after this call.
        """
        start = len(self.results)

        def finished():
            fresh = (self.results[start:] if after_episode is None
                     else [r for r in self.results if r['episode'] > after_episode])
            return [r for r in fresh if r['outcome'] != 'aborted']

        shown = 0
        deadline = time.monotonic() + timeout_s
        while len(finished()) < count:
            if time.monotonic() > deadline:
                raise OperatorError(f'timed out after {timeout_s:.0f} s waiting for {label} '
                                    f'episode {len(finished()) + 1}')
            self.executor.spin_once(timeout_sec=0.1)
            for result in finished()[shown:count]:
                shown += 1
                print(f'    {label} episode {shown}/{count}: {result["outcome"]}, return '
                      f'{result["return"]:.1f}, {result["duration_s"]:.1f} s', flush=True)
        return finished()[:count]

    def wait_recorder_matched(self, recorder: str = 'demo_recorder', expect=(),
                              timeout_s: float = 15.0) -> dict:
        """Wait until the recorder has matched every publisher of the topics it records.

        A recorder subscribes when it starts; messages published before its subscription
        matches a publisher are not in the bag. This waits (bounded) until its status lists,
        for every recorded topic, at least the publishers this node sees, no topic that has
        a publisher is still waiting, and each topic of ``expect`` (e.g. a teleoperator's
        label topic) has a publisher and is matched. Returns the last status; on timeout it
        prints which topics lag and goes on (a person may start publishing later).
        """
        latest = {}
        subscription = self.node.create_subscription(
            String, f'{recorder}/status', lambda msg: latest.update(json.loads(msg.data)),
            qos.LATCHED)

        def lagging() -> list:
            if not latest.get('recording'):
                return [f'{recorder}/status (recording)']
            matched = latest.get('matched', {})
            waiting = set(latest.get('waiting_for', ()))
            out = [self.node.resolve_topic_name(t) for t in expect
                   if not self.node.count_publishers(t)]
            for topic in waiting | set(matched):
                seen = self.node.count_publishers(topic)
                if seen and (topic in waiting or matched[topic] < seen):
                    out.append(topic)
            expected = {self.node.resolve_topic_name(t) for t in expect}
            return out + sorted(t for t in expected if t not in matched and t not in out)

        try:
            self.spin_until(lambda: not lagging(), timeout_s, 'the recorder')
        except OperatorError:
            print(f'    the recorder has not matched {", ".join(lagging())} after '
                  f'{timeout_s:.0f} s; recording goes on without waiting', flush=True)
        finally:
            self.node.destroy_subscription(subscription)
        return latest

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def start_graph(arguments: list, log_path: Path) -> subprocess.Popen:
    """Start ``ilrl sim <arguments>`` (the node graph) as a child process logging to a file."""
    command = [sys.executable, '-m', 'ilrl_ros.cli', 'sim', *arguments]
    log = open(log_path, 'w')
    try:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ), start_new_session=True)
    finally:
        log.close()


def stop_graph(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop a graph started by ``start_graph``: SIGINT, then SIGKILL if it hangs."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
