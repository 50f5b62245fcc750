"""track_obstacle over ROS 2: the mock robot's lidar sees the post, the policy node runs an MDN.

The graph (mock robot in lock step, policy, episode manager, ...) runs the task with a
mixture-density BC checkpoint; every scan the mock robot publishes is the obstacle course's
raycast from the pose its odometry reports, post included.
"""

import math

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import LaserScan
import torch

from ilrl_ros import qos
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.networks.mixture import MixtureDensityPolicy
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.world import make_world
from ilrl_ros.core.world.track_geometry import make_track
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.messages import stamp_to_ns
from ilrl_testing import Probe, wait_for

# Starts 9, 10 and 11 have the post in lidar range (checked in the test).
SEED = 9


class Sensors(Node):
    def __init__(self, context):
        super().__init__('sensors', context=context)
        self.scans, self.odoms = [], []
        self.create_subscription(LaserScan, 'scan', self.scans.append, qos.SENSOR_EVERY)
        self.create_subscription(Odometry, 'odom', self.odoms.append, qos.SENSOR_EVERY)


def test_the_graph_sees_the_post_and_runs_an_mdn_checkpoint(tmp_path):
    spec = load_spec('track_obstacle')
    torch.manual_seed(0)
    network = MixtureDensityPolicy(spec.observation.size, spec.action.size, hidden=(16,),
                                   components=2)
    path = save_checkpoint(tmp_path / 'mdn', network, algorithm='bc', spec=spec,
                           config={'head': 'mdn', 'components': 2}, provenance={'test': True})
    graph = Graph(GraphConfig(task='track_obstacle', checkpoint=str(path), seed=SEED))
    sensors, probe = Sensors(graph.context), Probe('track_obstacle', graph.context)
    graph.add_node(sensors)
    graph.add_node(probe)
    with graph:
        wait_for(lambda: len(probe.commands) > 20 and len(sensors.scans) > 20, 60,
                 '20 commands from the MDN policy')
        assert graph.nodes['policy'].current_checkpoint == path
        scans, odoms = list(sensors.scans), list(sensors.odoms)
    world, bare = make_world(spec), make_track('oval')
    odom_by_stamp = {stamp_to_ns(m.header.stamp): m for m in odoms}
    compared = saw_post = 0
    for scan in scans:
        odom = odom_by_stamp.get(stamp_to_ns(scan.header.stamp))
        if odom is None:
            continue
        q = odom.pose.pose.orientation
        x, y = odom.pose.pose.position.x, odom.pose.pose.position.y
        yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y ** 2 + q.z ** 2))
        angles = scan.angle_min + scan.angle_increment * np.arange(len(scan.ranges))
        expected = world.raycast(x, y, yaw, angles, scan.range_max)
        got = np.asarray(scan.ranges, dtype=np.float64)
        assert np.array_equal(np.isinf(got), np.isinf(expected))
        finite = np.isfinite(expected)
        assert np.allclose(got[finite], expected[finite], atol=1e-4)
        saw_post += not np.array_equal(expected, bare.raycast(x, y, yaw, angles,
                                                              scan.range_max))
        compared += 1
    assert compared > 10 and saw_post > 0
