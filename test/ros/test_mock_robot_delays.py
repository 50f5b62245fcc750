"""The mock robot's delays: commands take effect late, sensors arrive late with capture stamps."""

import json
import threading

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from ilrl_ros import qos
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env
from ilrl_ros.messages import action_message, action_message_class, stamp_to_ns
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_testing import ros_context, wait_for

SPEC = load_spec('pendulum')
DT = SPEC.dt
DT_NS = int(round(DT * 1e9))


class Driver(Node):
    """Answers every new pendulum observation with the next command of a script.

    ``script(n)`` gives the command for the n-th new observation (None: send nothing). It
    records each observation (arrival time, stamp, position, effort) and each /clock.
    """

    def __init__(self, context, script):
        super().__init__('driver', context=context)
        self.script = script
        self.lock = threading.Lock()
        self.states, self.clocks, self.sent, self.status = [], [], [], {}
        self._stamps = set()
        self.pub = self.create_publisher(action_message_class(SPEC.action), SPEC.action.topic,
                                         qos.COMMAND)
        # /clock first: of two messages ready at once, the executor takes it first.
        self.create_subscription(Clock, '/clock', self._on_clock, qos.SENSOR_EVERY)
        self.create_subscription(JointState, 'joint_states', self._on_state, qos.SENSOR_EVERY)
        self.create_subscription(String, 'mock_robot/status',
                                 lambda m: self.status.update(json.loads(m.data)), qos.LATCHED)

    def _on_clock(self, msg) -> None:
        with self.lock:
            self.clocks.append(stamp_to_ns(msg.clock))

    def _on_state(self, msg) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        # Nothing counts until the robot hears our commands: a lock-step robot repeats its
        # observation until one comes.
        if stamp in self._stamps or self.pub.get_subscription_count() == 0:
            return
        with self.lock:
            self._stamps.add(stamp)
            clock = self.clocks[-1] if self.clocks else None
            self.states.append({'stamp': stamp, 'position': msg.position[0],
                                'effort': msg.effort[0], 'clock': clock})
            command = self.script(len(self.states) - 1)
            if command is not None:
                self.sent.append((clock, command))
        if command is not None:
            self.pub.publish(action_message(SPEC.action, np.array([command])))


def _run(params, script, until, what: str, timeout_s: float = 15.0):
    context = ros_context()
    robot = MockRobot(context=context, parameter_overrides=[
        Parameter('task', value='pendulum'), *[Parameter(k, value=v) for k, v in params.items()]])
    driver = Driver(context, script)
    spinner = Spinner([robot, driver], context=context).start()
    try:
        wait_for(lambda: until(driver), timeout_s, what)
        with driver.lock:
            return robot, driver, list(driver.states), list(driver.sent)
    finally:
        spinner.shutdown()
        for node in (robot, driver):
            node.destroy_node()
        context.try_shutdown()


def _in_process_positions(torques, delay_steps: int, seed: int):
    env = make_env(SPEC, action_delay_steps=delay_steps)
    env.reset(seed=seed)
    readings = [env.current_readings()['joint_states']]
    for torque in torques:
        env.step(np.array([torque]))
        readings.append(env.current_readings()['joint_states'])
    return (np.array([r.position[0] for r in readings]),
            np.array([r.effort[0] for r in readings]))


@pytest.mark.parametrize('action_periods, observation_periods', [(2, 0), (0, 2), (1, 1)])
def test_a_lock_step_robot_applies_each_command_exactly_two_periods_late(action_periods,
                                                                         observation_periods):
    # Two periods from command to effect, or from measurement to publication, or one each:
    # seen from the policy, the same loop as the in-process env with DelayedActions(2).
    steps, seed = 25, 11
    torques = np.round(np.random.default_rng(3).uniform(-2.0, 2.0, steps), 3)
    robot, _, states, _ = _run(
        {'mode': 'lock_step', 'clock': 'sim', 'seed': seed, 'lock_step_timeout_s': 0.2,
         'action_delay_s': action_periods * DT,
         'observation_delay_s': observation_periods * DT},
        lambda n: float(torques[n]) if n < steps else None,
        lambda d: len(d.states) > steps, f'{steps} lock-step steps')
    assert robot.action_delay_steps == action_periods
    assert robot.observation_delay_steps == observation_periods
    states = states[:steps + 1]
    # An observation is stamped when measured; the robot's /clock is ahead by the delay.
    lags = [s['clock'] - s['stamp'] for s in states if s['clock'] is not None]
    assert np.median(lags) == observation_periods * DT_NS
    stamps = [s['stamp'] for s in states]
    assert np.all(np.diff(stamps) == DT_NS), 'one observation per step, none skipped'
    positions = np.array([s['position'] for s in states])
    efforts = np.array([s['effort'] for s in states])
    expected, expected_efforts = _in_process_positions(torques, 2, seed)
    np.testing.assert_array_equal(positions, expected)
    # The effort a step reports is the torque it applied: zeros, then the script 2 late.
    np.testing.assert_array_equal(efforts, [0.0, 0.0, 0.0, *torques[:steps - 2]])
    for other in (1, 3):
        assert not np.array_equal(positions, _in_process_positions(torques, other, seed)[0])


def test_a_free_running_robot_delays_its_sensors_and_commands_in_simulated_time():
    obs_delay, act_delay = 3 * DT, 2 * DT
    start = 20  # observations before the first non-zero command

    robot, driver, states, sent = _run(
        {'mode': 'free_run', 'clock': 'sim', 'real_time_factor': 2.0,
         'observation_delay_s': obs_delay, 'action_delay_s': act_delay},
        lambda n: 0.0 if n < start else 1.5,
        lambda d: len(d.states) > start + 20 and d.status.get('steps', 0) > 0,
        'observations, commands and a status')
    # Each reading is stamped when it was measured, and published the delay later: the
    # newest /clock when it arrives is that much ahead (one step less if the /clock of the
    # same step is still on its way, more if this test falls behind on a busy machine).
    lags = np.array([(s['clock'] - s['stamp']) / 1e9 for s in states if s['clock']])
    assert len(lags) > 20
    assert abs(np.median(lags) - obs_delay) <= DT + 1e-9, lags
    assert np.percentile(lags, 10) >= obs_delay - DT - 1e-9, lags
    # A command takes effect the action delay after it arrives: the first step to report the
    # torque ends one period after that.
    clock_at_send = next(clock for clock, command in sent if command == 1.5)
    first = next(s for s in states if s['effort'] == 1.5)
    latency = (first['stamp'] - clock_at_send) / 1e9
    assert act_delay + DT - 1e-9 <= latency <= act_delay + 10 * DT, latency
    counts = robot.timing_counts()
    # Counted from the first command on; the steps before it had nothing to wait for.
    assert counts['steps'] >= counts['commands_on_time'] + counts['commands_missing']
    assert counts['commands_on_time'] > 0 and counts['steps'] > len(states)
    assert {'steps', 'commands_on_time', 'commands_missing'} <= set(driver.status)


def test_jitter_spreads_the_delays_without_reordering_a_topic():
    delay, jitter = 2 * DT, 2 * DT
    _, _, states, _ = _run(
        {'mode': 'free_run', 'clock': 'sim', 'real_time_factor': 4.0, 'seed': 3,
         'observation_delay_s': delay, 'delay_jitter_s': jitter},
        lambda n: None, lambda d: len(d.states) > 60, '60 observations')
    stamps = [s['stamp'] for s in states]
    assert stamps == sorted(stamps)
    lags = np.array([(s['clock'] - s['stamp']) / 1e9 for s in states if s['clock']])
    assert np.percentile(lags, 10) >= delay - DT - 1e-9, lags
    assert delay <= np.median(lags) <= delay + jitter + DT + 1e-9, lags
    # Served at the physics steps: one or two periods past the delay, as the draws fall.
    assert len(set(np.round(lags, 6))) >= 2, 'the delays vary'
