"""Observations: hand-binned scans, odometry and joint components, the assembler's timing rules."""

import math
from pathlib import Path
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from ilrl_ros.core.observation import (
    extract_field,
    extract_observation,
    ObservationAssembler,
    ObservationError,
    StaleObservation,
)
from ilrl_ros.core.readings import JointReading, OdomReading, ScanReading
from ilrl_ros.core.spec import parse_spec, tasks_dir

REPO = Path(__file__).resolve().parents[2]
DEG = math.pi / 180.0
SECOND = 1_000_000_000


def make_spec(task: str, fields: list, **observation):
    """A bundled spec with its observation fields (and observation keys) replaced."""
    raw = yaml.safe_load((tasks_dir() / f'{task}.yaml').read_text())
    raw['observation']['fields'] = fields
    raw['observation'].update(observation)
    return parse_spec(raw)


def scan(ranges, angle_min=-math.pi + 0.5 * DEG, increment=DEG, range_min=0.0, stamp_ns=0):
    # The default rays sit half a degree inside each degree, so ray j lies in 45-degree
    # sector j // 45 with no ray on a sector boundary.
    return ScanReading(stamp_ns=stamp_ns, angle_min=angle_min, angle_increment=increment,
                       range_min=range_min, range_max=10.0,
                       ranges=np.asarray(ranges, dtype=np.float64))


def odom(stamp_ns=0, x=0.0, y=0.0, yaw=0.0, vx=0.0, vy=0.0, wz=0.0):
    return OdomReading(stamp_ns=stamp_ns, x=x, y=y, yaw=yaw, vx=vx, vy=vy, wz=wz)


@pytest.fixture(scope='module')
def eight_bins():
    spec = make_spec('track_follow', [{'source': 'scan', 'bins': 8, 'max_range': 2.0,
                                       'scale': 0.5}])
    return spec.observation.fields[0]


def test_scan_binning_by_hand(eight_bins):
    ranges = np.full(360, 1.5)
    ranges[10] = 0.4                # sector 0 (rays 0-44): closest 0.4
    ranges[45:90] = np.inf          # sector 1: nothing within range -> max_range 2.0
    ranges[100] = -np.inf           # sector 2: closer than range_min -> 0
    ranges[135:180] = 5.0           # sector 3: beyond max_range -> clipped to 2.0
    ranges[180], ranges[181] = 0.25, 0.3  # sector 4: 0.25
    #                                 sector 5: 1.5 everywhere
    ranges[300], ranges[301] = 1.0, np.inf  # sector 6: 1.0
    ranges[359] = 0.8               # sector 7 (last ray, 179.5 degrees): 0.8
    raw = np.array([0.4, 2.0, 0.0, 2.0, 0.25, 1.5, 1.0, 0.8])
    values = extract_field(eight_bins, scan(ranges))
    # scale 0.5, offset 0
    np.testing.assert_allclose(values, raw * 0.5, rtol=0, atol=1e-12)


def test_scan_sectors_start_behind_the_robot(eight_bins):
    # A scan from 0 rad (straight ahead) counter-clockwise, as many lidars publish: the ray
    # straight ahead (0.5 deg) falls in sector 4 (0 to 45 degrees), the one at 90.5 degrees
    # in sector 6 (90 to 135), the one at 270.5 = -89.5 degrees in sector 2 (-90 to -45).
    ranges = np.full(360, 1.5)
    ranges[0], ranges[90], ranges[270] = 0.2, 0.6, 1.2
    values = extract_field(eight_bins, scan(ranges, angle_min=0.5 * DEG)) / 0.5
    np.testing.assert_allclose(values, [1.5, 1.5, 1.2, 1.5, 0.2, 1.5, 0.6, 1.5], atol=1e-12)


def test_finite_returns_below_range_min_count_as_nothing_seen(eight_bins):
    ranges = np.full(360, 1.5)
    ranges[3] = 0.05   # below range_min 0.12: an invalid return, not an obstacle
    ranges[50] = -np.inf  # REP 117: an object closer than range_min
    values = extract_field(eight_bins, scan(ranges, range_min=0.12)) / 0.5
    np.testing.assert_allclose(values, [1.5, 0.0] + [1.5] * 6, atol=1e-12)


def test_nan_ranges_are_refused_naming_the_source(eight_bins):
    ranges = np.full(360, 1.0)
    ranges[[5, 6]] = np.nan
    with pytest.raises(ObservationError) as caught:
        extract_field(eight_bins, scan(ranges))
    assert "source 'scan'" in str(caught.value)
    assert '2 of 360 ranges are NaN' in str(caught.value)


def test_half_circle_scan_leaves_sectors_empty(eight_bins):
    # 180 rays from -89.5 to 89.5 degrees cover sectors 2 to 5 only.
    half = scan(np.full(180, 1.0), angle_min=-math.pi / 2 + 0.5 * DEG)
    with pytest.raises(ObservationError) as caught:
        extract_field(eight_bins, half)
    assert "source 'scan'" in str(caught.value)
    assert 'sectors [0, 1, 6, 7] of 8 contain no ray' in str(caught.value)


def test_malformed_scans(eight_bins):
    with pytest.raises(ObservationError, match='has no ranges'):
        extract_field(eight_bins, scan([]))
    with pytest.raises(ObservationError, match='increment non-zero'):
        extract_field(eight_bins, scan(np.ones(360), increment=0.0))
    with pytest.raises(ObservationError, match='expected a ScanReading, got OdomReading'):
        extract_field(eight_bins, odom())


def test_odometry_components_offset_and_scale():
    spec = make_spec('track_follow', [
        {'source': 'odom', 'components': ['x', 'y', 'yaw', 'cos_yaw', 'sin_yaw', 'vx', 'vy',
                                          'wz'],
         'offset': [1.0, 0, 0, 0, 0, 0, 0, 0], 'scale': [1, 1, 1, 1, 1, 5.0, 1, 1]}])
    reading = odom(x=1.0, y=-2.0, yaw=math.pi / 3, vx=0.2, vy=0.0, wz=-0.5)
    values = extract_field(spec.observation.fields[0], reading)
    # x - 1 = 0; cos(60 deg) = 0.5, sin(60 deg) = sqrt(3)/2; vx * 5 = 1.
    np.testing.assert_allclose(
        values, [0.0, -2.0, math.pi / 3, 0.5, math.sqrt(3) / 2, 1.0, 0.0, -0.5], atol=1e-12)


@pytest.fixture(scope='module')
def two_joints():
    spec = make_spec('pendulum', [{'source': 'joint_states', 'joints': ['elbow', 'wrist'],
                                   'components': ['position', 'velocity', 'effort', 'cos',
                                                  'sin']}])
    return spec.observation.fields[0]


def joints(names=('shoulder', 'wrist', 'elbow'), position=(0.1, math.pi / 2, math.pi),
           velocity=(1.0, 2.0, 3.0), effort=(4.0, 5.0, 6.0)):
    return JointReading(stamp_ns=0, names=tuple(names), position=np.array(position),
                        velocity=np.array(velocity), effort=np.array(effort))


def test_joint_components_in_the_spec_order(two_joints):
    values = extract_field(two_joints, joints())
    # The spec's joint order, not the message's: elbow (pi, 3, 6, cos pi, sin pi), then
    # wrist (pi/2, 2, 5, cos pi/2, sin pi/2).
    np.testing.assert_allclose(values, [math.pi, 3.0, 6.0, -1.0, 0.0,
                                        math.pi / 2, 2.0, 5.0, 0.0, 1.0], atol=1e-12)


def test_unknown_joint_is_refused(two_joints):
    with pytest.raises(ObservationError) as caught:
        extract_field(two_joints, joints(names=('shoulder', 'wrist', 'knee')))
    assert "joint 'elbow' is not in the message" in str(caught.value)
    assert "source 'joint_states'" in str(caught.value)


def test_joint_array_lengths_must_match_the_names(two_joints):
    with pytest.raises(ObservationError, match='3 joint names but 2 position values'):
        extract_field(two_joints, joints(position=(0.1, 0.2)))
    with pytest.raises(ObservationError, match='3 joint names but 0 velocity values'):
        extract_field(two_joints, joints(velocity=()))
    with pytest.raises(ObservationError, match='velocity is inf; expected a finite number'):
        extract_field(two_joints, joints(velocity=(0.0, np.inf, 0.0)))


def test_extract_observation_needs_every_source():
    spec = make_spec('track_follow', [{'source': 'scan', 'bins': 4, 'max_range': 3.5},
                                      {'source': 'odom', 'components': ['vx']}])
    vector = extract_observation(spec, {'scan': scan(np.full(360, 1.0)), 'odom': odom(vx=0.1)})
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector, [1.0, 1.0, 1.0, 1.0, 0.1], atol=1e-7)
    with pytest.raises(StaleObservation, match=r"source 'odom' \(odom\) has no reading"):
        extract_observation(spec, {'scan': scan(np.full(360, 1.0))})


# The assembler, on the bundled track_follow spec (max_age_s 0.5, sync_tolerance_s 0) or
# that spec with a 10 ms tolerance.

def full_scan(stamp_ns):
    return scan(np.full(360, 1.0), stamp_ns=stamp_ns)


def ms(milliseconds):
    return SECOND + milliseconds * 1_000_000


@pytest.fixture(scope='module')
def track_spec():
    raw = yaml.safe_load((tasks_dir() / 'track_follow.yaml').read_text())
    return parse_spec(raw)


@pytest.fixture(scope='module')
def tolerant_spec():
    raw = yaml.safe_load((tasks_dir() / 'track_follow.yaml').read_text())
    raw['observation']['sync_tolerance_s'] = 0.01
    return parse_spec(raw)


def test_poll_emits_once_per_synchronised_set(track_spec):
    assembler = ObservationAssembler(track_spec)
    assembler.update('scan', full_scan(ms(0)))
    assert assembler.poll() is None  # no odometry yet
    assembler.update('odom', odom(ms(0), vx=0.11))
    first = assembler.poll()
    assert first.stamp_ns == ms(0)
    assert first.vector.shape == (38,)
    # vx 0.11 m/s * 4.545... = 0.5; the scan of 1 m * 0.2857 = 0.2857.
    assert first.vector[36] == pytest.approx(0.5)
    assert first.vector[0] == pytest.approx(1.0 / 3.5)
    assert assembler.poll() is None  # nothing new
    assembler.update('scan', full_scan(ms(100)))
    assert assembler.poll() is None  # scan at 100 ms, odometry still at 0
    assembler.update('odom', odom(ms(100) + 1))
    assert assembler.poll() is None  # 1 ns apart with a tolerance of 0
    assembler.update('scan', full_scan(ms(100) + 1))
    assert assembler.poll().stamp_ns == ms(100) + 1


def test_poll_within_the_sync_tolerance(tolerant_spec):
    assembler = ObservationAssembler(tolerant_spec)
    assembler.update('scan', full_scan(ms(100)))
    assembler.update('odom', odom(ms(105)))
    readings, stamp = assembler.poll_readings()
    assert stamp == ms(105)  # the newest stamp of the set
    assert readings['scan'].stamp_ns == ms(100)
    assert assembler.poll_readings() is None
    assembler.update('odom', odom(ms(200)))
    assembler.update('scan', full_scan(ms(230)))
    assert assembler.poll() is None  # 30 ms apart
    # An older reading never replaces a newer one.
    assembler.update('odom', odom(ms(150)))
    assert assembler.readings()['odom'].stamp_ns == ms(200)
    assembler.update('odom', odom(ms(225)))
    assert assembler.poll().stamp_ns == ms(230)


def test_latest_raises_when_an_input_is_missing_or_stale(track_spec):
    assembler = ObservationAssembler(track_spec)
    with pytest.raises(StaleObservation, match="no message yet on 'scan'"):
        assembler.latest(ms(0))
    assembler.update('scan', full_scan(ms(0)))
    assembler.update('odom', odom(ms(400)))
    # 500 ms old is still allowed (max_age_s 0.5); 1 ns more is not.
    assert assembler.latest(ms(500)).stamp_ns == ms(400)
    with pytest.raises(StaleObservation) as caught:
        assembler.latest(ms(500) + 1)
    assert "'scan' is 0.500 s old" in str(caught.value)
    assert 'observation.max_age_s' in str(caught.value)
    assembler.update('scan', full_scan(ms(1000)))
    with pytest.raises(StaleObservation, match="'odom' is 0.600 s old"):
        assembler.latest(ms(1000))


def test_clear_drops_older_readings_and_ignores_them_afterwards(track_spec):
    assembler = ObservationAssembler(track_spec)
    assembler.update('scan', full_scan(ms(0)))
    assembler.update('odom', odom(ms(0)))
    assembler.update('odom', odom(ms(600)))
    assembler.clear(not_before_ns=ms(500))
    assert list(assembler.readings()) == ['odom']  # the 600 ms reading survives
    assembler.update('scan', full_scan(ms(400)))  # from before the reset: ignored
    assert 'scan' not in assembler.readings()
    assert assembler.poll() is None
    assembler.update('scan', full_scan(ms(600)))
    assert assembler.poll().stamp_ns == ms(600)
    # Without an argument, everything is forgotten.
    assembler.clear()
    assert assembler.readings() == {}
    assert assembler.newest_stamp_ns() == -1


def test_assembler_refuses_an_unknown_source(track_spec):
    with pytest.raises(KeyError, match='imu'):
        ObservationAssembler(track_spec).update('imu', odom())


def test_the_core_imports_without_ros():
    code = textwrap.dedent("""
        import importlib, sys
        for name in ('rclpy', 'rosbag2_py', 'rosidl_runtime_py', 'sensor_msgs',
                     'geometry_msgs', 'nav_msgs', 'std_msgs', 'builtin_interfaces'):
            sys.modules[name] = None  # any import of these now raises ImportError
        for name in ('ilrl_ros.core', 'ilrl_ros.core.spec', 'ilrl_ros.core.readings',
                     'ilrl_ros.core.observation', 'ilrl_ros.core.episode.reward',
                     'ilrl_ros.core.episode.termination',
                     'ilrl_ros.core.world.track_geometry', 'ilrl_ros.core.envs.track_follow',
                     'ilrl_ros.core.world.pendulum_dynamics', 'ilrl_ros.core.envs.pendulum',
                     'ilrl_ros.core.experts.pure_pursuit',
                     'ilrl_ros.core.experts.pendulum_swingup', 'ilrl_ros.core.tasks',
                     'ilrl_ros.core.data', 'ilrl_ros.core.networks',
                     'ilrl_ros.core.checkpoint', 'ilrl_ros.core.train_log',
                     'ilrl_ros.core.algorithms.bc'):
            module = importlib.import_module(name)
        from ilrl_ros.core.spec import load_spec
        from ilrl_ros.core.tasks import make_env
        make_env(load_spec('pendulum')).reset(seed=0)
        import ilrl_ros.core
        assert ilrl_ros.core.__file__.startswith(sys.argv[1]), ilrl_ros.core.__file__
        loaded = sorted(m for m in sys.modules if m.startswith(('rclpy', 'rosidl', 'rosbag2'))
                        and sys.modules[m] is not None)
        assert not loaded, loaded
        print('ok')
    """)
    result = subprocess.run([sys.executable, '-c', code, str(REPO)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'
