"""The simulated loop: a mock robot and the learning nodes around it.

Mock robot, observation, policy, reward monitor, episode manager, expert, and (with
record:=true) the demonstration recorder.

    ros2 launch ilrl_ros sim.launch.py                                   # idle policy
    ros2 launch ilrl_ros sim.launch.py expert_drive:=true record:=true   # record demos
    ros2 launch ilrl_ros sim.launch.py checkpoint:=/path/to/checkpoints/bc
    ros2 param set /policy checkpoint /path/to/other   # swap while it runs
    ros2 launch ilrl_ros sim.launch.py robots:=3 expert_drive:=true   # /robot_1 .. /robot_3
    ros2 launch ilrl_ros sim.launch.py namespace:=tb3   # one robot under /tb3

`ilrl sim` runs the same nodes with the same parameters in one process, for machines
without `ros2 launch`; both take the per-node parameters from ilrl_ros.graph.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from ilrl_ros.graph import config_from_launch, launch_arguments
from ilrl_ros.launch_actions import launch_nodes

# The graph's arguments come from ilrl_ros.graph.GraphConfig (one description for this file,
# robot.launch.py, dagger.launch.py and `ilrl sim`); only the parameter file is this file's.
ARGUMENTS = launch_arguments() + [
    ('params_file', PathJoinSubstitution([FindPackageShare('ilrl_ros'), 'config', 'sim.yaml']),
     'Parameter YAML for the nodes; the arguments above override it.'),
]


def _nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    return launch_nodes(config_from_launch(values, robot=True, expert=True),
                        values['params_file'])


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_nodes)])
