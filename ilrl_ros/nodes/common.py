"""What every ilrl_ros node shares: parameter declaration, the task spec, source topics, main."""

import json
import signal
import threading

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
import rclpy
from rclpy.executors import (ExternalShutdownException, ShutdownException,
                             SingleThreadedExecutor)
from rclpy.node import Node
from std_msgs.msg import String

from ilrl_ros import qos
from ilrl_ros.core.observation import ObservationError
from ilrl_ros.core.spec import load_spec, SpecError, TaskSpec
from ilrl_ros.messages import message_class, reading_from_message


def declare(node: Node, name: str, default, description: str, read_only: bool = False):
    """Declare a parameter with a default and a description; return its value."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    return node.declare_parameter(name, default, descriptor).value


def declare_task(node: Node) -> TaskSpec:
    """Declare the ``task`` parameter and load its spec, failing loudly if it is bad."""
    task = declare(node, 'task', 'track_follow',
                   'Task spec: a bundled task name (track_follow, track_follow_camera, '
                   'pendulum) or a YAML path.',
                   read_only=True)
    try:
        return load_spec(task)
    except SpecError as error:
        node.get_logger().fatal(str(error))
        raise


def declare_sync_tolerance(node: Node) -> float:
    """Declare ``sync_tolerance_s``: how far apart the stamps of one observation may be."""
    return declare(node, 'sync_tolerance_s', -1.0, 'Stamps of the inputs that form one '
                   "observation must agree to within this many seconds (a real robot's "
                   "scan and odometry are not stamped together); negative: the task spec's "
                   'observation.sync_tolerance_s.', read_only=True)


def refuse(reason: str) -> SetParametersResult:
    return SetParametersResult(successful=False, reason=reason)


def accept() -> SetParametersResult:
    return SetParametersResult(successful=True)


class SourceSubscriptions:
    """Subscribes to a spec's sources and hands each message on as a core reading.

    A message that cannot be converted is reported through ``on_error(source, text)``;
    it is never passed on.
    """

    def __init__(self, node: Node, spec: TaskSpec, sources, on_reading, on_error,
                 callback_group=None, qos_profile=qos.SENSOR):
        self.subscriptions = []
        for name in sources:
            source = spec.sources[name]

            def callback(msg, source=source):
                try:
                    reading = reading_from_message(source.kind, msg, source.name)
                except ObservationError as error:
                    on_error(source.name, str(error))
                    return
                on_reading(source.name, reading)

            self.subscriptions.append(node.create_subscription(
                message_class(source.message_type), source.topic, callback, qos_profile,
                callback_group=callback_group))


class StatusPublisher:
    """A latched ``~/status`` topic carrying a JSON object."""

    def __init__(self, node: Node):
        self._pub = node.create_publisher(String, '~/status', qos.LATCHED)

    def publish(self, **fields) -> None:
        self._pub.publish(String(data=json.dumps(fields, sort_keys=True)))


class Spinner:
    """Spin each node on a single-threaded executor of its own, each in its own thread.

    rclpy's MultiThreadedExecutor re-polls ready-but-busy entities in a Python loop that
    holds the GIL and slows every callback; an executor per node waits in C instead. A node
    that needs callbacks running in parallel (the policy: control versus checkpoint loading)
    exposes extra nodes in ``executor_nodes``.
    """

    def __init__(self, nodes, context=None):
        self._context = context
        self.executors = []
        for node in nodes:
            for member in getattr(node, 'executor_nodes', (node,)):
                executor = SingleThreadedExecutor(context=context)
                executor.add_node(member)
                self.executors.append(executor)
        self.threads = []

    def _launch(self, executor) -> None:
        thread = threading.Thread(target=self._spin, args=(executor,), daemon=True,
                                  name='ilrl-spin')
        thread.start()
        self.threads.append(thread)

    def start(self) -> 'Spinner':
        for executor in self.executors:
            self._launch(executor)
        return self

    def add(self, node) -> None:
        """Spin one more node; in its own thread at once if the others already spin."""
        executor = SingleThreadedExecutor(context=self._context)
        executor.add_node(node)
        self.executors.append(executor)
        if self.threads:
            self._launch(executor)

    @staticmethod
    def _spin(executor) -> None:
        try:
            executor.spin()
        except (ExternalShutdownException, ShutdownException):
            pass
        except Exception:
            # A callback caught mid-way by shutdown (publishing on a closed context) is
            # part of stopping; anything else is a real error.
            if executor.context.ok():
                raise

    def spin(self) -> None:
        """Spin all but the first executor in threads and the first in this thread."""
        first, rest = self.executors[0], self.executors[1:]
        for executor in rest:
            self._launch(executor)
        first.spin()

    def shutdown(self) -> None:
        for executor in self.executors:
            executor.shutdown(timeout_sec=1.0)
        for thread in self.threads:
            thread.join(timeout=5.0)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(node_factory, args=None) -> None:
    """Init rclpy, spin the node (and its helper nodes), and shut down cleanly."""
    rclpy.init(args=args)
    # SIGTERM (what launch and process managers send) ends the spin like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    node = None
    spinner = None
    try:
        node = node_factory()
        spinner = Spinner([node])
        spinner.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, 'close', None)
            if close:
                close()
        rclpy.try_shutdown()
        if spinner is not None:
            spinner.shutdown()
        if node is not None:
            for member in getattr(node, 'executor_nodes', (node,)):
                member.destroy_node()
