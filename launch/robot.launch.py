"""The learned loop against a real robot's topics (no mock robot).

    ros2 launch ilrl_ros robot.launch.py checkpoint:=/path/to/checkpoints/bc
    ros2 launch ilrl_ros robot.launch.py record:=true   # then: ros2 service call \
        /demo_recorder/start std_srvs/srv/Trigger       # to record teleoperated demos

The robot's driver must publish the task's sources (track_follow: /scan, /odom) and take
its command (/cmd_vel). config/turtlebot3.yaml is a commented example for a TurtleBot3-class
base; pass your own with params_file:=... . Episodes end by the task's termination terms;
the episode manager then waits for an operator to call /episode_manager/confirm_reset.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    ('task', 'track_follow', 'Task spec: bundled name or YAML path; must match the robot.'),
    ('checkpoint', '', 'Checkpoint folder the policy starts with; empty: it commands nothing.'),
    ('policy_mode', 'timer', 'Policy: timer (fixed rate, for unsynchronised drivers) or event.'),
    ('record', 'false', 'true: run demo_recorder (started by its ~/start service).'),
    ('bag_dir', 'bags', 'Where the recorder writes bags.'),
    ('params_file', PathJoinSubstitution([FindPackageShare('ilrl_ros'), 'config',
                                          'turtlebot3.yaml']),
     'Parameter YAML for the nodes; the arguments above override it.'),
]


def _nodes(context):
    from ilrl_ros.graph import GraphConfig, launch_nodes, truthy

    def arg(name):
        return LaunchConfiguration(name).perform(context)

    config = GraphConfig(task=arg('task'), checkpoint=arg('checkpoint'), robot=False,
                         policy_mode=arg('policy_mode'), expert=False,
                         record=truthy(arg('record')), record_autostart=False,
                         bag_dir=arg('bag_dir'))
    return launch_nodes(config, arg('params_file'))


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_nodes)])
