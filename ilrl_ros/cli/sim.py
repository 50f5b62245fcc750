"""`ilrl sim`: the node graph in one process, for machines without `ros2 launch`."""

import argparse
import json


def cmd_sim(args) -> int:
    from ilrl_ros.graph import config_from_flags, Graph
    config = config_from_flags(args)
    from ilrl_ros.nodes.common import StopSignals
    # SIGINT and SIGTERM alike: the nodes command zero and the recorder finishes its bag.
    signals = StopSignals()
    if config.robots > 1:
        return _run_fleet(config, signals)
    graph = Graph(config).start()
    manager = graph.nodes['episode_manager']
    try:
        signals.wait(alive=lambda: not (config.max_episodes
                                        and len(manager.results) >= config.max_episodes
                                        and manager.state != 'running'))
    finally:
        graph.close()
        signals.ignore_further()
    for result in manager.results:
        print(json.dumps(result.as_dict()))
    return 0


def _run_fleet(config, signals) -> int:
    """Run every robot until each has run max_episodes (or a signal); print their results."""
    from ilrl_ros.fleet import Fleet
    fleet = Fleet(config).start()
    managers = fleet.episode_managers()
    try:
        signals.wait(alive=lambda: not fleet.done())
    finally:
        fleet.close()
        signals.ignore_further()
    for namespace, manager in managers.items():
        for result in manager.results:
            print(json.dumps({'robot': namespace, **result.as_dict()}))
    return 0


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('sim', help='run the node graph in one process (no ros2 launch needed)',
                       description='Run mock_robot, observation, policy, reward_monitor, '
                       'episode_manager, expert (and demo_recorder) in one process, as '
                       'launch/sim.launch.py does in several. Ctrl-C stops it. --robots N runs N '
                       'robots, each in its namespace (robot_1 .. robot_N, or --namespace '
                       'NS: NS_1 .. NS_N) with its own sim clock and seed.',
                       epilog='examples:\n'
                       '  ilrl sim --task pendulum --expert-drive --episodes 2\n'
                       '  ilrl sim --robots 3 --expert-drive --episodes 2   # robot_1..3\n'
                       '  ilrl sim --namespace tb3 --checkpoint checkpoints/bc  # /tb3/...',
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    from ilrl_ros.graph import add_graph_flags
    add_graph_flags(p)
    p.set_defaults(func=cmd_sim)
