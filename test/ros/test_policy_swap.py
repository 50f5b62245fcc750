"""The policy node over real DDS: runtime checkpoint swaps and refusals under a 100 Hz loop.

The rig lives for the whole module; other modules' tests never run beside it.
"""

import time

import numpy as np
import pytest
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter

from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_testing import constant_checkpoint, node_process, Probe, ros_context, stop_process
from ilrl_testing import wait_for

RATE_HZ = 100.0
JITTER_MS = 5.0


class ParameterClient(Node):
    """Sets and reads the policy node's parameters through its services, as `ros2 param` does."""

    def __init__(self, context):
        super().__init__('param_client', context=context)
        self.set_client = self.create_client(SetParameters, 'policy/set_parameters')
        self.get_client = self.create_client(GetParameters, 'policy/get_parameters')

    def _call(self, client, request):
        wait_for(client.service_is_ready, 30, f'{client.srv_name}')
        future = client.call_async(request)
        return wait_for(lambda: future.result() if future.done() else None, 30,
                        f'answer of {client.srv_name}')

    def set_checkpoint(self, path) -> tuple:
        request = SetParameters.Request()
        request.parameters = [Parameter('checkpoint', value=str(path)).to_parameter_msg()]
        result = self._call(self.set_client, request).results[0]
        return result.successful, result.reason

    def checkpoint(self) -> str:
        response = self._call(self.get_client, GetParameters.Request(names=['checkpoint']))
        return response.values[0].string_value


@pytest.fixture(scope='module')
def swap_rig(tmp_path_factory):
    """A policy node process at 100 Hz (timer mode) on a free-running mock pendulum."""
    folder = tmp_path_factory.mktemp('checkpoints')
    plus = constant_checkpoint(folder / 'plus', 'pendulum', 1.0)
    minus = constant_checkpoint(folder / 'minus', 'pendulum', -1.0)
    context = ros_context()
    # The robot publishes joint states at 200 Hz (20 Hz physics x 10) on the wall clock.
    robot = MockRobot(context=context, parameter_overrides=[
        Parameter('task', value='pendulum'), Parameter('mode', value='free_run'),
        Parameter('clock', value='wall'), Parameter('real_time_factor', value=10.0)])
    probe = Probe('pendulum', context)
    client = ParameterClient(context)
    spinner = Spinner([robot, probe, client], context=context).start()
    log = open(folder / 'policy.log', 'w')
    process = node_process('policy', 'task:=pendulum', 'mode:=timer',
                           f'control_rate_hz:={RATE_HZ}', f'checkpoint:={plus}', log=log)
    try:
        wait_for(lambda: len(probe.values_since(0)) > 50, 60, 'the policy to command')
        yield {'plus': plus, 'minus': minus, 'probe': probe, 'client': client,
               'folder': folder, 'process': process}
    finally:
        stop_process(process)
        spinner.shutdown()
        context.try_shutdown()
        log.close()


def _gaps_ms(probe, t0, t1):
    times = np.array([t for t, _ in list(probe.commands) if t0 <= t <= t1])
    return np.diff(times) * 1e3, times


def test_runtime_swaps_under_a_100hz_loop_leave_no_gap_longer_than_two_periods(swap_rig):
    probe, client = swap_rig['probe'], swap_rig['client']
    t0 = time.monotonic()
    expected = []
    for i in range(6):
        target = swap_rig['minus'] if i % 2 == 0 else swap_rig['plus']
        ok, reason = client.set_checkpoint(target)
        assert ok, reason
        expected.append((time.monotonic(), -1.0 if i % 2 == 0 else 1.0))
        time.sleep(0.3)
    t1 = time.monotonic()
    gaps, times = _gaps_ms(probe, t0, t1)
    assert len(times) > 0.8 * RATE_HZ * (t1 - t0)
    # Two control periods at 100 Hz, plus the scheduling jitter of this test process, which
    # receives the commands while it also runs the 200 Hz mock robot: on the shared 2-core
    # machine a gap of 20.6 ms was seen once in about ten runs. A swap that stopped or
    # restarted the control loop shows as a gap of many periods.
    worst = int(np.argmax(gaps))
    swap_offsets = [round(times[worst] - when, 3) for when, _ in expected]
    assert gaps.max() <= 2 * 1000.0 / RATE_HZ + JITTER_MS, \
        f'largest gap {gaps.max():.1f} ms, starting {swap_offsets} s after each swap'
    # Each swap took effect: 0.2 s after each, the commands carry the new policy's value.
    for when, value in expected:
        after = probe.values_since(when + 0.2)
        assert len(after) and after[0][0] == pytest.approx(value)
    assert client.checkpoint() == str(swap_rig['plus'])


def test_bad_or_mismatched_checkpoints_are_refused_and_the_old_policy_keeps_commanding(
        swap_rig, tmp_path):
    probe, client = swap_rig['probe'], swap_rig['client']
    ok, reason = client.set_checkpoint(swap_rig['plus'])
    assert ok, reason
    track = constant_checkpoint(tmp_path / 'track', 'track_follow', 0.1)
    corrupt = constant_checkpoint(tmp_path / 'corrupt', 'pendulum', -1.0)
    weights = corrupt / 'weights.safetensors'
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF
    weights.write_bytes(bytes(data))
    not_json = constant_checkpoint(tmp_path / 'not_json', 'pendulum', -1.0)
    (not_json / 'manifest.json').write_text('{ this is not json')
    cases = [
        (track, 'does not fit the running task'),
        (corrupt, 'SHA-256'),
        (not_json, 'not valid JSON'),
        (tmp_path / 'missing', 'no such file'),
        (weights, 'expected a folder'),
    ]
    t0 = time.monotonic()
    for path, words in cases:
        ok, reason = client.set_checkpoint(path)
        assert not ok, path
        assert words in reason, reason
        assert str(path) in reason
    time.sleep(0.3)
    t1 = time.monotonic()
    gaps, times = _gaps_ms(probe, t0, t1)
    values = probe.values_since(t0)
    assert len(values) > 0.8 * RATE_HZ * (t1 - t0)
    assert np.all(values == 1.0), 'a refused checkpoint changed the commands'
    assert gaps.max() <= 2 * 1000.0 / RATE_HZ + JITTER_MS
    assert client.checkpoint() == str(swap_rig['plus'])


