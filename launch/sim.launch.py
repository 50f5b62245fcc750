"""The simulated loop: a mock robot and the learning nodes around it.

Mock robot, observation, policy, reward monitor, episode manager, expert, and (with
record:=true) the demonstration recorder.

    ros2 launch ilrl_ros sim.launch.py                                   # idle policy
    ros2 launch ilrl_ros sim.launch.py expert_drive:=true record:=true   # record demos
    ros2 launch ilrl_ros sim.launch.py checkpoint:=/path/to/checkpoints/bc
    ros2 param set /policy checkpoint /path/to/other   # swap while it runs

`ilrl sim` runs the same nodes with the same parameters in one process, for machines
without `ros2 launch`; both take the per-node parameters from ilrl_ros.graph.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    ('task', 'track_follow',
     'Task spec: bundled name (track_follow, track_follow_camera, pendulum) or YAML path.'),
    ('checkpoint', '', 'Checkpoint folder the policy starts with; empty: it commands nothing.'),
    ('robot_mode', 'lock_step', 'Mock robot stepping: lock_step (deterministic) or free_run.'),
    ('clock', 'sim', 'sim: simulation time on /clock (use_sim_time); wall: real time.'),
    ('real_time_factor', '1.0', 'free_run speed: simulated seconds per wall second.'),
    ('policy_mode', 'event', 'Policy: event (each new observation) or timer (fixed rate).'),
    ('expert_drive', 'false', 'true: the expert drives the robot (demonstrations).'),
    ('record', 'false', 'true: run demo_recorder on the task topics.'),
    ('record_autostart', 'true', 'false: the recorder waits for ~/start.'),
    ('bag_dir', 'bags', 'Where the recorder writes bags.'),
    ('seed', '0', 'Start-state seed of the mock robot.'),
    ('max_episodes', '0', 'Episode manager stops resetting after this many (0: never).'),
    ('params_file', PathJoinSubstitution([FindPackageShare('ilrl_ros'), 'config', 'sim.yaml']),
     'Parameter YAML for the nodes; the arguments above override it.'),
]


def _nodes(context):
    from ilrl_ros.graph import GraphConfig, launch_nodes, truthy

    def arg(name):
        return LaunchConfiguration(name).perform(context)

    config = GraphConfig(
        task=arg('task'), checkpoint=arg('checkpoint'), robot=True,
        robot_mode=arg('robot_mode'), clock=arg('clock'),
        real_time_factor=float(arg('real_time_factor')), policy_mode=arg('policy_mode'),
        expert=True, expert_drive=truthy(arg('expert_drive')), record=truthy(arg('record')),
        record_autostart=truthy(arg('record_autostart')), bag_dir=arg('bag_dir'),
        seed=int(arg('seed')), max_episodes=int(arg('max_episodes')))
    return launch_nodes(config, arg('params_file'))


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_nodes)])
