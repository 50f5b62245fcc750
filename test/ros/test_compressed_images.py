"""sensor_msgs/CompressedImage camera sources over ROS 2: messages, the graph, bags to datasets."""

import copy

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage
import yaml

from ilrl_ros.convert import bag_to_dataset
from ilrl_ros.core.observation import ObservationError, resize_area
from ilrl_ros.core.readings import ImageReading
from ilrl_ros.core.spec import load_spec
from ilrl_ros.messages import message_from_reading, reading_from_message
from ilrl_testing import constant_checkpoint, Probe, wait_for

TOPIC = 'camera/image_raw/compressed'


def test_a_compressed_image_message_decodes_to_the_raw_images_reading():
    pixels = np.arange(48 * 64, dtype=np.uint32).reshape(48, 64).astype(np.uint8)
    image = ImageReading(stamp_ns=3_000_000_123, height=48, width=64, encoding='mono8',
                         data=pixels)
    msg = message_from_reading(image, 'camera', image_format='png')
    assert isinstance(msg, CompressedImage)
    assert msg.format == 'mono8; png compressed mono8' and msg.header.frame_id == 'camera'
    wire = deserialize_message(serialize_message(msg), CompressedImage)
    back = reading_from_message('image', wire, 'camera')
    raw = reading_from_message('image', message_from_reading(image, 'camera'), 'camera')
    assert back.stamp_ns == raw.stamp_ns == 3_000_000_123
    assert back.encoding == raw.encoding and np.array_equal(back.data, raw.data)


def test_a_bad_compressed_message_is_refused_naming_the_source_and_its_format():
    msg = CompressedImage(format='bgr8; jpeg compressed bgr8', data=b'\xff\xd8\xff\xe0junk')
    with pytest.raises(ObservationError) as error:
        reading_from_message('image', msg, 'camera')
    text = str(error.value)
    assert text.startswith("source 'camera': the JPEG data has no readable frame header")
    assert "(message format 'bgr8; jpeg compressed bgr8')" in text


@settings(max_examples=20)
@given(st.binary(max_size=256), st.text(max_size=20))
def test_any_compressed_message_is_a_reading_or_an_observation_error(data, text):
    msg = CompressedImage(format=text, data=b'\x89PNG\r\n\x1a\n' + data)
    try:
        image = reading_from_message('image', msg, 'camera')
    except ObservationError as error:
        assert str(error).startswith("source 'camera': ")
    else:
        assert image.data.shape[:2] == (image.height, image.width)


@pytest.fixture
def compressed_task(tmp_path):
    raw = copy.deepcopy(load_spec('track_follow_camera').raw)
    raw['name'] = 'track_follow_compressed'
    raw['sources']['camera'] = {'topic': TOPIC, 'kind': 'image', 'format': 'jpeg'}
    path = tmp_path / 'compressed.yaml'
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_camera_task_runs_and_records_end_to_end_on_compressed_images(tmp_path,
                                                                         compressed_task):
    """Mock robot (JPEG) -> policy, observation node, episode manager, recorder -> convert."""
    from ilrl_ros.bag import open_bag
    from ilrl_ros.graph import Graph, GraphConfig
    spec = load_spec(str(compressed_task))
    # (The format is no part of the contract, but the topic is: the checkpoint is made for
    # this spec.)
    checkpoint = constant_checkpoint(tmp_path / 'constant', str(compressed_task), 0.05)
    graph = Graph(GraphConfig(task=str(compressed_task), checkpoint=str(checkpoint),
                              record=True, bag_dir=str(tmp_path), bag_name='compressed'))
    probe = Probe(str(compressed_task), graph.context)
    graph.add_node(probe)
    with graph:
        recorder, policy = graph.nodes['demo_recorder'], graph.nodes['policy']
        wait_for(lambda: recorder.status()['counts'].get(f'/{TOPIC}', 0) >= 30
                 and policy._counts['commands'] >= 30, 60,
                 '30 recorded compressed images and 30 policy commands')
        counts = dict(policy._counts)
        bag, _ = recorder.stop_recording()
    # The policy acted on every decoded image: no input errors.
    assert counts['errors'] == 0, (counts, policy._last_error)
    data, report = bag_to_dataset(bag, spec)
    assert len(data) >= 20, report.summary()
    images = data.observations[:, :768]
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.05
    with open_bag(bag) as reader:
        assert reader.topics[f'/{TOPIC}'].type_name == 'sensor_msgs/msg/CompressedImage'
        decoded = {}
        for message in reader.messages([f'/{TOPIC}']):
            image = reading_from_message('image', reader.deserialize(message), 'camera')
            decoded[image.stamp_ns] = image
    checked = 0
    for row, stamp in enumerate(data.stamp_ns[:20]):
        if int(stamp) in decoded:
            expected = resize_area(decoded[int(stamp)].data.astype(float), 24, 32).ravel()
            assert np.allclose(images[row], expected / 255.0, atol=1e-6)
            checked += 1
    assert checked >= 10
