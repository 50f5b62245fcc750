"""launch_ros actions for the graph: what the launch files start, from ``GraphConfig``.

Apart from ``ilrl_ros.graph`` (the description) and ``ilrl_ros.fleet`` (N robots of it),
because it needs both; the launch files import ``launch_nodes`` from here.
"""

from ilrl_ros.fleet import file_parameters, launch_plan
from ilrl_ros.graph import GraphConfig, LIFECYCLE_NODES


def launch_nodes(config: GraphConfig, params_file: str) -> list:
    """launch_ros actions for the graph: the parameter file, then the per-node values.

    The lifecycle nodes (``LIFECYCLE_NODES``) are launch_ros LifecycleNodes that start
    unconfigured; the launch configures each, and once it is inactive after configuring,
    activates it (unless ``config.activate`` is false: then they wait, configured, for a
    lifecycle manager). A later deactivate (``ros2 lifecycle set /policy deactivate``) is
    left alone: the activation follows the first configure only.
    """
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.actions import LifecycleNode, Node
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition


    def change(node, transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    actions = []
    # One robot or N (config.robots), each node in its robot's namespace (ilrl_ros.fleet).
    for name, namespace, remaps, overrides in launch_plan(config):
        parameters = [*file_parameters(params_file, name, namespace), overrides]
        if name not in LIFECYCLE_NODES:
            actions.append(Node(package='ilrl_ros', executable=name, name=name,
                                output='screen', namespace=namespace or None,
                                remappings=remaps, parameters=parameters))
            continue
        node = LifecycleNode(package='ilrl_ros', executable=name, name=name, output='screen',
                             namespace=namespace or '', remappings=remaps,
                             parameters=[*parameters, {'start_state': 'unconfigured'}])
        actions += [node, change(node, Transition.TRANSITION_CONFIGURE)]
        if config.activate:
            actions.append(RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
                entities=[change(node, Transition.TRANSITION_ACTIVATE)], handle_once=True)))
    return actions
