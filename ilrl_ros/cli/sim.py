"""`ilrl sim`: the node graph in one process, for machines without `ros2 launch`."""

import json


def cmd_sim(args) -> int:
    from ilrl_ros.graph import config_from_flags, Graph
    config = config_from_flags(args)
    from ilrl_ros.nodes.common import StopSignals
    # SIGINT and SIGTERM alike: the nodes command zero and the recorder finishes its bag.
    signals = StopSignals()
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


def add_to(sub) -> None:
    """Add this verb's parser to the ``ilrl`` sub-commands."""
    p = sub.add_parser('sim', help='run the node graph in one process (no ros2 launch needed)',
                       description='Run mock_robot, observation, policy, reward_monitor, '
                       'episode_manager, expert (and demo_recorder) in one process, as '
                       'launch/sim.launch.py does in several. Ctrl-C stops it.')
    from ilrl_ros.graph import add_graph_flags
    add_graph_flags(p)
    p.set_defaults(func=cmd_sim)
