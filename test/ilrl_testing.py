"""Helpers shared by the ROS 2 tests: probes on real topics, and checkpoints with known outputs."""

import json
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from std_msgs.msg import String
import torch

from ilrl_ros import qos
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.networks import MLPPolicy
from ilrl_ros.core.spec import load_spec
from ilrl_ros.messages import action_from_message, action_message_class

REPO = Path(__file__).resolve().parent.parent


def wait_for(condition, timeout_s: float, what: str, period_s: float = 0.02):
    """Poll ``condition`` until it is truthy; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout_s} s waiting for {what}')
        time.sleep(period_s)


def constant_checkpoint(path, task: str, value, algorithm: str = 'test-constant') -> Path:
    """A real checkpoint whose policy always outputs ``value`` (easy to recognise on a topic)."""
    spec = load_spec(task)
    policy = MLPPolicy(spec.observation.size, spec.action.size, hidden=(16,), head='gaussian')
    with torch.no_grad():
        policy.mean_head.weight.zero_()
        policy.mean_head.bias.zero_()
        policy.act_mean.copy_(torch.full((spec.action.size,), float(value)))
    return save_checkpoint(path, policy, algorithm=algorithm, spec=spec, config={},
                           provenance={'made_by': 'test'})


class Probe(Node):
    """Records commands on the task's action topic and episode results, with arrival times."""

    def __init__(self, task: str, context, name: str = 'probe'):
        super().__init__(name, context=context)
        self.spec = load_spec(task)
        self.commands = []
        self.results = []
        self.create_subscription(action_message_class(self.spec.action), self.spec.action.topic,
                                 self._on_command, qos.COMMAND)
        self.create_subscription(String, 'episode/result', self._on_result, qos.EVENTS)
        self.events = []
        self.create_subscription(String, 'episode/event',
                                 lambda m: self.events.append(json.loads(m.data)), qos.EVENTS)

    def _on_command(self, msg) -> None:
        self.commands.append((time.monotonic(), action_from_message(self.spec.action, msg)))

    def _on_result(self, msg) -> None:
        self.results.append(json.loads(msg.data))

    def values_since(self, t0: float) -> np.ndarray:
        return np.array([v for t, v in list(self.commands) if t >= t0])


def node_process(node: str, *params: str, log=None, remaps=()) -> subprocess.Popen:
    """Start an ilrl_ros node as its own process, as ``ros2 run`` would."""
    command = [sys.executable, '-m', 'ilrl_ros.nodes.start', node, '--ros-args']
    for param in params:
        command += ['-p', param]
    for remap in remaps:
        command += ['-r', remap]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log or subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process: subprocess.Popen, sig=None) -> None:
    import signal
    if process.poll() is None:
        os.killpg(process.pid, sig or signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    return context


def small_spec_raw():
    """track_follow with a 4-bin scan, so a scan of 8 rays fills every sector (bag tests)."""
    import copy
    raw = copy.deepcopy(load_spec('track_follow').raw)
    raw['observation']['fields'][0]['bins'] = 4
    raw['observation']['sync_tolerance_s'] = 0.0
    raw['observation']['max_age_s'] = 0.5
    return raw


def stamp(ns: int):
    """A builtin_interfaces/Time of ``ns`` nanoseconds."""
    from builtin_interfaces.msg import Time
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
