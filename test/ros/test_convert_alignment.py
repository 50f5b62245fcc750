"""The bag converter's alignment on the control clock, labels, rewards, and `ros2 bag record` bags.

A hand-made bag with hand-chosen stamps (scan at 5 Hz with one 0.4 s gap, odometry at 20 Hz,
stamped commands at 10 Hz, a teleoperator's Twist and an expert's stamped labels, episode
events and rewards) converts to rows known in advance, with every drop counted by its reason.
Then bags laid out as `ros2 bag record` (Jazzy) writes them, sqlite3 and MCAP, split in two,
without metadata.yaml and cut short, are read (also by the independent `rosbags`) and
converted.
"""

import json
import math
import sqlite3

from geometry_msgs.msg import Twist, TwistStamped
from mcap.writer import CompressionType, Writer as McapWriter
from mcap_ros2._dynamic import serialize_dynamic
from nav_msgs.msg import Odometry
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader as RosbagsReader
from rosbags.typesys import get_typestore, Stores
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Float64, String
import yaml

from ilrl_ros.bag import (BagWriter, message_definition, open_bag, qos_profiles_yaml,
                          type_description_hash)
from ilrl_ros.cli import main as ilrl_main
from ilrl_ros.convert import bag_to_dataset, ConversionError
from ilrl_ros.core.spec import parse_spec
from ilrl_ros.qos import COMMAND, SENSOR
from ilrl_testing import small_spec_raw, stamp

NS, MS = 1_000_000_000, 1_000_000
T0 = 1_700_000_000 * NS
TICK = 100 * MS                      # the control clock: 10 Hz
SCAN_SCALE, VX_SCALE = 0.2857142857142857, 4.545454545454546


def tick(k):
    return T0 + k * TICK


SPEC = parse_spec(small_spec_raw(), origin='test')


def scan_msg(stamp_ns, value):
    msg = LaserScan()
    msg.header.stamp, msg.header.frame_id = stamp(stamp_ns), 'laser'
    msg.angle_min, msg.angle_increment = -math.pi, math.pi / 4
    msg.angle_max = msg.angle_min + 7 * msg.angle_increment
    msg.range_min, msg.range_max = 0.05, 3.5
    msg.ranges = [value] * 8
    return msg


def odom_msg(stamp_ns, vx):
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp(stamp_ns), 'odom', 'base'
    msg.pose.pose.orientation.w = 1.0
    msg.twist.twist.linear.x = vx
    return msg


def twist_stamped(stamp_ns, vx, wz):
    msg = TwistStamped()
    msg.header.stamp, msg.header.frame_id = stamp(stamp_ns), 'base_link'
    msg.twist.linear.x, msg.twist.angular.z = vx, wz
    return msg


def twist(vx, wz):
    msg = Twist()
    msg.linear.x, msg.angular.z = vx, wz
    return msg


def scan_value(k):
    return 0.5 + 0.01 * k


# --------------------------------------------------------------------------------------------
# The hand-made bag
# --------------------------------------------------------------------------------------------

SCANS = [k for k in range(15) if k != 6]       # 0.2 s apart; none at 1.2 s: 1.0 -> 1.4 s
COMMAND_TICKS = [k for k in range(30) if k not in (15, 16)]   # paused during the reset
TELEOP_TICKS = [k for k in range(30) if k not in (20, 21)]    # the operator let go
EXPERT_TICKS = [k for k in range(30) if k != 7]


def write_hand_made_bag(path):
    """Every message of the story above, with its log time; written in log-time order."""
    items = []  # (log_ns, topic, type, message)

    def add(log_ns, topic, type_name, message):
        items.append((log_ns, topic, type_name, message))

    for k in SCANS:                                  # received 2 ms after their stamp
        add(T0 + k * 200 * MS + 2 * MS, '/scan', 'sensor_msgs/msg/LaserScan',
            scan_msg(T0 + k * 200 * MS, scan_value(k)))
    for j in range(60):
        add(T0 + j * 50 * MS + 2 * MS, '/odom', 'nav_msgs/msg/Odometry',
            odom_msg(T0 + j * 50 * MS, 0.001 * j))
    for k in COMMAND_TICKS:                          # stamped with the tick they answer
        add(tick(k) + 5 * MS, '/cmd_vel', 'geometry_msgs/msg/TwistStamped',
            twist_stamped(tick(k), 0.01 * k, -0.01 * k))
    for k in TELEOP_TICKS:                           # unstamped, 25 ms before each tick
        add(tick(k) - 25 * MS, '/teleop/cmd_vel', 'geometry_msgs/msg/Twist',
            twist(0.02 * k, 0.5))
    # After command 8 was received: must never label it (nor command 9, which has a newer one).
    add(tick(8) + 10 * MS, '/teleop/cmd_vel', 'geometry_msgs/msg/Twist', twist(9.0, 9.0))
    for k in EXPERT_TICKS:                           # stamped, but received after the command
        add(tick(k) + 8 * MS, '/expert/action', 'geometry_msgs/msg/TwistStamped',
            twist_stamped(tick(k), 0.03 * k, 0.1))
    for episode, event, k in ((1, 'start', 0), (1, 'end', 15), (2, 'start', 18)):
        add(tick(k) + 4 * MS, '/episode/event', 'std_msgs/msg/String',
            String(data=json.dumps({'event': event, 'episode': episode,
                                    'stamp_ns': tick(k)})))
    # The reward monitor: the step ending at tick n (from tick n-1) is worth 99 + n. The stamp
    # of tick 19 is published twice (scored again after the episode start): 118 counts.
    rewards = [(n, 99.0 + n, 3 * MS) for n in range(1, 30)] + [(19, 999.0, 3 * MS - 1)]
    for n, value, delay in rewards:
        add(tick(n) + delay, '/reward/terms', 'std_msgs/msg/String',
            String(data=json.dumps({'stamp_ns': tick(n), 'reward': value, 'return': 0.0,
                                    'terms': {}})))
        add(tick(n) + delay, '/plain/reward', 'std_msgs/msg/Float64', Float64(data=value))
    items.sort(key=lambda item: item[0])
    with BagWriter(path, flush_interval_s=None) as bag:
        for log_ns, topic, type_name, message in items:
            bag.add_topic(topic, type_name)
            bag.write(topic, serialize_message(message), log_ns)
    return path


@pytest.fixture(scope='module')
def hand_made_bag(tmp_path_factory):
    return write_hand_made_bag(tmp_path_factory.mktemp('bags') / 'hand_made')


def used_scan_and_odom(data):
    """Which scan (by number) and odometry message (by number) each row was built from."""
    scans = np.round((data.observations[:, 0] / SCAN_SCALE - 0.5) / 0.01).astype(int)
    odoms = np.round(data.observations[:, 4] / VX_SCALE / 0.001).astype(int)
    assert np.allclose(data.observations[:, :4], data.observations[:, :1], atol=1e-6)
    return scans.tolist(), odoms.tolist()


def ticks_of(data):
    return ((data.stamp_ns - T0) // TICK).tolist()


KEPT = [k for k in COMMAND_TICKS if k not in (12, 13, 17)]


def test_rows_are_aligned_on_the_commands_and_the_scan_gap_is_dropped(hand_made_bag):
    data, report = bag_to_dataset(hand_made_bag, SPEC, align_tolerance_s=0.15)
    assert report.commands == 28 and report.anchored == {'stamp': 28}
    assert ticks_of(data) == KEPT and report.rows == 25
    # Tick 12 and 13 find only the scan of 1.0 s, 0.2 and 0.3 s old: dropped, never filled.
    assert report.dropped == {'no /scan within 0.150 s before the command stamp': 2,
                              'outside any episode (during a reset)': 1}
    assert report.dropped_gaps_s['no /scan within 0.150 s before the command stamp'] == \
        pytest.approx((0.2, 0.3))
    assert 'dropped 2: no /scan within 0.150 s before the command stamp (gap 0.200 to ' \
        '0.300 s)' in report.summary()
    # Each row: the newest scan at or before its tick (5 Hz) and the odometry of its tick.
    scans, odoms = used_scan_and_odom(data)
    assert scans == [k // 2 for k in KEPT]
    assert odoms == [2 * k for k in KEPT]
    assert np.allclose(data.actions, [[0.01 * k, -0.01 * k] for k in KEPT], atol=1e-6)
    assert data.episode.tolist() == [1] * 13 + [2] * 12 and report.episodes == 2
    odd = sum(k % 2 for k in KEPT)
    assert report.gaps_s['/scan'] == pytest.approx({'max': 0.1, 'mean': 0.1 * odd / 25})
    assert report.gaps_s['/odom'] == {'max': 0.0, 'mean': 0.0}
    assert report.topic_counts['/scan'] == len(SCANS) and report.topic_counts['/odom'] == 60


def test_the_default_tolerance_for_stamped_commands_is_the_spec_sync_tolerance(hand_made_bag):
    data, report = bag_to_dataset(hand_made_bag, SPEC)
    assert report.align_tolerance_s['stamp'] == 0.0
    # Only the ticks with a scan of exactly their stamp remain.
    assert ticks_of(data) == [k for k in KEPT if k % 2 == 0]
    assert report.dropped['no /scan within 0.000 s before the command stamp'] == \
        sum(1 for k in COMMAND_TICKS if k % 2 == 1 or k == 12)


def test_rewards_belong_to_the_step_from_each_row(hand_made_bag):
    expected = {k: 100.0 + k for k in KEPT}
    expected[11] = 111.0 + 112.0 + 113.0   # rows 12 and 13 were dropped: 11 -> 14 is 3 steps
    expected[14] = 114.0                   # the episode ended at tick 15: later steps crossed
    expected[29] = math.nan                # the reset; nothing was scored after the last row
    for reward_topic, how in (('reward', 'stamp'), ('plain/reward', 'arrival')):
        data, report = bag_to_dataset(hand_made_bag, SPEC, align_tolerance_s=0.15,
                                      reward_topic=reward_topic)
        assert report.reward_alignment == how
        assert np.allclose(data.reward, [expected[k] for k in KEPT], equal_nan=True), how
        assert report.rows_with_reward == 24


def test_teleop_labels_by_log_time_and_unlabelled_states_dropped(hand_made_bag):
    data, report = bag_to_dataset(hand_made_bag, SPEC, label_topic='/teleop/cmd_vel',
                                  label_tolerance_s=0.05, align_tolerance_s=0.15)
    kept = [k for k in KEPT if k not in (20, 21)]
    assert ticks_of(data) == kept
    # The label received 30 ms before each command; never the one received after command 8.
    assert np.allclose(data.actions, [[0.02 * k, 0.5] for k in kept], atol=1e-6)
    assert report.unlabeled == 2
    reason = ('unlabelled state: no /teleop/cmd_vel within 0.050 s before the command '
              '(log time)')
    assert report.dropped[reason] == 2
    assert report.dropped_gaps_s[reason] == pytest.approx((0.13, 0.23))
    assert report.gaps_s['label'] == pytest.approx({'max': 0.03, 'mean': 0.03})
    assert report.label_topic == '/teleop/cmd_vel'


def test_stamped_expert_labels_match_by_stamp_even_when_they_arrive_late(hand_made_bag):
    data, report = bag_to_dataset(hand_made_bag, SPEC, label_topic='expert/action',
                                  align_tolerance_s=0.15)
    kept = [k for k in KEPT if k != 7]
    assert ticks_of(data) == kept
    assert np.allclose(data.actions, [[0.03 * k, 0.1] for k in kept], atol=1e-6)
    assert report.unlabeled == 1
    assert report.dropped['unlabelled state: no /expert/action within 0.000 s before the '
                          'command stamp'] == 1


def test_label_topic_of_the_wrong_type_is_refused(hand_made_bag):
    with pytest.raises(ConversionError) as error:
        bag_to_dataset(hand_made_bag, SPEC, label_topic='plain/reward')
    text = str(error.value)
    assert '/plain/reward carries std_msgs/msg/Float64' in text
    assert 'geometry_msgs/msg/Twist or geometry_msgs/msg/TwistStamped' in text
    with pytest.raises(ConversionError, match='lacks topic'):
        bag_to_dataset(hand_made_bag, SPEC, label_topic='nobody/cmd_vel')
    with pytest.raises(ConversionError, match='align_tolerance_s'):
        bag_to_dataset(hand_made_bag, SPEC, align_tolerance_s=-0.1)


def test_ilrl_convert_prints_and_writes_the_report(hand_made_bag, tmp_path, capsys):
    spec_path = tmp_path / 'small.yaml'
    spec_path.write_text(yaml.safe_dump(small_spec_raw()))
    out = tmp_path / 'data' / 'teleop.npz'
    code = ilrl_main(['convert', str(hand_made_bag), '--task', str(spec_path), '-o', str(out),
                      '--label-topic', 'teleop/cmd_vel', '--label-tolerance', '0.05',
                      '--align-tolerance', '0.15'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'unlabelled states: 2' in printed and '23 rows' in printed
    report = json.loads((tmp_path / 'data' / 'teleop.report.json').read_text())
    assert report['rows'] == 23 and report['unlabeled'] == 2 and report['commands'] == 28
    assert report['dropped']['no /scan within 0.150 s before the command stamp'] == 2
    assert report['dropped_total'] == 5 and report['reward_alignment'] == 'stamp'
    assert report['topic_counts']['/teleop/cmd_vel'] == len(TELEOP_TICKS) + 1


# --------------------------------------------------------------------------------------------
# Bags as `ros2 bag record` (Jazzy) writes them
# --------------------------------------------------------------------------------------------

# A teleoperated drive: lidar at 10 Hz (stalled from 1.0 to 1.4 s), odometry at 20 Hz, and
# unstamped Twist commands at 10 Hz, 60 ms after each lidar tick. All times are log times.
STALL = range(10, 14)


def teleop_messages():
    """[(log_ns, topic, type, fields as a dict)] of the teleoperated drive."""
    def header(ns):
        return {'stamp': {'sec': ns // NS, 'nanosec': ns % NS}, 'frame_id': 'base'}

    def vector(x=0.0, y=0.0, z=0.0):
        return {'x': x, 'y': y, 'z': z}

    items = []
    for i in (i for i in range(20) if i not in STALL):
        ns = T0 + i * TICK
        items.append((ns + 7 * MS, '/scan', 'sensor_msgs/msg/LaserScan', {
            'header': header(ns), 'angle_min': -math.pi, 'angle_max': math.pi * 3 / 4,
            'angle_increment': math.pi / 4, 'time_increment': 0.0, 'scan_time': 0.1,
            'range_min': 0.05, 'range_max': 3.5, 'ranges': [scan_value(i)] * 8,
            'intensities': []}))
    for j in range(40):
        ns = T0 + j * 50 * MS
        items.append((ns + 3 * MS, '/odom', 'nav_msgs/msg/Odometry', {
            'header': header(ns), 'child_frame_id': 'base_link',
            'pose': {'pose': {'position': vector(), 'orientation': {**vector(), 'w': 1.0}},
                     'covariance': [0.0] * 36},
            'twist': {'twist': {'linear': vector(0.001 * j), 'angular': vector()},
                      'covariance': [0.0] * 36}}))
    for c in range(20):
        items.append((T0 + c * TICK + 60 * MS, '/cmd_vel', 'geometry_msgs/msg/Twist',
                      {'linear': vector(0.01 * c), 'angular': vector(z=0.2)}))
    return sorted(items, key=lambda item: item[0])


ENCODERS = {}


def cdr(type_name, fields):
    """CDR bytes from mcap_ros2's own encoder (not rclpy's), from the rosbag2 schema text."""
    if type_name not in ENCODERS:
        ENCODERS[type_name] = serialize_dynamic(type_name, message_definition(type_name))[
            type_name]
    return ENCODERS[type_name](fields)


TOPICS = {'/scan': ('sensor_msgs/msg/LaserScan', SENSOR),
          '/odom': ('nav_msgs/msg/Odometry', SENSOR),
          '/cmd_vel': ('geometry_msgs/msg/Twist', COMMAND)}


def rosbag2_metadata(name, storage, files, version):
    """metadata.yaml as rosbag2 (Jazzy) writes it; ``files`` maps file name to its messages."""
    every = [item for items in files.values() for item in items]

    def span(items):
        times = [item[0] for item in items]
        return ({'nanoseconds_since_epoch': min(times)},
                {'nanoseconds': max(times) - min(times)})

    start, duration = span(every)
    topics = []
    for topic, (type_name, qos) in TOPICS.items():
        offered = qos_profiles_yaml([qos])
        topics.append({'topic_metadata': {
            'name': topic, 'type': type_name, 'serialization_format': 'cdr',
            # Version 9 stores the profiles as a list, version 8 as one YAML string.
            'offered_qos_profiles': yaml.safe_load(offered) if version >= 9 else offered,
            'type_description_hash': type_description_hash(type_name)},
            'message_count': sum(1 for item in every if item[1] == topic)})
    file_entries = []
    for file_name, items in files.items():
        file_start, file_duration = span(items)
        file_entries.append({'path': file_name, 'starting_time': file_start,
                             'duration': file_duration, 'message_count': len(items)})
    return {'rosbag2_bagfile_information': {
        'version': version, 'storage_identifier': storage, 'duration': duration,
        'starting_time': start, 'message_count': len(every),
        'topics_with_message_count': topics, 'compression_format': '',
        'compression_mode': '', 'relative_file_paths': list(files),
        'files': file_entries, 'custom_data': {'operator': 'test'}, 'ros_distro': 'jazzy'}}


def split(items, name, extension):
    """rosbag2 splits by size; here at 1.0 s: <name>_0 and <name>_1."""
    cut = T0 + 10 * TICK
    return {f'{name}_0.{extension}': [i for i in items if i[0] < cut],
            f'{name}_1.{extension}': [i for i in items if i[0] >= cut]}


def write_db3(path, items, metadata):
    """One rosbag2 sqlite3 file, schema version 4, as rosbag2_storage_sqlite3 creates it."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE schema(schema_version INTEGER PRIMARY KEY,ros_distro TEXT NOT NULL);
        CREATE TABLE metadata(id INTEGER PRIMARY KEY,metadata_version INTEGER NOT NULL,
            metadata TEXT NOT NULL);
        CREATE TABLE topics(id INTEGER PRIMARY KEY,name TEXT NOT NULL,type TEXT NOT NULL,
            serialization_format TEXT NOT NULL,offered_qos_profiles TEXT NOT NULL,
            type_description_hash TEXT NOT NULL);
        CREATE TABLE message_definitions(id INTEGER PRIMARY KEY,topic_type TEXT NOT NULL,
            encoding TEXT NOT NULL,encoded_message_definition TEXT NOT NULL,
            type_description_hash TEXT NOT NULL);
        CREATE TABLE messages(id INTEGER PRIMARY KEY,topic_id INTEGER NOT NULL,
            timestamp INTEGER NOT NULL, data BLOB NOT NULL);
        CREATE INDEX timestamp_idx ON messages (timestamp ASC);
        INSERT INTO schema (schema_version, ros_distro) VALUES (4, 'jazzy');
    """)
    ids = {}
    for topic, (type_name, qos) in TOPICS.items():
        cursor = db.execute(
            'INSERT INTO topics(name, type, serialization_format, offered_qos_profiles, '
            'type_description_hash) VALUES (?, ?, ?, ?, ?)',
            (topic, type_name, 'cdr', qos_profiles_yaml([qos]), type_description_hash(type_name)))
        ids[topic] = cursor.lastrowid
        db.execute('INSERT INTO message_definitions (topic_type, encoding, '
                   'encoded_message_definition, type_description_hash) VALUES (?, ?, ?, ?)',
                   (type_name, 'ros2msg', message_definition(type_name),
                    type_description_hash(type_name)))
    db.commit()
    for log_ns, topic, type_name, fields in items:
        db.execute('INSERT INTO messages (timestamp, topic_id, data) VALUES (?, ?, ?)',
                   (log_ns, ids[topic], cdr(type_name, fields)))
    db.commit()
    if metadata is not None:   # written when the recorder closes the file
        db.execute('INSERT INTO metadata (metadata_version, metadata) VALUES (?, ?)',
                   (9, yaml.safe_dump(metadata['rosbag2_bagfile_information'])))
        db.commit()
    db.close()


def write_mcap(path, items, metadata, chunk_size=4096):
    """One rosbag2 MCAP file: profile ros2, ros2msg schemas, CDR, the channels' QoS metadata.

    Returns the file offset after each message's chunk was written (chunk_size=1 closes a
    chunk per message), to cut the file where a killed recorder would have stopped.
    """
    ends = []
    with open(path, 'wb') as stream:
        writer = McapWriter(stream, chunk_size=chunk_size, compression=CompressionType.ZSTD)
        writer.start(profile='ros2', library='rosbag2 test fixture')
        channels = {}
        for topic, (type_name, qos) in TOPICS.items():
            schema = writer.register_schema(type_name, 'ros2msg',
                                            message_definition(type_name).encode())
            channels[topic] = writer.register_channel(
                topic, 'cdr', schema, metadata={'offered_qos_profiles': qos_profiles_yaml([qos]),
                                                'topic_type_hash': type_description_hash(
                                                    type_name)})
        for sequence, (log_ns, topic, type_name, fields) in enumerate(items):
            writer.add_message(channels[topic], log_time=log_ns, data=cdr(type_name, fields),
                               publish_time=log_ns - MS, sequence=sequence)
            ends.append(stream.tell())
        writer.add_metadata('rosbag2', {'serialized_metadata': yaml.safe_dump(
            metadata['rosbag2_bagfile_information'])})
        writer.finish()
    return ends


def write_ros2_bag(bag_dir, storage, version=9):
    bag_dir.mkdir()
    items = teleop_messages()
    files = split(items, bag_dir.name, 'db3' if storage == 'sqlite3' else 'mcap')
    metadata = rosbag2_metadata(bag_dir.name, storage, files, version)
    for file_name, file_items in files.items():
        if storage == 'sqlite3':
            write_db3(bag_dir / file_name, file_items, metadata)
        else:
            write_mcap(bag_dir / file_name, file_items, metadata)
    (bag_dir / 'metadata.yaml').write_text(
        yaml.safe_dump(metadata, sort_keys=False, default_flow_style=False))
    return items


def check_with_rosbags(bag_dir, items):
    """The independent rosbags reader sees the same topics, counts and values."""
    store = get_typestore(Stores.ROS2_JAZZY)
    with RosbagsReader(bag_dir) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {t: sum(1 for i in items if i[1] == t) for t in TOPICS}
        commands = [store.deserialize_cdr(raw, c.msgtype).linear.x
                    for c, _, raw in reader.messages()
                    if c.topic == '/cmd_vel']
    assert commands == pytest.approx([0.01 * c for c in range(20)])


def expected_teleop_rows(tolerance_s):
    """[(command, scan, odometry)] the converter must produce, by number.

    Command c (log time c*0.1+0.06 s) uses scan c (or the last before the stall) and odometry
    2c+1; a command whose newest scan is older than the tolerance is dropped.
    """
    rows = []
    for c in range(20):
        scan = c if c not in STALL else min(STALL) - 1
        gap = (c - scan) * 0.1 + 0.053
        if gap <= tolerance_s:
            rows.append((c, scan, 2 * c + 1))
    return rows


def check_teleop_conversion(data, report, rows, commands=20):
    assert report.anchored == {'log': commands} and report.commands == commands
    scans, odoms = used_scan_and_odom(data)
    assert list(zip(scans, odoms)) == [(s, o) for _, s, o in rows]
    assert np.allclose(data.actions, [[0.01 * c, 0.2] for c, _, _ in rows], atol=1e-6)
    assert len(data) == report.rows == len(rows)


@pytest.mark.parametrize('storage,version', [('sqlite3', 9), ('mcap', 8)])
def test_ros2_bag_record_bags_split_in_two_are_read_and_converted(tmp_path, storage, version):
    bag_dir = tmp_path / 'rosbag2_2025_11_27-10_15_00'
    items = write_ros2_bag(bag_dir, storage, version)
    check_with_rosbags(bag_dir, items)
    with open_bag(bag_dir) as reader:
        assert reader.storage_identifier == storage and len(reader.files) == 2
        assert not reader.truncated and not reader.notes
        assert {t: i.count for t, i in reader.topics.items()} == {
            t: sum(1 for i in items if i[1] == t) for t in TOPICS}
    # Unstamped commands: aligned by log time, by default within max_age_s (0.5 s).
    data, report = bag_to_dataset(bag_dir, SPEC)
    assert report.align_tolerance_s['log'] == 0.5 and not report.dropped
    check_teleop_conversion(data, report, expected_teleop_rows(0.5))
    data, report = bag_to_dataset(bag_dir, SPEC, align_tolerance_s=0.2)
    check_teleop_conversion(data, report, expected_teleop_rows(0.2))
    assert report.dropped == {'no /scan within 0.200 s before the command': 3}
    assert report.dropped_gaps_s['no /scan within 0.200 s before the command'] == \
        pytest.approx((0.253, 0.453))
    assert report.reward_alignment == 'none' and np.isnan(data.reward).all()


def test_a_killed_ros2_bag_record_without_metadata_and_cut_short(tmp_path):
    """The recorder died while writing the second MCAP file: no metadata.yaml, no summary."""
    bag_dir = tmp_path / 'killed'
    bag_dir.mkdir()
    items = teleop_messages()
    files = split(items, 'killed', 'mcap')
    metadata = rosbag2_metadata('killed', 'mcap', files, 9)
    (first, first_items), (second, second_items) = files.items()
    write_mcap(bag_dir / first, first_items, metadata)
    whole = tmp_path / 'whole.mcap'
    ends = write_mcap(whole, second_items, metadata, chunk_size=1)
    # Keep the messages logged before 1.5 s and half of the next chunk.
    last = max(n for n, item in enumerate(second_items) if item[0] < T0 + 15 * TICK)
    cut = ends[last] + (ends[last + 1] - ends[last]) // 2
    (bag_dir / second).write_bytes(whole.read_bytes()[:cut])
    with open_bag(bag_dir) as reader:
        assert reader.truncated and reader.metadata is None
        assert reader.message_count == len(first_items) + last + 1
    data, report = bag_to_dataset(bag_dir, SPEC)
    assert report.truncated and 'cut short' in report.summary()
    check_teleop_conversion(data, report, [r for r in expected_teleop_rows(0.5) if r[0] < 15],
                            commands=15)


def test_split_files_missing_from_metadata_are_read_too(tmp_path):
    """A recorder killed after a split: metadata.yaml names the first file only."""
    bag_dir = tmp_path / 'after_split'
    items = write_ros2_bag(bag_dir, 'sqlite3')
    meta = yaml.safe_load((bag_dir / 'metadata.yaml').read_text())
    meta['rosbag2_bagfile_information']['relative_file_paths'] = ['after_split_0.db3']
    (bag_dir / 'metadata.yaml').write_text(yaml.safe_dump(meta))
    with open_bag(bag_dir) as reader:
        assert len(reader.files) == 2 and reader.message_count == len(items)
        assert any('after_split_1.db3 not listed in metadata.yaml' in n for n in reader.notes)
    (bag_dir / 'metadata.yaml').unlink()
    data, report = bag_to_dataset(bag_dir, SPEC)
    check_teleop_conversion(data, report, expected_teleop_rows(0.5))
