"""Camera observations end to end: renderer, spec, Image messages, resize, CNN policy, ROS loop."""

import copy
import math

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray
import torch

from ilrl_ros import qos
from ilrl_ros.convert import bag_to_dataset
from ilrl_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ilrl_ros.core.data import Demonstrations, Normalizer
from ilrl_ros.core.envs import camera as cam
from ilrl_ros.core.networks import build_policy, ConvPolicy, make_policy, MLPPolicy
from ilrl_ros.core.networks.mlp import pooled_image_normalization
from ilrl_ros.core.observation import (area_weights, extract_field, extract_observation,
                                       image_to_gray, ObservationError, resize_area)
from ilrl_ros.core.readings import ImageReading
from ilrl_ros.core.rl.torch_settings import torch_settings
from ilrl_ros.core.spec import load_spec, parse_spec, spec_from_json, SpecError
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_ros.core.world.track_geometry import Track
from ilrl_ros.messages import message_from_reading, reading_from_message
from ilrl_testing import Probe, wait_for

TASK = 'track_follow_camera'


@pytest.fixture(scope='module')
def spec():
    return load_spec(TASK)


def variant(spec, **field):
    """The camera spec with its image field changed (e.g. a different size)."""
    raw = copy.deepcopy(spec.raw)
    raw['observation']['fields'][0].update(field)
    return parse_spec(raw, origin='variant')


# The renderer ---------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def straight():
    """A stadium with 60 m straights: from its middle, a 5 m camera sees a straight corridor."""
    s = np.linspace(0.0, 1.0, 4000, endpoint=False)
    half, radius = 30.0, 3.0
    points = []
    for t in s:
        d = t * (4 * half + 2 * math.pi * radius)
        if d < 2 * half:
            points.append((d - half, -radius))
        elif d < 2 * half + math.pi * radius:
            a = (d - 2 * half) / radius - math.pi / 2
            points.append((half + radius * math.cos(a), radius * math.sin(a)))
        elif d < 4 * half + math.pi * radius:
            points.append((half - (d - 2 * half - math.pi * radius), radius))
        else:
            a = (d - 4 * half - math.pi * radius) / radius + math.pi / 2
            points.append((-half + radius * math.cos(a), radius * math.sin(a)))
    return Track(np.array(points), width=1.0, spacing=0.01, name='straight')


def test_centred_in_a_straight_corridor_the_view_is_left_right_symmetric(straight):
    camera = cam.TrackCamera(straight, cam.CameraConfig(width=64, height=48, fov_deg=90.0))
    depth, side = camera.columns(0.0, -3.0, 0.0)
    # Known answer: a ray at angle a meets a wall 0.5 m to the side at depth 0.5 / tan|a|.
    hit = np.isfinite(depth)
    assert hit[:8].all() and hit[-8:].all() and not hit[31:33].any()
    assert np.allclose(depth[hit], 0.5 / np.tan(np.abs(camera.angles[hit])), rtol=1e-6)
    assert np.allclose(depth, depth[::-1], rtol=1e-9)
    # Columns left of centre see the left wall, those right of it the right wall.
    assert (side[:32][hit[:32]] == 1).all() and (side[32:][hit[32:]] == -1).all()
    # Drawn with one shade for both walls the picture is its own mirror image; the real
    # image differs only in the walls' shades.
    same_shade = camera.draw(depth, np.ones_like(side))
    assert np.allclose(same_shade, same_shade[:, ::-1], atol=1e-6)
    image = camera.render(0.0, -3.0, 0.0)
    assert image.shape == (48, 64) and image.dtype == np.uint8
    assert image[:, :8].mean() > image[:, -8:].mean()   # bright left wall, dark right wall
    # Where no wall is within range, the camera sees the sky above and the floor below.
    assert image[0, 32] == round(cam.SKY)
    assert np.array_equal(image[:, 31:33], np.rint(camera.background[:, 31:33]))


def wall_rows(image, background):
    """Per column, how many pixel rows the wall strip covers (differs from the background)."""
    return (np.abs(image.astype(float) - np.rint(background)) > 0.5).sum(axis=0)


def test_the_closer_wall_looks_taller(straight):
    camera = cam.TrackCamera(straight, cam.CameraConfig(width=64, height=48, fov_deg=90.0))
    # 0.2 m left of the centreline: the left wall is 0.3 m away, the right one 0.7 m.
    image = camera.render(0.0, -3.0 + 0.2, 0.0)
    rows = wall_rows(image, camera.background)
    assert rows[0] > rows[-1] + 3
    # Strip height is focal * wall height / depth, so 0.7 / 0.3 times taller on the left
    # (mirrored columns 12 and 51, where the strips fit in the picture).
    depth, _ = camera.columns(0.0, -2.8, 0.0)
    expected = camera.focal * cam.WALL_HEIGHT_M / depth[[12, 51]]
    # (A strip's ends cover parts of pixels: one more or one fewer row may differ.)
    assert np.all(np.abs(rows[[12, 51]] - expected) <= 1.5), (rows[[12, 51]], expected)
    assert expected[0] / expected[1] == pytest.approx(0.7 / 0.3, rel=1e-3)
    # Turning left shows more of the left wall.
    turned = wall_rows(camera.render(0.0, -3.0, 0.3), camera.background)
    centred = wall_rows(camera.render(0.0, -3.0, 0.0), camera.background)
    assert turned[:16].sum() > centred[:16].sum()


def test_camera_noise_and_parameters(straight):
    noisy = cam.TrackCamera(straight, cam.CameraConfig(width=32, height=24, noise_std=4.0))
    clean = cam.TrackCamera(straight, cam.CameraConfig(width=32, height=24))
    a = noisy.render(0.0, -3.0, 0.0, np.random.default_rng(1)).astype(float)
    b = clean.render(0.0, -3.0, 0.0).astype(float)
    assert 3.0 < np.std(a - b) < 5.0 and abs(np.mean(a - b)) < 1.0
    with pytest.raises(ValueError, match='needs an rng'):
        noisy.render(0.0, -3.0, 0.0)
    config = cam.CameraConfig.from_params({'camera_width': 40, 'camera_fov_deg': 100})
    assert (config.width, config.height, config.fov_deg) == (40, 48, 100.0)
    for params, key in (({'camera_width': 2}, 'camera_width'),
                        ({'camera_height': 24.5}, 'camera_height'),
                        ({'camera_fov_deg': 180}, 'camera_fov_deg'),
                        ({'camera_noise_std': -1}, 'camera_noise_std'),
                        ({'camera_width': 'wide'}, 'camera_width')):
        with pytest.raises(ValueError, match=f'robot.params.{key}'):
            cam.CameraConfig.from_params(params)


def test_the_camera_env_renders_only_when_the_task_has_a_camera(spec):
    env = make_env(spec)
    obs, _ = env.reset(seed=0)
    readings = env.current_readings()
    assert set(readings) == {'camera', 'scan', 'odom'}
    image = readings['camera']
    assert (image.height, image.width, image.encoding) == (48, 64, 'mono8')
    assert obs.shape == (spec.observation.size,) == (32 * 24 + 2,)
    assert np.allclose(obs[:768], resize_area(image.data.astype(float), 24, 32).ravel() / 255.0,
                       atol=1e-6)
    assert make_env(load_spec('track_follow')).camera is None


# The spec --------------------------------------------------------------------------------------

def test_image_fields_in_the_spec(spec):
    field = spec.observation.fields[0]
    assert (field.kind, field.width, field.height, field.size) == ('image', 32, 24, 768)
    labels = spec.observation.labels()
    assert labels[:2] == ['camera.px0_0', 'camera.px0_1'] and labels[32] == 'camera.px1_0'
    assert labels[767] == 'camera.px23_31' and labels[768:] == ['odom.vx', 'odom.wz']
    assert spec.observation.image_layout() == ((0, 24, 32),)
    assert load_spec('track_follow').observation.image_layout() == ()
    # The lidar feeds the collision checks but is not part of what the policy sees or of the
    # contract a checkpoint must match.
    assert spec.observation.sources == ('camera', 'odom')
    assert set(spec.contract()['sources']) == {'camera', 'odom'}
    # Odometry first, then the image: the layout counts from where the image starts.
    raw = copy.deepcopy(spec.raw)
    raw['observation']['fields'].reverse()
    assert parse_spec(raw).observation.image_layout() == ((2, 24, 32),)
    again = spec_from_json(spec.to_json())
    assert again.observation.image_layout() == spec.observation.image_layout()
    assert again.contract() == spec.contract()


@pytest.mark.parametrize('change, message', [
    (dict(width=2), 'observation.fields[0].width: expected 4 to 256 pixels'),
    (dict(height=300), 'observation.fields[0].height: expected 4 to 256 pixels'),
    (dict(width=32.5), 'observation.fields[0].width: expected a whole number'),
    (dict(bins=8), 'observation.fields[0]: unknown key(s) bins'),
    (dict(scale=[1.0, 2.0]), 'observation.fields[0].scale: expected 1 or 768 numbers'),
])
def test_bad_image_fields_are_refused_with_the_key_path(spec, change, message):
    with pytest.raises(SpecError) as error:
        variant(spec, **change)
    assert message in str(error.value)


def test_an_image_field_needs_its_size(spec):
    raw = copy.deepcopy(spec.raw)
    del raw['observation']['fields'][0]['height']
    with pytest.raises(SpecError, match=r'observation.fields\[0\].height: missing'):
        parse_spec(raw)


# Grey levels and resizing, by hand --------------------------------------------------------------

def reading(data, encoding, height=None, width=None):
    data = np.asarray(data)
    return ImageReading(stamp_ns=1, height=height or data.shape[0],
                        width=width or data.shape[1], encoding=encoding, data=data)


def test_grey_levels_by_hand():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    # BT.601 luma: 0.299 R + 0.587 G + 0.114 B.
    assert np.allclose(image_to_gray(reading(rgb, 'rgb8')), [[76.245, 149.685, 29.07]])
    assert np.allclose(image_to_gray(reading(rgb, 'bgr8')), [[29.07, 149.685, 76.245]])
    rgba = np.concatenate([rgb, np.full((1, 3, 1), 7, np.uint8)], axis=2)
    assert np.allclose(image_to_gray(reading(rgba, 'rgba8')), [[76.245, 149.685, 29.07]])
    assert np.allclose(image_to_gray(reading(rgba[:, :, [2, 1, 0, 3]], 'bgra8')),
                       [[76.245, 149.685, 29.07]])
    mono16 = np.array([[0, 257, 65535]], dtype=np.uint16)
    assert np.allclose(image_to_gray(reading(mono16, 'mono16')), [[0.0, 1.0, 255.0]])


def test_resize_by_hand():
    image = np.arange(16, dtype=float).reshape(4, 4)
    # 2x2 blocks: mean of (0, 1, 4, 5) = 2.5, and so on.
    assert np.allclose(resize_area(image, 2, 2), [[2.5, 4.5], [10.5, 12.5]])
    # 3 pixels to 2: each output covers 1.5 input pixels, weights (2/3, 1/3) and (1/3, 2/3).
    assert np.allclose(area_weights(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    line = np.array([[3.0, 6.0, 9.0]])
    assert np.allclose(resize_area(line, 1, 2), [[4.0, 8.0]])
    # Stretching 2 to 4 repeats pixels; rows and columns are independent.
    assert np.allclose(resize_area(np.array([[1.0, 5.0]]), 2, 4), [[1, 1, 5, 5], [1, 1, 5, 5]])
    # The general path agrees with the block mean where both apply.
    rng = np.random.default_rng(0)
    big = rng.uniform(0, 255, (48, 64))
    blocks = resize_area(big, 24, 32)
    assert np.allclose(area_weights(48, 24) @ big @ area_weights(64, 32).T, blocks)
    # Area averaging keeps the mean brightness whatever the sizes.
    assert resize_area(big, 7, 9).mean() == pytest.approx(big.mean(), rel=1e-9)


def test_extract_field_scales_and_resizes(spec):
    field = spec.observation.fields[0]
    pixels = np.zeros((48, 64), dtype=np.uint8)
    pixels[:, 32:] = 255
    values = extract_field(field, reading(pixels, 'mono8'))
    assert values.shape == (768,)
    grid = values.reshape(24, 32)
    assert np.allclose(grid[:, :16], 0.0) and np.allclose(grid[:, 16:], 1.0)
    # Any camera size works: 50x70 rgb8 area-resized to 24x32.
    rgb = np.full((50, 70, 3), 51, dtype=np.uint8)
    assert np.allclose(extract_field(field, reading(rgb, 'rgb8')), 51 / 255)


@pytest.mark.parametrize('bad, message', [
    (dict(data=np.zeros((4, 5), np.uint8), height=4, width=6), 'has 20 values; a 4x6 mono8'),
    (dict(data=np.zeros((4, 6), np.uint8), encoding='yuv422'), "encoding 'yuv422' is not"),
    (dict(data=np.zeros((4, 6), np.float32)), 'mono8 pixels must be uint8'),
    (dict(data=np.zeros((4, 6), np.uint8), encoding='rgb8'), 'a 4x6 rgb8 image has 72'),
    (dict(data=np.zeros((6, 4), np.uint8), height=4, width=6), 'shaped (6, 4); expected'),
])
def test_malformed_image_readings_are_refused(spec, bad, message):
    fields = dict(stamp_ns=1, height=4, width=6, encoding='mono8')
    fields.update(bad)
    with pytest.raises(ObservationError) as error:
        extract_observation(spec, {'camera': ImageReading(**fields),
                                   'odom': make_env(spec).readings()['odom']})
    assert "source 'camera'" in str(error.value) and message in str(error.value)


# sensor_msgs/Image --------------------------------------------------------------------------

@pytest.mark.parametrize('encoding, shape, dtype', [
    ('mono8', (5, 7), np.uint8), ('rgb8', (5, 7, 3), np.uint8), ('bgra8', (5, 7, 4), np.uint8),
    ('mono16', (5, 7), np.uint16)])
def test_image_messages_round_trip(encoding, shape, dtype):
    rng = np.random.default_rng(0)
    data = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    original = ImageReading(stamp_ns=1_234_000_567, height=5, width=7, encoding=encoding,
                            data=data)
    msg = message_from_reading(original, 'camera_link')
    assert (msg.height, msg.width, msg.encoding, msg.header.frame_id) == \
        (5, 7, encoding, 'camera_link')
    wire = deserialize_message(serialize_message(msg), Image)
    back = reading_from_message('image', wire, 'camera')
    assert back.stamp_ns == original.stamp_ns and back.encoding == encoding
    assert back.data.dtype == dtype and np.array_equal(back.data, data)


def test_image_messages_with_row_padding_and_big_endian_pixels():
    values = np.array([[1, 258, 65535], [0, 4096, 77]], dtype=np.uint16)
    msg = Image(height=2, width=3, encoding='mono16', is_bigendian=1, step=8)
    rows = [values[r].astype('>u2').tobytes() + b'\xff\xff' for r in range(2)]
    msg.data = b''.join(rows)
    image = reading_from_message('image', msg, 'camera')
    assert np.array_equal(image.data, values) and image.data.dtype == np.uint16
    msg = Image(height=2, width=2, encoding='rgb8', step=8)
    msg.data = bytes([1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0])
    image = reading_from_message('image', msg, 'camera')
    assert image.data.tolist() == [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]


@pytest.mark.parametrize('fields, message', [
    (dict(data=bytes(11)), 'the image data has 11 bytes; 3 rows of step 4 need 12'),
    (dict(encoding='yuv422'), "image encoding 'yuv422' is not supported"),
    (dict(encoding='rgb8'), 'step is 4 bytes, shorter than a row of 4 rgb8 pixels (12 bytes)'),
    (dict(height=0, data=b''), 'the image is 0x4 pixels'),
])
def test_malformed_image_messages_are_refused_naming_the_source(fields, message):
    msg = Image(height=3, width=4, encoding='mono8', step=4)
    msg.data = bytes(12)
    for key, value in fields.items():
        setattr(msg, key, value)
    with pytest.raises(ObservationError) as error:
        reading_from_message('image', msg, 'camera')
    assert str(error.value).startswith("source 'camera': ") and message in str(error.value)


# The convolutional policy -------------------------------------------------------------------

def test_pooled_normalisation_by_hand():
    # Pixels at 0 and 2 (each constant), vector entry mean 5 std 3: the image gets the mean 1
    # and std 1 of all its pixel values together; the vector keeps its own.
    mean, std = pooled_image_normalization([0.0, 2.0, 5.0], [1e-3, 1e-3, 3.0], [(0, 1, 2)])
    assert np.allclose(mean, [1.0, 1.0, 5.0]) and np.allclose(std, [1.0, 1.0, 3.0], atol=1e-6)


def test_conv_policy_checkpoint_round_trip_and_refusal(tmp_path, spec):
    policy = make_policy(spec, spec.observation.size, spec.action.size, hidden=(32,),
                         head='gaussian')
    assert isinstance(policy, ConvPolicy)
    assert isinstance(make_policy(load_spec('track_follow'), 38, 2), MLPPolicy)
    rng = np.random.default_rng(0)
    obs = rng.uniform(0, 1, (50, spec.observation.size)).astype(np.float32)
    policy.set_normalization(Normalizer.fit(obs), Normalizer(mean=np.zeros(2),
                                                             std=np.array([0.1, 1.0])))
    path = save_checkpoint(tmp_path / 'conv', policy, algorithm='bc', spec=spec, config={},
                           provenance={'made_by': 'test'})
    loaded = load_checkpoint(path, expected_spec=spec)
    assert loaded.manifest['network']['type'] == 'conv'
    assert loaded.manifest['network']['image_layout'] == [[0, 24, 32]]
    with torch.no_grad():
        expected = policy(torch.from_numpy(obs[:3])).numpy()
    assert np.allclose([loaded.act(o) for o in obs[:3]], expected, atol=1e-6)
    # A task with another image size is refused, naming what differs.
    with pytest.raises(CheckpointError,
                       match=r'observation.fields\[0\].height is 24, expected 12'):
        load_checkpoint(path, expected_spec=variant(spec, width=16, height=12))
    with pytest.raises(ValueError, match='does not fit an observation of 770'):
        build_policy({**policy.description(), 'image_layout': [[10, 24, 32]]})


def test_an_image_only_policy_has_no_vector_part(tmp_path, spec):
    # Pixels alone (no odometry): the conv encoder feeds the MLP by itself.
    raw = copy.deepcopy(spec.raw)
    raw['observation']['fields'] = raw['observation']['fields'][:1]
    pixels_only = parse_spec(raw, origin='camera only')
    assert pixels_only.observation.size == 24 * 32
    env = make_env(pixels_only)
    obs, _ = env.reset(seed=0)
    policy = make_policy(pixels_only, obs.size, 2, hidden=(16,))
    policy.set_normalization(Normalizer.fit(np.stack([obs, obs + 1.0])),
                             Normalizer.identity(2))
    path = save_checkpoint(tmp_path / 'pixels', policy, algorithm='bc', spec=pixels_only,
                           config={}, provenance={'made_by': 'test'})
    action = load_checkpoint(path, expected_spec=pixels_only).act(obs)
    assert action.shape == (2,) and np.all(np.isfinite(action))
    with pytest.raises(CheckpointError, match='does not fit the running task'):
        load_checkpoint(path, expected_spec=spec)


# Training and running a camera policy --------------------------------------------------------

@pytest.fixture(scope='module')
def camera_bc(spec, tmp_path_factory):
    """BC on ~600 expert samples from the camera sim (6 episode starts, 100 steps each)."""
    from ilrl_ros.core.algorithms.bc import BCConfig, train
    env, expert = make_env(spec), make_expert(spec)
    obs, act, episode = [], [], []
    for ep in range(6):
        o, _ = env.reset(seed=ep)
        for _ in range(100):
            a = expert.act(env.current_readings())
            obs.append(o), act.append(a), episode.append(ep)
            o, *_ = env.step(a)
    n = len(obs)
    data = Demonstrations(observations=np.array(obs, np.float32),
                          actions=np.array(act, np.float32), episode=np.array(episode),
                          stamp_ns=np.arange(n, dtype=np.int64), reward=np.full(n, np.nan),
                          spec_json=spec.to_json())
    with torch_settings(1):
        result = train(data, BCConfig(head='deterministic', hidden=(64, 64), steps=300,
                                      batch_size=64, log_every=50, val_fraction=0.34))
    path = save_checkpoint(tmp_path_factory.mktemp('camera') / 'bc', result.policy,
                           algorithm='bc', spec=spec, config=result.config,
                           provenance={'made_by': 'test_camera'})
    return result, data, path


def test_a_camera_policy_trains_with_behavior_cloning(camera_bc):
    result, data, _ = camera_bc
    assert isinstance(result.policy, ConvPolicy)
    # Squared error in normalised action units, summed over the two actions: predicting the
    # mean action would score about 2 on the held-out episodes (this run: about 0.01).
    assert result.val_loss < 0.1, result.val_loss
    assert result.train_loss < 0.05, result.train_loss


def test_a_camera_policy_drives_the_mock_robot_through_the_policy_node(camera_bc, spec):
    from ilrl_ros.graph import Graph, GraphConfig
    _, _, path = camera_bc
    graph = Graph(GraphConfig(task=TASK, checkpoint=str(path), expert=False))
    probe = Probe(TASK, graph.context)
    observations = []
    probe.create_subscription(Float32MultiArray, 'observation',
                              lambda m: observations.append(np.array(m.data)), qos.SENSOR)
    graph.add_node(probe)
    with graph:
        robot = graph.nodes['mock_robot']
        wait_for(lambda: len(probe.commands) >= 40 and robot.steps >= 40 and observations, 60,
                 '40 commands from the camera policy, each moving the robot')
        counts = dict(graph.nodes['policy']._counts)
    commands = np.array([v for _, v in probe.commands])
    assert np.all(np.isfinite(commands))
    assert np.all(commands >= spec.action.low - 1e-9)
    assert np.all(commands <= spec.action.high + 1e-9)
    # The policy acted on real camera observations: no input errors, no zero fallbacks.
    assert counts['errors'] == 0 and counts['commands'] >= 40, counts
    assert np.abs(commands[:, 0]).max() > 0.05
    vector = observations[-1]
    assert vector.shape == (spec.observation.size,)
    assert 0.0 <= vector[:768].min() and vector[:768].max() <= 1.0 and vector[:768].std() > 0.05


def test_recorded_camera_bags_convert_to_datasets_with_image_columns(tmp_path, spec):
    from ilrl_ros.bag import open_bag
    from ilrl_ros.graph import Graph, GraphConfig
    graph = Graph(GraphConfig(task=TASK, expert_drive=True, record=True,
                              bag_dir=str(tmp_path), bag_name='camera'))
    probe = Probe(TASK, graph.context)
    graph.add_node(probe)
    with graph:
        recorder = graph.nodes['demo_recorder']
        wait_for(lambda: recorder.status()['counts'].get('/camera/image_raw', 0) >= 60
                 and recorder.status()['counts'].get('/cmd_vel', 0) >= 60, 60,
                 '60 recorded images and commands')
        bag, counts = recorder.stop_recording()
    data, report = bag_to_dataset(bag, spec)
    assert len(data) >= 40, report.summary()
    assert data.observations.shape[1] == 770
    images = data.observations[:, :768]
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.05
    # Each row's image columns are the recorded Image, resized and scaled; and the recorded
    # Image is what the camera sees from the recorded odometry pose.
    camera = make_env(spec).camera
    with open_bag(bag) as reader:
        msgs = {}
        for message in reader.messages(['/camera/image_raw', '/odom']):
            msg = reader.deserialize(message)
            kind = 'image' if message.topic.endswith('image_raw') else 'odometry'
            reading = reading_from_message(kind, msg, kind)
            msgs.setdefault(reading.stamp_ns, {})[kind] = reading
    checked = 0
    for row, stamp in enumerate(data.stamp_ns[:20]):
        found = msgs.get(int(stamp), {})
        if 'image' not in found or 'odometry' not in found:
            continue
        image, odom = found['image'], found['odometry']
        expected = resize_area(image.data.astype(float), 24, 32).ravel() / 255.0
        assert np.allclose(images[row], expected, atol=1e-6)
        # (The yaw went through a quaternion: a pixel may round the other way.)
        rendered = camera.render(odom.x, odom.y, odom.yaw).astype(int)
        assert np.abs(image.data.astype(int) - rendered).max() <= 1
        checked += 1
    assert checked >= 10
