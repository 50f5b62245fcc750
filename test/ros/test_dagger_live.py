"""DAgger over live ROS 2 against the mock robot, and the expert's DART noise.

One ``ilrl sim`` graph process (lock-step, sim clock, 3 s episodes) serves both DAgger runs;
the expected dataset growth of each round is counted from that round's bag here, with the
converter's rules written out independently.
"""

import json
import math
import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
import rclpy
from rclpy.node import Node

from ilrl_ros import qos
from ilrl_ros.bag import open_bag
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_expert
from ilrl_ros.dagger_live import (episode_drivers, format_rounds, graph_arguments, LiveDAgger,
                                  LiveDAggerConfig)
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.messages import action_from_message, action_message_class, reading_from_message
from ilrl_ros.messages import stamp_to_ns
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.expert import noise_std_factor
from ilrl_ros.graph_client import Operator, OperatorError
from ilrl_testing import Probe, REPO, ros_context, stop_process, wait_for

EPISODE_S = 3.0
HUMAN_LABEL = (0.123, 0.456)


@pytest.fixture(scope='module')
def short_task(tmp_path_factory):
    """track_follow with 3 s episodes (30 control steps), so that rounds are quick."""
    text = (REPO / 'config/tasks/track_follow.yaml').read_text()
    short = text.replace('  timeout_s: 150.0', f'  timeout_s: {EPISODE_S}')
    assert short != text
    path = tmp_path_factory.mktemp('task') / 'track_follow_short.yaml'
    path.write_text(short)
    return str(path)


@pytest.fixture(scope='module')
def graph(short_task, tmp_path_factory):
    """`ilrl sim` as `ilrl dagger --graph` starts it, also recording a teleop label topic."""
    folder = tmp_path_factory.mktemp('graph')
    config = LiveDAggerConfig(task=short_task, label_topic='teleop/cmd_vel', out=str(folder))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    log = open(folder / 'graph.log', 'w')
    process = subprocess.Popen(
        [sys.executable, '-m', 'ilrl_ros.cli', 'sim', *graph_arguments(config)], cwd=REPO,
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        stop_process(process)
        log.close()


def _run(config: LiveDAggerConfig, process):
    context = ros_context()
    operator = Operator(context, name='test_dagger')

    def alive():
        assert process.poll() is None, 'the graph process exited'
    try:
        return LiveDAgger(config, operator, alive).run()
    finally:
        operator.close()
        context.try_shutdown()


def _read(bag) -> dict:
    """Every message of a round's bag: (bag order, log time, header stamp or None, msg)."""
    out = {}
    with open_bag(bag) as reader:
        for order, message in enumerate(reader.messages()):
            msg = reader.deserialize(message)
            header = getattr(msg, 'header', None)
            stamp = stamp_to_ns(header.stamp) if header is not None else None
            out.setdefault(message.topic, []).append((order, message.log_time_ns, stamp, msg))
    return out


def _in_episode(bag_messages: dict):
    intervals, open_start = [], {}
    for _, _, _, msg in bag_messages['/episode/event']:
        event = json.loads(msg.data)
        if event['event'] == 'start':
            open_start[event['episode']] = event['stamp_ns']
        elif event['episode'] in open_start:
            intervals.append((open_start.pop(event['episode']), event['stamp_ns']))
    intervals += [(start, math.inf) for start in open_start.values()]
    return lambda stamp: any(start <= stamp < end for start, end in intervals)


def _observed(bag_messages: dict) -> set:
    """Stamps of complete observations: a scan and an odometry message of the same stamp."""
    return ({s for _, _, s, _ in bag_messages['/scan']}
            & {s for _, _, s, _ in bag_messages['/odom']})


def expected_expert_rows(bag) -> int:
    """Visited states with an executed command and an expert label of exactly their stamp."""
    m = _read(bag)
    commanded = {s for _, _, s, _ in m['/cmd_vel']}
    labelled = {s for _, _, s, _ in m['/expert/action']}
    in_episode = _in_episode(m)
    return len({s for s in commanded & labelled & _observed(m) if in_episode(s)})


def expected_teleop_rows(bag, tolerance_s: float) -> int:
    """Visited states whose command had a teleop label received at most tolerance before it."""
    m = _read(bag)
    observed, in_episode = _observed(m), _in_episode(m)
    timeline = sorted([(o, 'label', t) for o, t, _, _ in m['/teleop/cmd_vel']]
                      + [(o, 'command', t, s) for o, t, s, _ in m['/cmd_vel']])
    last_label, kept = None, set()
    for entry in timeline:
        if entry[1] == 'label':
            last_label = entry[2]
        elif (entry[3] in observed and last_label is not None
              and entry[2] - last_label <= tolerance_s * 1e9):
            kept.add(entry[3])
    return len({s for s in kept if in_episode(s)})


@pytest.mark.slow
def test_live_dagger_rounds_grow_the_dataset_by_the_labelled_states_and_swap_in_place(
        short_task, graph, tmp_path):
    spec = load_spec(short_task)
    context = ros_context()
    probe = Probe(short_task, context)
    spinner = Spinner([probe], context=context).start()
    config = LiveDAggerConfig(task=short_task, rounds=2, episodes_per_round=2, bc_steps=150,
                              eval_episodes=1, episode_timeout_s=60.0, out=str(tmp_path))
    try:
        result = _run(config, graph)
    finally:
        spinner.shutdown()
        context.try_shutdown()
    rows = result.rows
    assert [r['round'] for r in rows] == [0, 1]
    assert [(r['beta'], r['expert_episodes'], r['episodes']) for r in rows] == \
        [(1.0, 2, 2), (0.0, 0, 2)]

    # Each round adds exactly the labelled visited states its bag holds.
    total = 0
    for row in rows:
        expected = expected_expert_rows(row['bag'])
        assert row['new_labels'] == expected > EPISODE_S * spec.control_rate_hz
        total += expected
        assert row['dataset_size'] == total == len(Demonstrations.load(row['dataset']))
        assert Path(row['bag']).name == f'dagger_round_{row["round"]:03d}'
    # Round 1's labels are the expert's actions for the states the policy visited.
    messages = _read(rows[1]['bag'])
    labels = {s: action_from_message(spec.action, msg)
              for _, _, s, msg in messages['/expert/action']}
    executed = {s: action_from_message(spec.action, msg) for _, _, s, msg in messages['/cmd_vel']}
    data = Demonstrations.load(rows[1]['dataset'])
    new = slice(len(data) - rows[1]['new_labels'], len(data))
    for stamp, action in zip(data.stamp_ns[new], data.actions[new]):
        np.testing.assert_allclose(action, labels[int(stamp)], atol=1e-6)
    assert any(np.abs(executed[int(s)] - labels[int(s)]).max() > 1e-3 for s in data.stamp_ns[new])

    # Two swaps into one policy node whose counters never went back, and it kept commanding.
    swaps = [s['swaps'] for s in result.policy_status]
    assert swaps[-1] - swaps[0] == 2
    commands = [s['commands'] for s in result.policy_status]
    assert commands == sorted(commands) and commands[-1] > commands[-2]
    assert Path(result.policy_status[-1]['checkpoint']).resolve() == \
        Path(rows[-1]['checkpoint']).resolve()
    assert result.final['episodes'] == 1
    assert all(r['driver'] == 'policy' and r['policy'].endswith('dagger_round_001')
               for r in result.final['results'])
    assert graph.poll() is None, 'the graph process (every node) is still the one started'
    # The robot was never left without commands for long: no node stopped or restarted.
    times = np.array([t for t, _ in probe.commands])
    assert len(times) > 200 and np.diff(times).max() < 3.0
    table = (tmp_path / 'results.md').read_text()
    assert '| 1 | 0 | 2 (0) |' in table and 'final policy' in table
    saved = json.loads((tmp_path / 'results.json').read_text())
    assert [r['new_labels'] for r in saved['rounds']] == [r['new_labels'] for r in rows]


class Teleoperator(Node):
    """A human labelling by topic, only part of the time: Twist labels in alternate seconds."""

    def __init__(self, context):
        super().__init__('teleoperator', context=context)
        self.pub = self.create_publisher(Twist, 'teleop/cmd_vel', qos.COMMAND)
        # Best effort, as the robot publishes it, but deep: a busy test process drops none.
        self.create_subscription(Odometry, 'odom', self._on_odom, qos.SENSOR_EVERY)
        self.sent = 0

    def _on_odom(self, msg) -> None:
        if int(stamp_to_ns(msg.header.stamp) // 1_000_000_000) % 2 == 0:
            label = Twist()
            label.linear.x, label.angular.z = HUMAN_LABEL
            self.pub.publish(label)
            self.sent += 1


@pytest.mark.slow
def test_teleop_labels_only_states_labelled_within_tolerance(short_task, graph, tmp_path):
    context = ros_context()
    human = Teleoperator(context)
    spinner = Spinner([human], context=context).start()
    config = LiveDAggerConfig(task=short_task, rounds=2, episodes_per_round=1, bc_steps=100,
                              eval_episodes=0, label_topic='teleop/cmd_vel',
                              label_tolerance_s=0.15, episode_timeout_s=60.0,
                              out=str(tmp_path))
    try:
        result = _run(config, graph)
    finally:
        spinner.shutdown()
        context.try_shutdown()
    assert human.sent > 0
    for row in result.rows:
        expected = expected_teleop_rows(row['bag'], 0.15)
        all_states = expected_expert_rows(row['bag'])
        assert row['new_labels'] == expected
        # Part of the time labelled: some states kept, the rest dropped as unlabelled.
        assert 0 < expected < all_states
        assert any(reason.startswith('unlabelled state') for reason in row['dropped'])
    data = Demonstrations.load(result.rows[-1]['dataset'])
    assert len(data) == sum(r['new_labels'] for r in result.rows)
    np.testing.assert_allclose(data.actions, np.tile(HUMAN_LABEL, (len(data), 1)), atol=1e-6)


class LabelProbe(Node):
    """Pairs, by stamp, the expert's labels, the commands it drives with, and the odometry."""

    def __init__(self, spec, context):
        super().__init__('label_probe', context=context)
        self.spec = spec
        self.labels, self.commands, self.odom = {}, {}, {}
        message = action_message_class(spec.action)
        self.create_subscription(message, 'expert/action', self._store(self.labels),
                                 qos.COMMAND)
        self.create_subscription(message, spec.action.topic, self._store(self.commands),
                                 qos.COMMAND)
        # Best effort, as the robot publishes it, but deep: a busy test process drops none.
        self.create_subscription(Odometry, 'odom', self._on_odom, qos.SENSOR_EVERY)

    def _store(self, where):
        def callback(msg):
            where[stamp_to_ns(msg.header.stamp)] = action_from_message(self.spec.action, msg)
        return callback

    def _on_odom(self, msg) -> None:
        self.odom[stamp_to_ns(msg.header.stamp)] = reading_from_message('odometry', msg, 'odom')

    def pairs_after(self, stamp: int) -> list:
        return [(s, self.labels[s], self.commands[s]) for s in sorted(self.labels)
                if s > stamp and s in self.commands]


def test_dart_noise_perturbs_the_driven_command_and_the_label_stays_clean(short_task):
    spec = load_spec(short_task)
    std = np.array([0.05, 0.4])
    # A domain of its own: the DAgger tests' graph process may still be running.
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=101 + int(os.environ['ROS_DOMAIN_ID']) % 100)
    graph = Graph(GraphConfig(task=short_task, expert_drive=True, seed=5), context=context)
    probe = LabelProbe(spec, graph.context)
    graph.add_node(probe)
    operator = Operator(graph.context, name='test_noise')
    try:
        with graph:
            operator.set_parameter('expert', 'noise_std', std.tolist())
            # Steps already under way when the parameter changed are left out.
            time.sleep(0.5)
            start = max(probe.labels, default=0)
            wait_for(lambda: len(probe.pairs_after(start)) >= 300, 60, '300 noisy expert steps')
            noisy = probe.pairs_after(start)
            for bad, words in [([0.1], '2 numbers'), (-0.1, '>= 0'), ('loud', '2 numbers')]:
                with pytest.raises(OperatorError, match=words):
                    operator.set_parameter('expert', 'noise_std', bad)
            operator.set_parameter('expert', 'noise_std', 0.0)
            time.sleep(0.5)
            start = max(probe.labels)
            wait_for(lambda: len(probe.pairs_after(start)) >= 20, 60, '20 clean expert steps')
            clean = probe.pairs_after(start)
            odom = dict(probe.odom)
            operator.close()
    finally:
        context.try_shutdown()
    expert = make_expert(spec)
    labels = np.array([label for _, label, _ in noisy])
    commands = np.array([command for _, _, command in noisy])
    # The labels are the expert's clean action for the state (recomputed from its odometry).
    # (Odometry is best effort: a state whose message the probe lost is skipped, not failed.)
    checked = [(stamp, label) for stamp, label, _ in noisy[::10] if stamp in odom]
    assert len(checked) >= 20, f'only {len(checked)} labelled states with their odometry'
    for stamp, label in checked:
        np.testing.assert_allclose(label, expert.act({'odom': odom[stamp]}), atol=1e-6)
    # The driven commands are label + N(0, std^2), clipped to the action bounds.
    assert np.all(commands >= spec.action.low) and np.all(commands <= spec.action.high)
    turn = commands[:, 1] - labels[:, 1]
    inside = np.abs(commands[:, 1]) < spec.action.high[1]
    assert abs(turn[inside].std() / std[1] - 1.0) < 0.2
    assert abs(turn[inside].mean()) < 4 * std[1] / math.sqrt(inside.sum())
    # linear.x: the expert drives at the top speed, so only the downward half survives.
    assert np.all(commands[:, 0] <= labels[:, 0] + 1e-9)
    assert np.mean(commands[:, 0] < labels[:, 0] - 1e-6) > 0.3
    # noise_std changed back to 0 at runtime: the robot gets exactly the label again.
    for _, label, command in clean:
        np.testing.assert_allclose(command, label, atol=1e-9)


def test_noise_std_is_one_number_or_one_per_action_field():
    np.testing.assert_allclose(noise_std_factor(0.2, 2), np.diag([0.2, 0.2]))
    np.testing.assert_allclose(noise_std_factor([0.1, 0], 2), np.diag([0.1, 0.0]))
    assert noise_std_factor(0.0, 2) is None and noise_std_factor([0, 0], 2) is None
    for bad, words in [([0.1, 0.2, 0.3], 'got 3'), ('x', 'one number'), (True, 'one number'),
                       ([0.1, -1.0], '>= 0'), (math.nan, 'finite')]:
        with pytest.raises(ValueError, match=words):
            noise_std_factor(bad, 2)


def test_episode_drivers_follow_beta_and_the_table_reads_per_round():
    rng = np.random.default_rng(0)
    assert episode_drivers(1.0, 3, rng) == ['expert'] * 3
    assert episode_drivers(0.0, 3, rng) == ['policy'] * 3
    mixed = episode_drivers(0.5, 400, np.random.default_rng(1))
    assert 150 < mixed.count('expert') < 250
    assert mixed == episode_drivers(0.5, 400, np.random.default_rng(1))
    with pytest.raises(ValueError, match='beta'):
        episode_drivers(1.5, 1, rng)
    row = {'round': 1, 'beta': 0.25, 'episodes': 3, 'expert_episodes': 1, 'new_labels': 95,
           'dataset_size': 190, 'success_rate': 2 / 3, 'mean_return': 12.345}
    table = format_rounds([row], {'episodes': 2, 'success_rate': 1.0, 'mean_return': 20.0})
    assert '| 1 | 0.25 | 3 (1) | 95 | 190 | 67% | 12.35 |' in table
    assert table.splitlines()[-1] == '| final policy | 0 | 2 (0) | - | - | 100% | 20.00 |'
