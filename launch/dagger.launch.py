"""DAgger on the simulated loop: the sim graph plus the ``ilrl dagger`` driver.

Mock robot, observation, policy, reward monitor, episode manager, the expert (labelling on
expert/action, not driving) and the demo recorder (waiting for ~/start), built by
ilrl_ros.graph as launch/sim.launch.py builds them; then ``ilrl dagger`` runs the rounds
against them: the expert drives round 0, the policy the later ones, each round is recorded,
converted, aggregated and trained on, and each checkpoint is swapped into the running policy
node by parameter. The launch ends when the driver does; results are in out_dir.

    ros2 launch ilrl_ros dagger.launch.py rounds:=4 episodes_per_round:=3
    ros2 launch ilrl_ros dagger.launch.py label_topic:=teleop/cmd_vel label_tolerance_s:=0.2
    ros2 launch ilrl_ros dagger.launch.py run_driver:=false   # graph only; run ilrl dagger

Without ``ros2 launch``, ``ilrl dagger --graph`` starts the same graph (as ``ilrl sim``)
and runs the same rounds.
"""

from dataclasses import replace

from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, OpaqueFunction,
                            RegisterEventHandler)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from ilrl_ros.dagger_live import launch_plan
from ilrl_ros.graph import launch_arguments, truthy
from ilrl_ros.launch_actions import launch_nodes

# The arguments of the graph come from ilrl_ros.graph.GraphConfig; those of the driver are
# this file's.
GRAPH_ARGUMENTS = ('task', 'robot_mode', 'clock', 'activate')
DRIVER_ARGUMENTS = [
    ('rounds', '4', 'DAgger rounds, round 0 (expert demonstrations) included.'),
    ('episodes_per_round', '3', 'Finished episodes driven per round.'),
    ('schedule', 'ross', 'Beta schedule: ross (expert in round 0 only) or exponential.'),
    ('label_topic', 'expert/action', "Where labels come from: the expert node's "
     'expert/action, or a teleoperator topic such as teleop/cmd_vel (then also recorded).'),
    ('label_tolerance_s', '', 'How long a label stays valid for a later command, in '
     "seconds; empty: the converter's default."),
    ('dart_noise_std', '', "DART noise on the expert's driven command: one std or one per "
     'action field, comma-separated; empty: none.'),
    ('bc_steps', '2000', 'Behavior cloning gradient steps per round.'),
    ('eval_episodes', '3', 'Episodes of the final policy after the last round.'),
    ('out_dir', 'dagger_out', 'Output folder: bags, datasets, checkpoints, logs, results.'),
    ('seed', '0', 'Seed of the mock robot start states and of the driver.'),
    ('run_driver', 'true', 'false: start only the graph and run `ilrl dagger` yourself.'),
]
ARGUMENTS = launch_arguments(GRAPH_ARGUMENTS) + DRIVER_ARGUMENTS + [
    ('params_file', PathJoinSubstitution([FindPackageShare('ilrl_ros'), 'config', 'sim.yaml']),
     'Parameter YAML for the nodes; the arguments above override it.'),
]


def _actions(context):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    config, command = launch_plan(values)
    # activate:=false leaves the lifecycle nodes configured for a manager (then run the
    # driver yourself once they are active: run_driver:=false).
    config = replace(config, activate=truthy(values['activate']))
    actions = launch_nodes(config, values['params_file'])
    if command:
        driver = ExecuteProcess(cmd=command, name='ilrl_dagger', output='screen')
        actions += [driver, RegisterEventHandler(OnProcessExit(
            target_action=driver,
            on_exit=[EmitEvent(event=Shutdown(reason='ilrl dagger finished'))]))]
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_actions)])
