"""Start an ilrl_ros node with its stop signals caught from the first instruction.

A node's module imports rclpy, NumPy and PyTorch before its ``main`` can install signal
handlers; a Ctrl-C in those seconds (``ros2 launch`` sends one to every process it starts)
would end the process with a KeyboardInterrupt traceback. The console scripts and the
``ros2 run`` launchers enter here instead: this module imports only the standard library,
notes any SIGINT / SIGTERM that arrives while the node's module loads, and the node's
``run`` then treats it as the first stop signal (the node exits 0 without starting).

    python -m ilrl_ros.nodes.start policy --ros-args -p task:=pendulum
"""

import importlib
import signal
import sys

NODES = ('mock_robot', 'observation', 'policy', 'reward_monitor', 'episode_manager',
         'demo_recorder', 'expert', 'transition_publisher', 'learner', 'command_arbiter',
         'teleop')

_pending = []


def _note(signum, frame) -> None:
    _pending.append(signum)


def take_pending() -> list:
    """The stop signals that arrived before the node's own handlers were installed."""
    taken = list(_pending)
    _pending.clear()
    return taken


def start(node: str, args=None) -> int:
    """Catch stop signals, import the node's module, and run its ``main``."""
    if node not in NODES:
        sys.stderr.write(f'unknown ilrl_ros node {node!r}; expected one of {", ".join(NODES)}\n')
        return 2
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _note)
    module = importlib.import_module(f'ilrl_ros.nodes.{node}')
    return module.main(args) or 0


def _entry_point(node: str):
    def entry() -> int:
        return start(node)
    entry.__name__ = node
    entry.__doc__ = f'Console script of the {node} node.'
    return entry


# One console-script entry point per node (setup.py names them ilrl_ros.nodes.start:<node>).
globals().update({node: _entry_point(node) for node in NODES})


if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1] in ('-h', '--help'):
        sys.stderr.write(__doc__ + f'\nnodes: {", ".join(NODES)}\n')
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    name = sys.argv.pop(1)
    # Run as ilrl_ros.nodes.start, not __main__: the node's run() reads the signals noted
    # here from that module.
    from ilrl_ros.nodes import start as this_module
    sys.exit(this_module.start(name))
