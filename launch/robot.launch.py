"""The learned loop against a real robot's topics (no mock robot).

    ros2 launch ilrl_ros robot.launch.py checkpoint:=/path/to/checkpoints/bc
    ros2 launch ilrl_ros robot.launch.py namespace:=tb3   # the robot's topics under /tb3
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

from ilrl_ros.graph import config_from_launch, launch_arguments
from ilrl_ros.launch_actions import launch_nodes

# The graph's arguments come from ilrl_ros.graph.GraphConfig (one description for every launch
# file and `ilrl sim`); a real robot has no mock robot and no expert, and the recorder waits
# for its ~/start service.
ARGUMENTS = launch_arguments(('task', 'namespace', 'checkpoint', 'policy_mode', 'record',
                              'bag_dir', 'activate'),
                             policy_mode='timer') + [
    ('params_file', PathJoinSubstitution([FindPackageShare('ilrl_ros'), 'config',
                                          'turtlebot3.yaml']),
     'Parameter YAML for the nodes; the arguments above override it.'),
]


def _nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    config = config_from_launch(values, robot=False, expert=False, record_autostart=False)
    return launch_nodes(config, values['params_file'])


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_nodes)])
