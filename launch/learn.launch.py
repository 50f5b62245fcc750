"""Online RL on the loop: the graph with the policy node as the actor, and the learner.

A free-running mock robot (``robot:=false``: a real robot's driver instead), the policy
node exploring as ``exploration`` says, the reward monitor, the episode manager, the
transition publisher (each step on ``transitions``), optionally the recorder (every
transition kept in the bag), and the learner, which trains on ``transitions`` and swaps each
new checkpoint into ``/policy``. The learner may run on another machine: start it there
with ``ros2 run ilrl_ros learner --ros-args -p task:=... `` and ``run_learner:=false`` here.

    ros2 launch ilrl_ros learn.launch.py task:=pendulum real_time_factor:=5
    ros2 launch ilrl_ros learn.launch.py algorithm:=td3 record:=true output_dir:=runs/td3
    ros2 launch ilrl_ros learn.launch.py teleop_topic:=teleop/command   # interventions

`ilrl learn sac --task pendulum` runs the same graph and learner without ``ros2 launch``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from ilrl_ros.graph import launch_arguments, truthy
from ilrl_ros.launch_actions import launch_nodes
from ilrl_ros.online_run import learner_parameters, learning_graph_from_launch

GRAPH_ARGUMENTS = ('task', 'clock', 'real_time_factor', 'seed', 'exploration',
                   'teleop_topic', 'record', 'bag_dir', 'activate')
LEARNER_ARGUMENTS = [
    ('algorithm', 'sac', 'Off-policy algorithm: sac, td3, ddpg or dqn.'),
    ('output_dir', 'runs/learn', 'Where the learner writes checkpoints and logs.'),
    ('swap_every', '500', 'Gradient steps between checkpoints swapped into /policy.'),
    ('updates_per_transition', '1.0', 'Most gradient steps per transition (0: no limit).'),
    ('max_transitions', '0', 'Stop learning after this many transitions (0: run on).'),
    ('demonstrations', '', 'Dataset .npz from `ilrl convert` to seed the demonstrations.'),
    ('robot', 'true', 'false: no mock robot; a real robot driver provides the topics.'),
    ('run_learner', 'true', 'false: run the learner elsewhere (another machine).'),
]
ARGUMENTS = launch_arguments(GRAPH_ARGUMENTS, exploration='sample') + LEARNER_ARGUMENTS + [
    ('params_file', PathJoinSubstitution([FindPackageShare('ilrl_ros'), 'config', 'sim.yaml']),
     'Parameter YAML for the nodes; the arguments above override it.'),
]


def _actions(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    actions = launch_nodes(learning_graph_from_launch(values), values['params_file'])
    if truthy(values['run_learner']):
        actions.append(Node(package='ilrl_ros', executable='learner', name='learner',
                            output='screen', parameters=[learner_parameters(values)]))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_actions)])
