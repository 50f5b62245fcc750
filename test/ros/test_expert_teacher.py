"""The expert node with a checkpoint teacher: it labels and drives over real ROS 2 topics."""

import numpy as np
import pytest
from rclpy.parameter import Parameter

from ilrl_ros import qos
from ilrl_ros.messages import action_from_message, action_message_class
from ilrl_ros.nodes.expert import Expert
from ilrl_testing import constant_checkpoint, Probe, wait_for

STUDENT = 'track_follow_camera'


def test_a_lidar_teacher_drives_the_camera_robot_through_the_expert_node(tmp_path):
    from ilrl_ros.graph import Graph, GraphConfig, node_parameters
    teacher = constant_checkpoint(tmp_path / 'teacher', 'track_follow', 0.1)
    config = GraphConfig(task=STUDENT, expert_drive=True, expert_source=f'checkpoint:{teacher}',
                         observation_node=False)
    assert node_parameters(config)['expert']['expert'] == f'checkpoint:{teacher}'
    graph = Graph(config)
    probe = Probe(STUDENT, graph.context)
    labels = []
    spec = probe.spec
    probe.create_subscription(action_message_class(spec.action), 'expert/action',
                              lambda m: labels.append(action_from_message(spec.action, m)),
                              qos.COMMAND)
    graph.add_node(probe)
    with graph:
        robot = graph.nodes['mock_robot']
        wait_for(lambda: len(probe.commands) >= 10 and len(labels) >= 10 and robot.steps >= 10,
                 60, '10 commands and labels from the teacher, each moving the robot')
    # The teacher's constant action, on the label topic and on the robot's command topic.
    np.testing.assert_allclose(np.array(labels[:10]), 0.1, atol=1e-6)
    np.testing.assert_allclose(np.array([v for _, v in probe.commands[:10]]), 0.1, atol=1e-6)


def test_the_expert_node_refuses_a_teacher_for_another_action_space(ros_context, tmp_path):
    pendulum = constant_checkpoint(tmp_path / 'pendulum', 'pendulum', 1.0)
    with pytest.raises(ValueError, match=f"task 'pendulum'.*student task '{STUDENT}'"):
        Expert(context=ros_context, parameter_overrides=[
            Parameter('task', value=STUDENT), Parameter('expert', value=f'checkpoint:{pendulum}')])
    with pytest.raises(ValueError, match="expert 'lqr' is not known"):
        Expert(context=ros_context, parameter_overrides=[
            Parameter('task', value=STUDENT), Parameter('expert', value='lqr')])
