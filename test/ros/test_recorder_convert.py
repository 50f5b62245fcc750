"""Recording a live loop and converting the bag; a SIGKILLed recorder's bag still converts."""

import json
import signal
import time

import numpy as np
import pytest
from std_msgs.msg import String

from ilrl_ros import qos
from ilrl_ros.convert import bag_to_dataset, ConversionError
from ilrl_ros.core.spec import load_spec
from ilrl_ros.graph import Graph, GraphConfig, recorded_topics
from ilrl_testing import node_process, Probe, stop_process, wait_for


def _recorder(bag_dir, name, log, task='track_follow'):
    topics = json.dumps(recorded_topics(task))
    return node_process('demo_recorder', f'topics:={topics}', f'output_dir:={bag_dir}',
                        f'bag_name:={name}', 'use_sim_time:=true', 'flush_interval_s:=1.0',
                        log=log)


@pytest.mark.slow
def test_a_sigkilled_recorder_loses_at_most_its_last_flush_and_the_bag_converts(tmp_path):
    spec = load_spec('track_follow')
    log = open(tmp_path / 'recorder.log', 'w')
    recorder = _recorder(tmp_path, 'killed', log)
    graph = Graph(GraphConfig(task='track_follow', expert_drive=True))
    probe = Probe('track_follow', graph.context)
    recorder_counts = {}
    probe.create_subscription(
        String, 'demo_recorder/status',
        lambda msg: recorder_counts.update(json.loads(msg.data).get('counts', {})), qos.LATCHED)
    graph.add_node(probe)
    try:
        with graph:
            # The lock-step loop runs faster than real time: count the commands from the
            # moment the recorder has the command topic, however long it took to start.
            wait_for(lambda: recorder_counts.get('/cmd_vel', 0) > 0, 60,
                     'the recorder to record /cmd_vel')
            recording_from = len(probe.commands)
            wait_for(lambda: len(probe.commands) > recording_from + 300, 60,
                     '300 expert commands while recording')
            sent_before_kill = len(probe.commands)
            recorder.send_signal(signal.SIGKILL)
            recorder.wait(timeout=10)
            killed_at = time.monotonic()
        # Commands older than 1.5 flush intervals before the kill were flushed to disk.
        flushed = sum(1 for t, _ in probe.commands[recording_from:] if t < killed_at - 1.5)
    finally:
        stop_process(recorder)
        log.close()
    data, report = bag_to_dataset(tmp_path / 'killed', spec)
    assert report.truncated
    assert len(data) >= flushed - 2, (len(data), flushed, sent_before_kill)
    assert len(data) <= sent_before_kill
    assert np.all(np.isfinite(data.observations))
    assert np.all(np.diff(data.stamp_ns) > 0)
    assert data.observations.shape[1] == spec.observation.size
    # The labels are exactly the commands the expert sent, in order: the only ones missing
    # are the rows the report says it dropped (commands sent during a lap's reset, or before
    # the first odometry).
    sent = np.array([v for _, v in probe.commands])
    first = int(np.flatnonzero(np.all(np.isclose(sent, data.actions[0]), axis=1))[0])
    skipped, at = 0, first
    for action in data.actions:
        while at < len(sent) and not np.allclose(sent[at], action, atol=1e-6):
            at, skipped = at + 1, skipped + 1
        assert at < len(sent), f'label {action} is not among the commands sent, in order'
        at += 1
    assert skipped <= sum(report.dropped.values()), (skipped, report.dropped)


def test_a_bag_missing_a_topic_is_refused_with_the_topics_it_has(tmp_path):
    from ilrl_ros.bag import BagWriter
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import LaserScan

    with BagWriter(tmp_path / 'partial') as bag:
        bag.add_topic('/scan', 'sensor_msgs/msg/LaserScan')
        bag.write('/scan', serialize_message(LaserScan()), 1_000)
    with pytest.raises(ConversionError) as error:
        bag_to_dataset(tmp_path / 'partial', load_spec('track_follow'))
    text = str(error.value)
    assert 'odom' in text and 'cmd_vel' in text and '/scan' in text
    assert str(tmp_path / 'partial') in text
