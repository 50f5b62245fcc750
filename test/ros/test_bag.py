"""Tests of ilrl_ros.bag: round trips, independent readers, sqlite3 bags, truncation, errors."""

import os
from pathlib import Path
import shutil
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from nav_msgs.msg import Odometry
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader as RosbagsReader
from rosbags.typesys import get_typestore, Stores
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import String
import yaml

from ilrl_ros import bag as bag_module
from ilrl_ros.bag import mcap_reader, schema as bag_schema
from ilrl_ros.bag import (
    BagError,
    BagWriter,
    message_definition,
    open_bag,
    qos_profiles_yaml,
    type_description_hash,
)
from ilrl_ros.qos import COMMAND, LATCHED, SENSOR

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPIC_TYPES = {
    '/scan': 'sensor_msgs/msg/LaserScan',
    '/odom': 'nav_msgs/msg/Odometry',
    '/cmd_vel': 'geometry_msgs/msg/Twist',
    '/joint_states': 'sensor_msgs/msg/JointState',
    '/chatter': 'std_msgs/msg/String',
}
T0 = 1_700_000_000_000_000_000


def make_scan(i):
    scan = LaserScan()
    scan.header.stamp = Time(sec=1_700_000_000 + i, nanosec=250 * i)
    scan.header.frame_id = 'laser'
    scan.angle_min, scan.angle_max, scan.angle_increment = -1.5, 1.5, 0.5
    scan.range_min, scan.range_max = 0.1, 30.0
    scan.ranges = [0.5 * i + k for k in range(7)]
    scan.intensities = [float(k) for k in range(7)]
    return scan


def make_odom(i):
    odom = Odometry()
    odom.header.frame_id = 'odom'
    odom.child_frame_id = 'base_link'
    odom.pose.pose.position.x = 1.25 * i
    odom.pose.pose.orientation.w = 1.0
    odom.pose.covariance[0] = 0.01 * (i + 1)
    odom.twist.twist.angular.z = -0.5 * i
    return odom


def make_twist(i):
    twist = Twist()
    twist.linear.x = 0.1 * i
    twist.angular.z = -0.2 * i
    return twist


def make_joints(i):
    # effort is not left empty: rclpy serializes a trailing empty float64[] with 4 bytes of
    # alignment padding (not even zeroed) that rosbags' strict CDR reader rejects.
    return JointState(name=['shoulder', 'elbow'], position=[0.1 * i, -0.1 * i],
                      velocity=[1.0, 2.0], effort=[0.5 * i])


def make_string(i):
    return String(data=f'hello {i} ✓')


def assert_same_fields(actual, expected, where='msg'):
    """Compare two messages field by field; float32 fields only to float32 precision."""
    if hasattr(expected, 'get_fields_and_field_types'):
        assert type(actual) is type(expected), where
        for field in expected.get_fields_and_field_types():
            assert_same_fields(getattr(actual, field), getattr(expected, field),
                               f'{where}.{field}')
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-6), where
    elif isinstance(expected, str) or not hasattr(expected, '__len__'):
        assert actual == expected, where
    else:
        assert len(actual) == len(expected), where
        for index, (a, b) in enumerate(zip(actual, expected)):
            assert_same_fields(a, b, f'{where}[{index}]')


MAKERS = {'/scan': make_scan, '/odom': make_odom, '/cmd_vel': make_twist,
          '/joint_states': make_joints, '/chatter': make_string}


def write_demo_bag(path, n=5, **writer_kwargs):
    """Write n messages per topic, interleaved; return [(topic, message, log_time)]."""
    written = []
    with BagWriter(path, **writer_kwargs) as writer:
        writer.add_topic('/scan', TOPIC_TYPES['/scan'], qos_profiles_yaml([SENSOR]))
        writer.add_topic('/cmd_vel', TOPIC_TYPES['/cmd_vel'], qos_profiles_yaml([COMMAND]))
        writer.add_topic('/chatter', TOPIC_TYPES['/chatter'], qos_profiles_yaml([LATCHED]))
        writer.add_topic('/odom', TOPIC_TYPES['/odom'])
        writer.add_topic('/joint_states', TOPIC_TYPES['/joint_states'])
        for i in range(n):
            for k, topic in enumerate(MAKERS):
                message = MAKERS[topic](i)
                log_time = T0 + i * 10_000_000 + k
                data = serialize_message(message)
                WRITTEN_BYTES[(topic, log_time)] = data
                writer.write(topic, data, log_time, log_time - 1000)
                written.append((topic, message, log_time))
    return written


# The bytes each demo message was written with. rclpy leaves CDR alignment padding
# uninitialised, so serialising the same message twice need not give the same bytes.
WRITTEN_BYTES = {}


def test_round_trip_with_open_bag(tmp_path):
    written = write_demo_bag(tmp_path / 'demo', n=5)
    reader = open_bag(tmp_path / 'demo')
    assert not reader.truncated and reader.storage_identifier == 'mcap'
    assert open_bag(tmp_path / 'demo' / 'metadata.yaml').topics == reader.topics
    assert reader.topics == {
        name: bag_module.TopicInfo(name, type_name, 5) for name, type_name in TOPIC_TYPES.items()}
    read = list(reader.messages())
    assert [(m.topic, m.log_time_ns) for m in read] == [(t, lt) for t, _, lt in written]
    for message, (topic, original, _) in zip(read, written):
        decoded = reader.deserialize(message)
        assert message.type_name == TOPIC_TYPES[topic]
        # the exact bytes come back
        assert message.data == WRITTEN_BYTES[(topic, message.log_time_ns)]
        assert_same_fields(decoded, original, topic)
    scans = [reader.deserialize(m) for m in reader.messages(['/scan'])]
    assert [list(s.ranges) for s in scans] == [[0.5 * i + k for k in range(7)] for i in range(5)]
    assert scans[3].header.stamp == Time(sec=1_700_000_003, nanosec=750)
    assert scans[3].header.frame_id == 'laser' and scans[3].range_max == pytest.approx(30.0)
    joints = [reader.deserialize(m) for m in reader.messages('/joint_states')]
    assert joints[2].name == ['shoulder', 'elbow'] and list(joints[2].position) == [0.2, -0.2]
    odom = [reader.deserialize(m) for m in reader.messages(['/odom'])]
    assert odom[4].pose.pose.position.x == 5.0 and odom[4].child_frame_id == 'base_link'
    assert odom[4].pose.covariance[0] == pytest.approx(0.05)
    assert [reader.deserialize(m).data for m in reader.messages(['/chatter'])][1] == 'hello 1 ✓'


def test_mcap_reader_decodes_our_schema_text(tmp_path):
    """mcap_ros2 builds decoders from the schema text alone: proves the definitions are right."""
    written = write_demo_bag(tmp_path / 'demo', n=3)
    with open(tmp_path / 'demo' / 'demo_0.mcap', 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        header = reader.get_header()
        assert header.profile == 'ros2' and 'ilrl_ros' in header.library
        summary = reader.get_summary()
        assert summary.statistics.message_count == len(written)
        assert {s.encoding for s in summary.schemas.values()} == {'ros2msg'}
        channels = {c.topic: c for c in summary.channels.values()}
        assert {c.message_encoding for c in channels.values()} == {'cdr'}
        assert yaml.safe_load(channels['/scan'].metadata['offered_qos_profiles'])[0][
            'reliability'] == 'best_effort'
        assert channels['/odom'].metadata['topic_type_hash'].startswith('RIHS01_')
        decoded = list(reader.iter_decoded_messages())
    assert len(decoded) == len(written)
    for (schema, channel, message, value), (topic, original, log_time) in zip(decoded, written):
        assert channel.topic == topic and message.log_time == log_time
        assert message.publish_time == log_time - 1000
        assert schema.name == TOPIC_TYPES[topic]
        if topic == '/scan':
            assert list(value.ranges) == pytest.approx(list(original.ranges))
            assert value.header.frame_id == 'laser'
            assert value.header.stamp.nanosec == original.header.stamp.nanosec
        elif topic == '/odom':
            assert value.pose.pose.position.x == original.pose.pose.position.x
            assert value.pose.covariance[0] == pytest.approx(original.pose.covariance[0])
            assert value.twist.twist.angular.z == original.twist.twist.angular.z
        elif topic == '/cmd_vel':
            assert (value.linear.x, value.angular.z) == (original.linear.x, original.angular.z)
        elif topic == '/joint_states':
            assert value.name == original.name
            assert list(value.position) == list(original.position)
        else:
            assert value.data == original.data


def test_rosbags_reads_the_bag_directory(tmp_path):
    """The rosbags library goes through metadata.yaml, as the rosbag2 tools do."""
    written = write_demo_bag(tmp_path / 'demo', n=4)
    typestore = get_typestore(Stores.ROS2_JAZZY)
    with RosbagsReader(tmp_path / 'demo') as reader:
        assert reader.message_count == len(written)
        assert {c.topic: (c.msgtype, c.msgcount) for c in reader.connections} == {
            topic: (type_name, 4) for topic, type_name in TOPIC_TYPES.items()}
        by_topic = {c.topic: c for c in reader.connections}
        scan_qos = by_topic['/scan'].ext.offered_qos_profiles[0]
        assert scan_qos.reliability.name == 'BEST_EFFORT' and scan_qos.depth == SENSOR.depth
        assert by_topic['/chatter'].ext.offered_qos_profiles[0].durability.name == (
            'TRANSIENT_LOCAL')
        assert by_topic['/odom'].ext.offered_qos_profiles == []
        read = [(c.topic, t, typestore.deserialize_cdr(raw, c.msgtype))
                for c, t, raw in reader.messages()]
    assert [(topic, t) for topic, t, _ in read] == [(topic, t) for topic, _, t in written]
    for (topic, _, value), (_, original, _) in zip(read, written):
        if topic == '/scan':
            assert list(value.ranges) == pytest.approx(list(original.ranges))
        elif topic == '/odom':
            assert value.pose.pose.position.x == original.pose.pose.position.x
        elif topic == '/cmd_vel':
            assert value.angular.z == original.angular.z
        elif topic == '/joint_states':
            assert value.name == original.name
        else:
            assert value.data == original.data


def test_metadata_yaml_follows_rosbag2_version_9(tmp_path):
    path = tmp_path / 'meta'
    writer = BagWriter(path, flush_interval_s=None)
    info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
    assert info['relative_file_paths'] == ['meta_0.mcap'] and info['message_count'] == 0
    assert info['starting_time']['nanoseconds_since_epoch'] == 2**63 - 1
    writer.add_topic('/cmd_vel', 'geometry_msgs/msg/Twist', qos_profiles_yaml([COMMAND]))
    writer.write('/cmd_vel', serialize_message(make_twist(1)), 2_000)
    writer.write('/cmd_vel', serialize_message(make_twist(2)), 5_000)
    writer.flush()
    info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['message_count'] == 2
    assert info['starting_time'] == {'nanoseconds_since_epoch': 2_000}
    assert info['duration'] == {'nanoseconds': 3_000}
    assert info['files'] == [{'path': 'meta_0.mcap', 'starting_time': {
        'nanoseconds_since_epoch': 2_000}, 'duration': {'nanoseconds': 3_000},
        'message_count': 2}]
    (topic,) = info['topics_with_message_count']
    assert topic['message_count'] == 2
    assert topic['topic_metadata']['serialization_format'] == 'cdr'
    assert topic['topic_metadata']['type_description_hash'] == type_description_hash(
        'geometry_msgs/msg/Twist')
    assert topic['topic_metadata']['offered_qos_profiles'] == [{
        'history': 'keep_last', 'depth': 10, 'reliability': 'reliable',
        'durability': 'volatile', 'deadline': {'sec': 0, 'nsec': 0},
        'lifespan': {'sec': 0, 'nsec': 0}, 'liveliness': 'system_default',
        'liveliness_lease_duration': {'sec': 0, 'nsec': 0},
        'avoid_ros_namespace_conventions': False}]
    writer.close()
    assert not list(path.glob('.*.tmp'))


def test_closed_bags_are_read_through_their_index(tmp_path, monkeypatch):
    write_demo_bag(tmp_path / 'indexed', n=2)

    def no_scan(*args, **kwargs):
        raise AssertionError('a closed bag should not need a full scan')

    monkeypatch.setattr(mcap_reader.McapFile, '_walk', no_scan)
    reader = open_bag(tmp_path / 'indexed')
    assert reader.message_count == 10 and len(list(reader.messages())) == 10


def test_empty_bag_still_lists_its_topics(tmp_path):
    with BagWriter(tmp_path / 'empty') as writer:
        writer.add_topic('/scan', TOPIC_TYPES['/scan'])
    reader = open_bag(tmp_path / 'empty')
    assert reader.topics == {'/scan': bag_module.TopicInfo('/scan', TOPIC_TYPES['/scan'], 0)}
    assert list(reader.messages()) == [] and not reader.truncated
    with RosbagsReader(tmp_path / 'empty') as rosbags_reader:
        assert rosbags_reader.message_count == 0


def test_message_definition_is_the_rosbag2_concatenation():
    text = message_definition('sensor_msgs/msg/LaserScan')
    own = bag_module.find_interface_file('sensor_msgs/msg/LaserScan').read_text()
    assert text.startswith(own)
    header = bag_module.find_interface_file('std_msgs/msg/Header').read_text()
    time_text = bag_module.find_interface_file('builtin_interfaces/msg/Time').read_text()
    delimiter = '=' * 80 + '\n'
    assert text == (own + '\n' + delimiter + 'MSG: std_msgs/Header\n' + header
                    + '\n' + delimiter + 'MSG: builtin_interfaces/Time\n' + time_text)
    # Nested types appear once each, however often they are used.
    odom = message_definition('nav_msgs/msg/Odometry')
    names = [line[5:] for line in odom.splitlines() if line.startswith('MSG: ')]
    assert len(names) == len(set(names))
    assert set(names) >= {'std_msgs/Header', 'geometry_msgs/PoseWithCovariance',
                          'geometry_msgs/Vector3', 'builtin_interfaces/Time'}


def test_definition_rebuilt_from_python_class_when_no_msg_file(tmp_path, monkeypatch):
    monkeypatch.setattr(bag_schema, 'find_interface_file', lambda *args, **kwargs: None)
    bag_module.message_definition.cache_clear()
    try:
        text = message_definition('nav_msgs/msg/Odometry')
        assert 'float64[36] covariance' in text and 'MSG: geometry_msgs/Pose\n' in text
        with BagWriter(tmp_path / 'fallback') as writer:
            writer.add_topic('/odom', 'nav_msgs/msg/Odometry')
            writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
            writer.write('/odom', serialize_message(make_odom(3)), 1)
            writer.write('/joint_states', serialize_message(make_joints(3)), 2)
    finally:
        bag_module.message_definition.cache_clear()
    with open(tmp_path / 'fallback' / 'fallback_0.mcap', 'rb') as stream:
        decoded = [d.decoded_message for d in make_reader(
            stream, decoder_factories=[DecoderFactory()]).iter_decoded_messages()]
    assert decoded[0].pose.pose.position.x == 3.75
    assert decoded[0].pose.covariance[0] == pytest.approx(0.04)
    assert decoded[1].name == ['shoulder', 'elbow']


def make_db3(path, with_type_hash=True):
    """Write a sqlite3 bag in the schema that `ros2 bag record -s sqlite3` (Jazzy) uses."""
    db = sqlite3.connect(path)
    hash_column = ', type_description_hash TEXT NOT NULL' if with_type_hash else ''
    db.executescript(f"""
        CREATE TABLE schema(schema_version INTEGER PRIMARY KEY, ros_distro TEXT NOT NULL);
        CREATE TABLE metadata(id INTEGER PRIMARY KEY, metadata_version INTEGER NOT NULL,
                              metadata TEXT NOT NULL);
        CREATE TABLE topics(id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
                            serialization_format TEXT NOT NULL,
                            offered_qos_profiles TEXT NOT NULL{hash_column});
        CREATE TABLE message_definitions(id INTEGER PRIMARY KEY, topic_type TEXT NOT NULL,
                                         encoding TEXT NOT NULL,
                                         encoded_message_definition TEXT NOT NULL,
                                         type_description_hash TEXT NOT NULL);
        CREATE TABLE messages(id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL,
                              timestamp INTEGER NOT NULL, data BLOB NOT NULL);
        CREATE INDEX timestamp_idx ON messages (timestamp ASC);
        INSERT INTO schema (schema_version, ros_distro) VALUES (4, 'jazzy');
    """)
    extra = ', type_description_hash' if with_type_hash else ''
    for topic_id, (name, type_name) in enumerate(
            [('/cmd_vel', 'geometry_msgs/msg/Twist'), ('/chatter', 'std_msgs/msg/String')], 1):
        values = (topic_id, name, type_name, 'cdr', qos_profiles_yaml([COMMAND]))
        values += (type_description_hash(type_name),) if with_type_hash else ()
        db.execute(f'INSERT INTO topics (id, name, type, serialization_format, '
                   f'offered_qos_profiles{extra}) VALUES ({",".join("?" * len(values))})',
                   values)
    expected = []
    # Inserted out of time order: the reader must sort by timestamp.
    for i in (3, 0, 2, 1, 4):
        twist, text = make_twist(i), make_string(i)
        db.execute('INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)',
                   (1, T0 + 10 * i, serialize_message(twist)))
        db.execute('INSERT INTO messages (topic_id, timestamp, data) VALUES (?, ?, ?)',
                   (2, T0 + 10 * i + 5, serialize_message(text)))
        expected += [(T0 + 10 * i, '/cmd_vel', twist), (T0 + 10 * i + 5, '/chatter', text)]
    db.commit()
    db.close()
    return sorted(expected, key=lambda item: item[0])


@pytest.mark.parametrize('with_type_hash', [True, False])
def test_reads_sqlite3_bags(tmp_path, with_type_hash):
    bag_dir = tmp_path / 'rosbag2_2024_01_01-00_00_00'
    bag_dir.mkdir()
    expected = make_db3(bag_dir / 'rosbag2_2024_01_01-00_00_00_0.db3', with_type_hash)
    metadata = {'rosbag2_bagfile_information': {
        'version': 9, 'storage_identifier': 'sqlite3',
        'relative_file_paths': ['rosbag2_2024_01_01-00_00_00_0.db3'],
        'compression_format': '', 'compression_mode': ''}}
    (bag_dir / 'metadata.yaml').write_text(yaml.safe_dump(metadata))
    for target in (bag_dir, bag_dir / 'rosbag2_2024_01_01-00_00_00_0.db3'):
        with open_bag(target) as reader:
            assert reader.storage_identifier == 'sqlite3' and not reader.truncated
            assert reader.topics['/cmd_vel'].count == 5
            assert reader.topics['/chatter'].type_name == 'std_msgs/msg/String'
            read = list(reader.messages())
            assert [(m.log_time_ns, m.topic) for m in read] == [(t, n) for t, n, _ in expected]
            for message, (_, _, original) in zip(read, expected):
                assert_same_fields(reader.deserialize(message), original)
            only = [reader.deserialize(m).linear.x for m in reader.messages(['/cmd_vel'])]
            assert only == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_directory_without_metadata_and_several_files(tmp_path):
    write_demo_bag(tmp_path / 'a', n=2)
    bag_dir = tmp_path / 'loose'
    bag_dir.mkdir()
    shutil.copy(tmp_path / 'a' / 'a_0.mcap', bag_dir / 'loose_0.mcap')
    expected_db = make_db3(bag_dir / 'loose_1.db3')
    reader = open_bag(bag_dir)
    assert reader.storage_identifier == 'mixed' and len(reader.files) == 2
    assert reader.topics['/cmd_vel'].count == 2 + 5
    times = [m.log_time_ns for m in reader.messages()]
    assert times == sorted(times) and len(times) == 10 + len(expected_db)


def copy_cut(source, target, size):
    with open(source, 'rb') as src, open(target, 'wb') as dst:
        dst.write(src.read(size))


def test_truncated_files_keep_everything_flushed(tmp_path):
    path = tmp_path / 'cut'
    writer = BagWriter(path, flush_interval_s=None)
    writer.add_topic('/scan', TOPIC_TYPES['/scan'])
    writer.add_topic('/chatter', TOPIC_TYPES['/chatter'])
    originals, flushed = [], []  # flushed: (file size after the flush, messages on disk)
    for batch in range(6):
        for i in range(5):
            topic = '/scan' if i % 2 else '/chatter'
            data = serialize_message(MAKERS[topic](batch * 5 + i))
            writer.write(topic, data, T0 + batch * 100 + i)
            originals.append((topic, data))
        writer.flush()
        flushed.append((writer.file_path.stat().st_size, len(originals)))
    writer.close()
    full = writer.file_path.stat().st_size
    with open(writer.file_path, 'rb') as stream:
        stream.seek(full - 8 - 29)
        opcode, _, summary_start, _, _ = struct.unpack('<BQQQI', stream.read(29))
    assert opcode == 0x02  # the footer
    cuts = {8, 9, 20, summary_start - 13, summary_start - 1, summary_start, full - 1}
    for size, _ in flushed:
        cuts |= {size - 1, size, size + 1, size + 40}
    cuts |= {(a + b) // 2 for (a, _), (b, _) in zip(flushed, flushed[1:])}
    for cut in sorted(cuts):
        target = tmp_path / f'cut_{cut}.mcap'
        copy_cut(writer.file_path, target, cut)
        reader = open_bag(target)
        must_have = max([count for size, count in flushed if size <= cut], default=0)
        read = list(reader.messages())
        assert len(read) >= must_have, f'cut at {cut} lost flushed messages'
        assert sum(topic.count for topic in reader.topics.values()) == len(read)
        # Everything read is exactly the start of what was written: nothing corrupted.
        assert [(m.topic, m.data) for m in read] == originals[:len(read)]
        assert all(reader.deserialize(m) is not None for m in read)
        # A cut inside the summary (after the data section) loses no message.
        assert reader.truncated == (cut < summary_start), f'cut at {cut}'
        if reader.truncated:
            assert 'not closed properly' in reader.notes[0] and str(target) in reader.notes[0]
    assert not open_bag(writer.file_path).truncated


def test_out_of_order_log_times_are_sorted(tmp_path):
    path = tmp_path / 'order'
    writer = BagWriter(path, flush_interval_s=None)
    writer.add_topic('/chatter', TOPIC_TYPES['/chatter'])
    for log_time in (50, 10, 40, 20, 30):
        writer.write('/chatter', serialize_message(make_string(log_time)), log_time)
        writer.flush()  # one chunk each, so the chunks overlap out of order
    copy_cut(writer.file_path, tmp_path / 'open.mcap', writer.file_path.stat().st_size)
    writer.close()
    for target in (path, tmp_path / 'open.mcap'):
        reader = open_bag(target)
        assert [m.log_time_ns for m in reader.messages()] == [10, 20, 30, 40, 50]
        assert reader.truncated == (target != path)


KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String
    from ilrl_ros.bag import BagWriter
    writer = BagWriter(sys.argv[1], flush_interval_s=None)
    writer.add_topic('/chatter', 'std_msgs/msg/String')
    for i in range(30):
        writer.write('/chatter', serialize_message(String(data=f'flushed {i}')), 1000 + i)
    writer.flush()
    for i in range(30, 40):
        writer.write('/chatter', serialize_message(String(data=f'lost {i}')), 1000 + i)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_writer_killed_after_a_flush(tmp_path):
    path = tmp_path / 'killed'
    process = subprocess.run([sys.executable, '-c', KILLED_WRITER, str(path)], cwd=REPO_ROOT,
                             env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)}, timeout=60,
                             capture_output=True)
    assert process.returncode == -9, process.stderr.decode()
    reader = open_bag(path)
    assert reader.truncated and reader.topics['/chatter'].count == 30
    assert [reader.deserialize(m).data for m in reader.messages()] == [
        f'flushed {i}' for i in range(30)]
    info = yaml.safe_load((path / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert info['message_count'] == 30
    assert info['topics_with_message_count'][0]['message_count'] == 30


def test_interval_flush_and_threads(tmp_path):
    path = tmp_path / 'threads'
    writer = BagWriter(path, flush_interval_s=0.5)
    writer.add_topic('/chatter', TOPIC_TYPES['/chatter'])
    writer.write('/chatter', serialize_message(make_string(0)), 1)
    writer.flush()
    flushed_size = writer.file_path.stat().st_size
    writer.write('/chatter', serialize_message(make_string(1)), 2)
    assert not writer.flush_if_due()  # the interval has not passed yet
    assert writer.file_path.stat().st_size == flushed_size
    threading.Event().wait(0.55)
    writer.write('/chatter', serialize_message(make_string(2)), 3)  # due: flushes by itself
    assert writer.file_path.stat().st_size > flushed_size
    assert open_bag(path).topics['/chatter'].count == 3

    def produce(offset):
        for i in range(200):
            writer.write('/chatter', serialize_message(make_string(i)), offset + i)

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    reader = open_bag(path)
    assert reader.topics['/chatter'].count == 803
    assert all(deserialize_message(m.data, String).data.startswith('hello')
               for m in reader.messages())


def test_writer_errors_name_the_bag(tmp_path):
    with BagWriter(tmp_path / 'w') as writer:
        writer.add_topic('/chatter', TOPIC_TYPES['/chatter'])
        writer.add_topic('/chatter', TOPIC_TYPES['/chatter'])  # same type: fine
        with pytest.raises(BagError, match='already in bag'):
            writer.add_topic('/chatter', 'std_msgs/msg/Int32')
        with pytest.raises(BagError, match='add_topic'):
            writer.write('/unknown', b'', 1)
        with pytest.raises(BagError, match='not understood'):
            writer.add_topic('/bad', 'LaserScan')
    with pytest.raises(BagError, match='closed'):
        writer.write('/chatter', b'', 1)
    with pytest.raises(BagError, match='already exists'):
        BagWriter(tmp_path / 'w')
    with pytest.raises(BagError, match='compression'):
        BagWriter(tmp_path / 'x', compression='gzip')


def test_reader_errors_name_the_path(tmp_path):
    missing = tmp_path / 'nope'
    with pytest.raises(BagError, match='does not exist') as error:
        open_bag(missing)
    assert str(missing) in str(error.value)
    text = tmp_path / 'notes.txt'
    text.write_text('not a bag\n')
    with pytest.raises(BagError, match='not a bag file') as error:
        open_bag(text)
    assert str(text) in str(error.value)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(BagError, match='not a bag') as error:
        open_bag(empty)
    assert str(empty) in str(error.value)
    fake_db = tmp_path / 'fake'
    fake_db.mkdir()
    (fake_db / 'metadata.yaml').write_text(yaml.safe_dump({'rosbag2_bagfile_information': {
        'storage_identifier': 'cassandra', 'relative_file_paths': ['x.db']}}))
    with pytest.raises(BagError, match='cassandra') as error:
        open_bag(fake_db)
    assert str(fake_db) in str(error.value)
    write_demo_bag(tmp_path / 'ok', n=1)
    with pytest.raises(BagError, match="no topic '/nope'"):
        list(open_bag(tmp_path / 'ok').messages(['/nope']))
    (tmp_path / 'ok' / 'ok_0.mcap').unlink()
    with pytest.raises(BagError, match='missing: ok_0.mcap'):
        open_bag(tmp_path / 'ok')
