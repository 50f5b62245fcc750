"""A person's commands for demonstrations, interventions and DAgger labels: the teleop node.

    ros2 launch ilrl_ros teleop.launch.py                      # sensor_msgs/Joy on /joy
    ros2 launch ilrl_ros teleop.launch.py joy_driver:=true     # also start joy's joy_node
    ros2 launch ilrl_ros teleop.launch.py mode:=keyboard       # keys, in a new xterm
    ros2 launch ilrl_ros teleop.launch.py deadman_button:=4 axes:='[1, 3]'

It publishes the task's command type on teleop/cmd_vel, the topic the policy's
teleop_topic, `ilrl dagger --graph --label-topic` and the command arbiter's teleop source
take. Keyboard mode reads a terminal, which ros2 launch does not give its processes: the
node runs in a terminal of its own (terminal_prefix, xterm -e by default).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from ilrl_ros.graph import config_from_launch, launch_arguments

# task and namespace as the graph's launch files describe them; then the teleop node's own.
ARGUMENTS = launch_arguments(('task', 'namespace')) + [
    ('mode', 'joy', 'joy (sensor_msgs/Joy on joy_topic) or keyboard (keys in a terminal).'),
    ('topic', 'teleop/cmd_vel', "Where the person's commands go."),
    ('joy_topic', 'joy', 'The sensor_msgs/Joy topic.'),
    ('axes', '[-1]', 'Joystick axis per action field; [-1]: the left stick (1 forward, 0 '
                     'left), then the right stick.'),
    ('deadman_button', '0', 'Button held for the stick to command; -1: none.'),
    ('timeout_s', '0.5', 'A silent Joy stream is stale after this: zero once, then nothing.'),
    ('joy_driver', 'false', "Also start the joy package's joy_node (it must be installed)."),
    ('terminal_prefix', 'xterm -e', 'Keyboard mode: the command that gives the node a '
                                    'terminal.'),
]


def _nodes(context):
    from launch_ros.actions import Node
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    # A task that does not load fails the launch here in one sentence, as the graph's do.
    graph = config_from_launch({'task': values['task'], 'namespace': values['namespace']})
    keyboard = values['mode'] == 'keyboard'
    parameters = {'task': values['task'], 'mode': values['mode'], 'topic': values['topic'],
                  'joy_topic': values['joy_topic'],
                  'axes': [int(a) for a in values['axes'].strip('[] ').split(',') if a.strip()],
                  'deadman_button': int(values['deadman_button']),
                  'timeout_s': float(values['timeout_s'])}
    actions = [Node(package='ilrl_ros', executable='teleop', name='teleop', output='screen',
                    namespace=graph.namespace or None, parameters=[parameters],
                    prefix=values['terminal_prefix'] if keyboard else None)]
    if values['joy_driver'].lower() == 'true' and not keyboard:
        actions.append(Node(package='joy', executable='joy_node', name='joy_node',
                            output='screen', namespace=graph.namespace or None))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=text)
         for name, default, text in ARGUMENTS] + [OpaqueFunction(function=_nodes)])
