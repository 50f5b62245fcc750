"""What every ilrl_ros node shares: parameter declaration, the task spec, source topics, main."""

import inspect
import json
import signal
import threading
import time

from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.duration import Duration
from rclpy.clock import Clock, ClockType
from rclpy.executors import (ExternalShutdownException, ShutdownException,
                             SingleThreadedExecutor)
from rclpy.lifecycle import LifecycleNodeMixin, LifecyclePublisher, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from ilrl_ros import qos
from ilrl_ros.core.observation import ObservationError
from ilrl_ros.core.spec import bundled_tasks, load_spec, TaskSpec
from ilrl_ros.messages import message_class, reading_from_message
from ilrl_ros.nodes.params import declare_params, Param


TASK = Param('task', 'track_follow', f'Task spec: a bundled task name '
             f'({", ".join(bundled_tasks())}) or a YAML path.')
SYNC_TOLERANCE = Param(
    'sync_tolerance_s', -1.0, 'Stamps of the inputs that form one observation must agree to '
    "within this many seconds (a real robot's scan and odometry are not stamped together); "
    "negative: the task spec's observation.sync_tolerance_s.", low=-1.0, high=86400.0)


def declare_task(node: Node) -> TaskSpec:
    """Declare the ``task`` parameter and load its spec (a bad one raises ``SpecError``)."""
    return load_spec(declare_params(node, (TASK,))['task'])


def declare_sync_tolerance(node: Node) -> float:
    """Declare ``sync_tolerance_s``: how far apart the stamps of one observation may be."""
    return declare_params(node, (SYNC_TOLERANCE,))['sync_tolerance_s']


def refuse(reason: str) -> SetParametersResult:
    return SetParametersResult(successful=False, reason=reason)


def accept() -> SetParametersResult:
    return SetParametersResult(successful=True)


class SafeNode(Node):
    """A Node whose every callback runs behind an exception barrier.

    Subscriptions, timers, services and parameter callbacks created through it are wrapped:
    whatever one raises is logged in one line with its cause, counted (``fault_count``,
    ``last_fault``), and ``fail_safe()`` runs, which commands zero in nodes that drive the
    robot; the node keeps serving. A service that raised still answers (``success`` false
    and the cause, where the response has those fields) and a parameter callback that raised
    refuses the change with the cause, so no caller waits for an answer that never comes.

    ``stop()`` is what every node does once, before it is destroyed: command zero, wait
    until reliable subscribers have it, and release what it holds (``close()``).
    """

    def __init__(self, node_name: str, *, on_fault=None, **kwargs):
        # Set before Node.__init__, which already creates callbacks (parameter services,
        # /clock) through the overrides below.
        self._fault_handler = on_fault
        self.fault_count = 0
        self.last_fault = ''
        self.stopping = False
        self._parameter_checks = []
        self._on_set_callbacks = []
        super().__init__(node_name, **kwargs)

    # What nodes that drive the robot override ---------------------------------------------

    def fail_safe(self) -> None:
        """Bring what this node commands to rest (nothing, unless the node drives the robot)."""

    def command_publishers(self) -> tuple:
        """The publishers whose last message must reach its subscribers before the node exits."""
        return ()

    def close(self) -> None:
        """Release files and other resources (called by ``stop``, once)."""

    def stop(self, ack_timeout_s: float = 1.0) -> None:
        """Command zero, wait (bounded) until reliable subscribers have it, then ``close()``."""
        self.stopping = True
        try:
            self.fail_safe()
            for publisher in self.command_publishers():
                publisher.wait_for_all_acked(Duration(nanoseconds=int(ack_timeout_s * 1e9)))
        except Exception as error:  # noqa: BLE001 - stopping goes on whatever happens
            _quiet_log(self, f'could not command zero while stopping: {error}')
        try:
            self.close()
        except Exception as error:  # noqa: BLE001 - report, and let the others stop too
            _quiet_log(self, f'could not close cleanly: {error}')

    # The barrier ---------------------------------------------------------------------------

    def on_fault(self, where: str, error: BaseException) -> None:
        """Report a callback's exception and fail safe (``on_fault=`` replaces this)."""
        if self._fault_handler is not None:
            self._fault_handler(where, error)
            return
        self.fault_count += 1
        self.last_fault = f'{where} raised {type(error).__name__}: {error}'
        self.get_logger().error(f'{self.last_fault}; kept serving', throttle_duration_sec=1.0)
        self.fail_safe()

    def _fault(self, where: str, error: BaseException) -> None:
        if not self.context.ok():
            return  # a callback cut short by shutdown is part of stopping
        try:
            self.on_fault(where, error)
        except Exception as second:  # noqa: BLE001 - the barrier itself must never raise
            _quiet_log(self, f'{where} raised {error!r}, and reporting it raised {second!r}')

    def _guard(self, where: str, callback, *, takes_info: bool = False, default=None):
        if takes_info:
            def guarded(message, info):
                try:
                    return callback(message, info)
                except Exception as error:  # noqa: BLE001 - the barrier
                    self._fault(where, error)
                    return None
            return guarded

        def guarded(*args):
            try:
                return callback(*args)
            except Exception as error:  # noqa: BLE001 - the barrier
                self._fault(where, error)
                return default(error, *args) if default else None
        return guarded

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        # The profile in code is the default; parameters (qos_overrides.<topic>.subscription.*)
        # may override it, so a real driver's QoS can be matched from the parameter file.
        return super().create_subscription(
            msg_type, topic, self._guard(f'callback on {topic!r}', callback,
                                         takes_info=_takes_message_info(callback)),
            qos.overridden(self, 'subscription', topic, qos_profile), **kwargs)

    def create_publisher(self, msg_type, topic, qos_profile, **kwargs):
        return super().create_publisher(
            msg_type, topic, qos.overridden(self, 'publisher', topic, qos_profile), **kwargs)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        return super().create_timer(
            timer_period_sec, self._guard(f'timer {_name_of(callback)}', callback),
            *args, **kwargs)

    def create_service(self, srv_type, srv_name, callback, **kwargs):
        return super().create_service(
            srv_type, srv_name, self._guard(f'service {srv_name!r}', callback,
                                            default=_failed_response), **kwargs)

    def add_on_set_parameters_callback(self, callback) -> None:
        """Validate every parameter change with ``callback`` (no side effects: see post-set).

        Callbacks run in the order they were added, after the schema checks
        (``add_parameter_check``); the first refusal ends the change and nothing is set.
        """
        self._on_set_callbacks.append(self._guard(
            f'parameter callback {_name_of(callback)}', callback,
            default=lambda error, *_: refuse(f'{type(error).__name__}: {error}')))
        self._dispatch_parameter_changes()

    def add_parameter_check(self, check) -> None:
        """Check every parameter change against a schema before the node's own callbacks."""
        self._parameter_checks.append(self._guard(
            f'parameter check {_name_of(check)}', check,
            default=lambda error, *_: refuse(f'{type(error).__name__}: {error}')))
        self._dispatch_parameter_changes()

    def add_post_set_parameters_callback(self, callback) -> None:
        """Apply accepted parameter changes with ``callback``, behind the barrier."""
        super().add_post_set_parameters_callback(
            self._guard(f'parameter update {_name_of(callback)}', callback))

    def _dispatch_parameter_changes(self) -> None:
        # Once: a lifecycle node's cleanup removes its callbacks and configure adds them again.
        if not getattr(self, '_dispatching', False):
            self._dispatching = True
            super().add_on_set_parameters_callback(self._on_set_parameters_in_order)

    def _on_set_parameters_in_order(self, parameters) -> SetParametersResult:
        for callback in (*self._parameter_checks, *self._on_set_callbacks):
            result = callback(parameters)
            if not result.successful:
                return result
        return accept()


def _name_of(callback) -> str:
    return getattr(callback, '__name__', type(callback).__name__)


def _takes_message_info(callback) -> bool:
    # rclpy passes MessageInfo to a callback that accepts two arguments; keep that contract.
    try:
        inspect.signature(callback).bind(object(), object())
    except TypeError:
        return False
    try:
        inspect.signature(callback).bind(object())
    except TypeError:
        return True
    return False


def _failed_response(error, request, response):
    text = f'failed: {type(error).__name__}: {error}'
    if hasattr(response, 'success'):
        response.success = False
    if hasattr(response, 'message'):
        response.message = text
    return response


def _quiet_log(node: Node, text: str) -> None:
    """Log even while the context shuts down (the node logger may no longer reach /rosout)."""
    try:
        rclpy.logging.get_logger(node.get_name()).error(text)
    except Exception:  # noqa: BLE001 - nothing left to report to
        pass


# Lifecycle states a managed node can bring itself to when it starts (``start_state``).
START_STATES = ('active', 'inactive', 'unconfigured')
START_STATE = Param(
    'start_state', 'active', 'Lifecycle state the node brings itself to when it starts: '
    'active (configured and running: what `ros2 run` wants), inactive (configured, waiting '
    'for activate) or unconfigured (a lifecycle manager, e.g. the launch files, configures '
    'and activates it).', choices=START_STATES)


class SafeLifecycleNode(LifecycleNodeMixin, SafeNode):
    """A SafeNode that is a managed (lifecycle) node, for the nodes that move or record.

    Subclasses implement ``configure`` (read the parameters, load the spec and what it
    needs, create publishers, subscriptions, timers and services), ``activate`` (start
    commanding, stepping, recording), ``deactivate`` (command zero, stop), and ``cleanup``
    (release what configure loaded and files it opened); each may raise. Whatever a
    transition raises is logged with its cause and the transition fails
    (``TransitionCallbackReturn.FAILURE``): the node returns to the state it was in and keeps
    serving its lifecycle services and parameters. What configure created is destroyed on
    cleanup (and after a failed configure), so configure can run again.

    ``active`` is true only while the node is active: nodes that command the robot look at it
    before anything goes out (or publish on lifecycle publishers,
    ``create_lifecycle_publisher``, which drop what is published while inactive). Deactivate
    sets it false first, then runs ``deactivate`` (the zero command), then disables the
    lifecycle publishers. ``stop()`` commands zero in any configured state, as a SafeNode's
    does.

    The node's ``__init__`` declares its parameters and calls ``start_lifecycle()`` last,
    which brings it to ``start_state``: active by default, so ``ros2 run`` and
    ``python -m ilrl_ros.nodes.start`` give a running node; a failed configure or activate
    there raises ``ValueError`` with the cause (the process exits 1 with it).
    """

    def __init__(self, node_name: str, **kwargs):
        SafeNode.__init__(self, node_name, **kwargs)
        LifecycleNodeMixin.__init__(self)
        self.active = False
        self.configured = False
        # Why the last transition failed ('' after one that succeeded).
        self.transition_error = ''
        self._transition_cause = None
        self._before_configure = None
        # A transition the state does not have (by id) raises in rclpy's service callback,
        # which would end the spin thread: it is refused instead (success false).
        self._service_change_state.callback = self._refusing(self._service_change_state.callback)
        self.start_state = declare_params(self, (START_STATE,))['start_state']

    # What subclasses implement -------------------------------------------------------------

    def configure(self) -> None:
        """Read the parameters, load what the node runs on, create its endpoints."""

    def activate(self) -> None:
        """Start commanding / stepping / recording."""

    def deactivate(self) -> None:
        """Stop: command zero (``active`` is already false), stop stepping or recording."""

    def cleanup(self) -> None:
        """Release what configure loaded (endpoints it created are destroyed after this)."""

    # Lifecycle -----------------------------------------------------------------------------

    @property
    def lifecycle_state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, active, finalized, ..."""
        return self._state_machine.current_state[1]

    def start_lifecycle(self) -> None:
        """Bring the node to ``start_state``; raise as ``change_state`` does if it fails.

        A node that fails to start is destroyed before the error is raised.
        """
        try:
            bring_up(self, self.start_state)
        except BaseException:
            for member in getattr(self, 'executor_nodes', (self,)):
                member.destroy_node()
            raise

    def change_state(self, transition: str) -> None:
        """Run ``transition`` (configure, activate, ...) in this thread.

        If it fails, raise the cause when it is a ``ValueError`` or ``OSError`` (a bad
        parameter, spec or file: its own sentence, as a plain node would raise it), else a
        ``ValueError`` saying which transition failed and why.
        """
        result = getattr(self, f'trigger_{transition}')()
        if result != TransitionCallbackReturn.SUCCESS:
            cause = self._transition_cause
            if isinstance(cause, (ValueError, OSError)):
                raise cause
            raise ValueError(f'{self.get_name()}: '
                             f'{self.transition_error or transition + " failed"}')

    def _refusing(self, change_state):
        def answer(request, response):
            try:
                return change_state(request, response)
            except Exception as error:  # noqa: BLE001 - a bad request, not a fault
                self.get_logger().warn(
                    f'refused lifecycle transition {request.transition.id} '
                    f'{request.transition.label!r} in state {self.lifecycle_state}: {error}')
                response.success = False
                return response
        return answer

    def _run(self, name: str, hook) -> bool:
        """Run a transition hook behind the barrier; False, with the cause logged, if it raised."""
        try:
            hook()
        except Exception as error:  # noqa: BLE001 - a transition fails, the node stays up
            self._transition_cause = error
            self.transition_error = f'{name} failed: {type(error).__name__}: {error}'
            self.fault_count += 1
            self.last_fault = self.transition_error
            after = {'configure': 'unconfigured', 'activate': 'inactive'}.get(name, '')
            self.get_logger().error(f'{self.transition_error}; the node keeps serving'
                                    + (f', {after}' if after else ''))
            return False
        self.transition_error = ''
        return True

    def on_configure(self, state) -> TransitionCallbackReturn:
        self._before_configure = _endpoints(self)
        if not self._run('configure', self.configure):
            self._release(failed=True)
            return TransitionCallbackReturn.FAILURE
        self.configured = True
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        # Lifecycle publishers first, so that activate may publish.
        result = super().on_activate(state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self.active = True
        if not self._run('activate', self.activate):
            self._stop_activity()
            super().on_deactivate(state)
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info('active')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        # Always succeeds: a node asked to stop commanding stops, whatever its hook raised.
        self._stop_activity()
        self.get_logger().info('inactive: commanding nothing')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        if state.label == 'active':
            self._stop_activity()
            super().on_deactivate(state)
        if state.label in ('active', 'inactive'):
            self._release()
        return super().on_shutdown(state)

    def on_error(self, state) -> TransitionCallbackReturn:
        # Only a transition that raised past the hooks' barrier lands here: stop, release,
        # and go back to unconfigured.
        self._stop_activity()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_activity(self) -> None:
        was_active, self.active = self.active, False
        if was_active:
            self._run('deactivate', self.deactivate)

    def _release(self, failed: bool = False) -> None:
        if failed:
            # Undo what a failed configure did get to; its own cause is the one reported.
            try:
                self.cleanup()
            except Exception as error:  # noqa: BLE001 - the configure error says why
                self.get_logger().debug(f'cleanup after the failed configure: {error!r}')
        elif self.configured:
            self._run('cleanup', self.cleanup)
        self.configured = False
        if self._before_configure is not None:
            _destroy_new_endpoints(self, self._before_configure)
            self._before_configure = None

    def create_lifecycle_publisher(self, msg_type, topic, qos_profile, **kwargs):
        """A publisher that publishes only while the node is active (SafeNode's QoS rules)."""
        publisher = self.create_publisher(msg_type, topic, qos_profile,
                                          publisher_class=LifecyclePublisher, **kwargs)
        self._managed_entities.add(publisher)
        return publisher

    def stop(self, ack_timeout_s: float = 1.0) -> None:
        """Command zero in any state, release what the node holds (``SafeNode.stop``)."""
        super().stop(ack_timeout_s)
        self.active = False


def bring_up(node, state: str = 'active') -> None:
    """Configure (and for ``state`` active, activate) a lifecycle node that is unconfigured."""
    transitions = {'active': ('configure', 'activate'), 'inactive': ('configure',),
                   'unconfigured': ()}[state]
    for transition in transitions:
        node.change_state(transition)


_ENDPOINT_KINDS = (('publishers', 'destroy_publisher'),
                   ('subscriptions', 'destroy_subscription'), ('timers', 'destroy_timer'),
                   ('services', 'destroy_service'), ('clients', 'destroy_client'))


def _endpoints(node) -> dict:
    """The endpoints and parameter callbacks of a node and its helper nodes, by kind."""
    out = {}
    for index, member in enumerate(getattr(node, 'executor_nodes', (node,))):
        for kind, _ in _ENDPOINT_KINDS:
            out[index, kind] = {id(entity) for entity in getattr(member, kind)}
        out[index, 'on_set'] = list(getattr(member, '_on_set_callbacks', ()))
        out[index, 'post_set'] = list(member._post_set_parameters_callbacks)
    return out


def _destroy_new_endpoints(node, before: dict) -> None:
    """Destroy what a node (and its helper nodes) created since ``before`` was taken."""
    for index, member in enumerate(getattr(node, 'executor_nodes', (node,))):
        for kind, destroy in _ENDPOINT_KINDS:
            for entity in list(getattr(member, kind)):
                if id(entity) in before.get((index, kind), ()):
                    continue
                if kind == 'publishers':
                    getattr(member, '_managed_entities', set()).discard(entity)
                try:
                    getattr(member, destroy)(entity)
                except Exception as error:  # noqa: BLE001 - release the rest regardless
                    _quiet_log(member, f'releasing a {kind[:-1]} raised {error!r}')
        # Parameter callbacks configure added go too: configure adds them again.
        if hasattr(member, '_on_set_callbacks'):
            member._on_set_callbacks[:] = before[index, 'on_set']
        for callback in list(member._post_set_parameters_callbacks):
            if callback not in before[index, 'post_set']:
                member.remove_post_set_parameters_callback(callback)


class SourceSubscriptions:
    """Subscribes to a spec's sources and hands each message on as a core reading.

    A message that cannot be converted is reported through ``on_error(source, text)``;
    it is never passed on. So is a reading that ``on_reading`` refuses with an
    ``ObservationError`` (stamped in the future, say).
    """

    def __init__(self, node: Node, spec: TaskSpec, sources, on_reading, on_error,
                 callback_group=None, qos_profile=qos.SENSOR):
        self.subscriptions = []
        for name in sources:
            source = spec.sources[name]

            def callback(msg, source=source):
                try:
                    reading = reading_from_message(source.kind, msg, source.name)
                    on_reading(source.name, reading)
                except ObservationError as error:
                    on_error(source.name, str(error))

            self.subscriptions.append(node.create_subscription(
                message_class(source.message_type), source.topic, callback, qos_profile,
                callback_group=callback_group))


class StatusPublisher:
    """A latched ``~/status`` topic carrying a JSON object.

    With ``fields`` (a function returning the object) it is also published every
    ``period_s`` seconds of the steady clock, whatever the node's state and whether
    simulated time runs: ``ros2 topic echo --once`` and a late subscriber always get a
    current status, and a silent topic means a dead node.
    """

    def __init__(self, node: Node, fields=None, period_s: float = 1.0):
        self._pub = node.create_publisher(String, '~/status', qos.LATCHED)
        self._fields = fields
        if fields is not None:
            node.create_timer(period_s, self.publish_current,
                              clock=Clock(clock_type=ClockType.STEADY_TIME))

    def publish(self, **fields) -> None:
        self._pub.publish(String(data=json.dumps(fields, sort_keys=True)))

    def publish_current(self) -> None:
        """Publish what ``fields`` returns now."""
        self.publish(**self._fields())


class Spinner:
    """Spin each node on a single-threaded executor of its own, each in its own thread.

    rclpy's MultiThreadedExecutor re-polls ready-but-busy entities in a Python loop that
    holds the GIL and slows every callback; an executor per node waits in C instead. A node
    that needs callbacks running in parallel (the policy: control versus checkpoint loading)
    exposes extra nodes in ``executor_nodes``.

    ``stop()`` ends every spin loop after the callback it is running and joins the threads,
    so that nothing runs while the nodes command zero and release their resources.
    """

    # How long a spin loop waits for work before it looks at the stop flag again.
    POLL_S = 0.1

    def __init__(self, nodes, context=None):
        self._context = context
        self._stop = threading.Event()
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

    def _spin(self, executor) -> None:
        try:
            while not self._stop.is_set() and executor.context.ok():
                executor.spin_once(timeout_sec=self.POLL_S)
        except (ExternalShutdownException, ShutdownException):
            pass
        except Exception:
            # A callback caught mid-way by shutdown (publishing on a closed context) is
            # part of stopping; anything else is a real error.
            if executor.context.ok() and not self._stop.is_set():
                raise

    def alive(self) -> bool:
        """Whether every spin thread still runs."""
        return all(thread.is_alive() for thread in self.threads)

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the spin loops after their current callbacks and wait for the threads."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def shutdown(self) -> None:
        self.stop()
        for executor in self.executors:
            executor.shutdown(timeout_sec=0.0)


def stop_nodes(nodes, spinner=None) -> None:
    """Stop a graph safely: spinning ends, every node commands zero and closes, then is destroyed.

    The context is left to the caller, which shuts it down afterwards: the zero commands
    need it.
    """
    if spinner is not None:
        spinner.stop()
    for node in nodes:
        stop = getattr(node, 'stop', None)
        if stop is not None:
            stop()
    if spinner is not None:
        spinner.shutdown()
    for node in nodes:
        for member in getattr(node, 'executor_nodes', (node,)):
            try:
                member.destroy_node()
            except Exception as error:  # noqa: BLE001 - destroying the rest matters more
                _quiet_log(member, f'destroying the node raised {error!r}')


class StopSignals:
    """SIGINT and SIGTERM end the process's work once, cleanly; a repeat changes nothing.

    Installed instead of rclpy's handlers, which shut the context down at once, so that the
    nodes can still command zero and the recorder finish its bag before anything closes.
    The handler only notes the signal (a handler that takes a lock or writes to a stream
    can deadlock with the code it interrupts); ``wait`` polls for it. Signals that arrived
    while the node's module loaded (``ilrl_ros.nodes.start``) count too.
    """

    POLL_S = 0.05

    def __init__(self):
        from ilrl_ros.nodes import start
        self.received = list(start.take_pending())
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.received.append(signum)

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def wait(self, alive=lambda: True) -> None:
        """Return when a signal came or ``alive()`` turns false."""
        while not self.received and alive():
            time.sleep(self.POLL_S)

    def ignore_further(self) -> None:
        """Ignore stop signals from now on (the process is exiting).

        Python restores the default handlers while it finalises, and a late second Ctrl-C
        would then kill the process mid-exit; an ignored signal stays ignored.
        """
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)

    def summary(self) -> str:
        names = [signal.Signals(s).name for s in self.received]
        return ', '.join(names) if names else 'no signal'


def run(node_factory, args=None, name: str = 'ilrl_ros') -> int:
    """Init rclpy, spin the node (and its helper nodes) until a signal, and stop safely.

    Returns the exit status: 0 after a signal or an external shutdown, 1 when the node could
    not start (its fatal log line says why). On SIGINT, SIGTERM or a second signal the node
    commands zero, finishes its files and exits 0, with no traceback.
    """
    signals = StopSignals()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    logger = rclpy.logging.get_logger(name)
    node = None
    spinner = None
    status = 0
    try:
        if not signals.requested:
            node = node_factory()
            spinner = Spinner([node]).start()
            signals.wait(alive=lambda: rclpy.ok() and spinner.alive())
    except (ValueError, OSError) as error:
        # Bad parameters, task spec (SpecError), checkpoint or output folder: the sentence
        # says what to change.
        logger.fatal(f'{name} cannot start: {error}')
        status = 1
    finally:
        stop_nodes([node] if node is not None else [], spinner)
        if signals.requested:
            logger.info(f'stopped on {signals.summary()}')
        signals.ignore_further()
        rclpy.try_shutdown()
    return status
