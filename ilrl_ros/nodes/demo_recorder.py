r"""The demo_recorder node: record demonstration topics into crash-safe rosbag2 MCAP bags.

Examples::

    ros2 run ilrl_ros demo_recorder --ros-args -p output_dir:=bags \
        -p topics:='[/joint_states, /cmd_vel, /scan]'
    ros2 service call /demo_recorder/stop std_srvs/srv/Trigger    # close the bag
    ros2 service call /demo_recorder/start std_srvs/srv/Trigger   # start the next one
    ros2 topic echo /demo_recorder/status                         # JSON: recording, bag, counts

Data flow::

    publishers --(serialized CDR, QoS matched to what they offer)--> demo_recorder
        --> BagWriter --> <output_dir>/<bag_name>/{<bag_name>_0.mcap, metadata.yaml}

Messages are never deserialized. The bag is flushed every ``flush_interval_s``, so a recorder
killed with SIGKILL loses at most that much; SIGINT/SIGTERM close the bag cleanly (footer,
summary, metadata.yaml), and a second signal while it closes is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass
import datetime
import functools
import json
from pathlib import Path
import sys
import threading
from typing import Any, Optional, Sequence

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import ParameterDescriptor
from std_msgs.msg import String
from std_srvs.srv import Trigger

from ilrl_ros.bag import BagError, BagWriter, message_class, qos_profiles_yaml
from ilrl_ros.nodes.common import accept, refuse, run, SafeLifecycleNode
from ilrl_ros.nodes.params import declare_params, Param
from ilrl_ros.qos import LATCHED

# Deep enough that a flush (fsync) stalling the executor does not drop messages from a
# reliable publisher at a few hundred Hz.
SUBSCRIPTION_DEPTH = 100
STATUS_PERIOD_S = 1.0


class RecorderError(Exception):
    """A start/stop request that cannot be honoured; the message says why and what to do."""


@dataclass(frozen=True)
class RecorderConfig:
    """demo_recorder's parameters, read once at start-up."""

    topics: tuple[str, ...]
    """Topics to record; relative names are resolved in the node's namespace."""
    output_dir: str = 'bags'
    """Directory that receives one bag directory per recording."""
    bag_name: str = ''
    """Name of the bag directory; empty means ``demo_<UTC timestamp>``."""
    flush_interval_s: float = 1.0
    """Seconds between flushes to disk: the most a killed recorder can lose."""
    autostart: bool = True
    """Start recording as soon as the node is up (else wait for ``~/start``)."""
    discovery_period_s: float = 0.5
    """Seconds between looks at the ROS graph for topics not yet advertised."""

    def __post_init__(self) -> None:
        if not self.topics or not all(self.topics):
            raise ValueError(
                f'demo_recorder needs non-empty topic names to record, got {list(self.topics)}; '
                "pass them as -p topics:='[/joint_states, /cmd_vel]'.")
        for name in ('flush_interval_s', 'discovery_period_s'):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(
                    f'demo_recorder parameter {name} must be a positive number of seconds, '
                    f'got {value!r}.')


def adapt_qos(offered: Sequence[QoSProfile]) -> QoSProfile:
    """Return the QoS to request so that every publisher offering ``offered`` is matched.

    As rosbag2 does: reliable only if every publisher is reliable (a reliable subscription does
    not match a best-effort publisher), transient local only if every publisher offers it (then
    their latched messages are recorded too); everything else is always compatible.
    """
    reliable = bool(offered) and all(
        profile.reliability == ReliabilityPolicy.RELIABLE for profile in offered)
    latched = bool(offered) and all(
        profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for profile in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=SUBSCRIPTION_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def is_stricter(current: QoSProfile, needed: QoSProfile) -> bool:
    """Tell whether ``current`` asks for more than ``needed`` and so misses a publisher."""
    return ((current.reliability == ReliabilityPolicy.RELIABLE
             and needed.reliability != ReliabilityPolicy.RELIABLE)
            or (current.durability == DurabilityPolicy.TRANSIENT_LOCAL
                and needed.durability != DurabilityPolicy.TRANSIENT_LOCAL))


def default_bag_name(now: Optional[datetime.datetime] = None) -> str:
    """Return ``demo_<UTC timestamp>``, e.g. ``demo_20250131T142501Z``."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f'demo_{now:%Y%m%dT%H%M%SZ}'


@dataclass
class _Recorded:
    subscription: Any
    type_name: str
    qos: QoSProfile


# The recorder's parameters besides ``topics`` (a string array, declared on its own). Those
# settable at runtime apply from the next recording (~/start, or activate with autostart).
PARAMETERS = (
    Param('output_dir', 'bags', 'Directory that receives one bag directory per recording; '
          'a change applies from the next start.', read_only=False),
    Param('bag_name', '', 'Bag directory name; empty means demo_<UTC timestamp>; a change '
          'applies from the next start.', read_only=False),
    Param('flush_interval_s', 1.0, 'Seconds between flushes to disk: the most a killed '
          'recorder can lose; a change applies from the next start.', low=0.01,
          high=3600.0, read_only=False),
    Param('autostart', True, 'Start recording when the node is activated (at start-up, by '
          'default) instead of waiting for ~/start.'),
    Param('discovery_period_s', 0.5, 'Seconds between looks at the ROS graph for topics not '
          'yet advertised.', low=0.01, high=3600.0),
)


class DemoRecorder(SafeLifecycleNode):
    """Record the configured topics, serialized, into one bag per start/stop cycle.

    Lifecycle: configure reads the parameters (a bad one fails it, saying which); activate
    starts recording if ``autostart``; ~/start and ~/stop work while active; deactivate,
    cleanup and shutdown close the open bag.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__('demo_recorder', **kwargs)
        # Executor threads (subscriptions, timers, services) and destroy_node share the state.
        self._state_lock = threading.RLock()
        self._bag: Optional[BagWriter] = None
        self._recorded: dict[str, _Recorded] = {}
        self._waiting: list[str] = []
        self._problems: dict[str, str] = {}
        self._declare_parameters()
        # Steady clock: with use_sim_time a paused simulation must not stop flushing.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._status_publisher = self.create_publisher(String, '~/status', LATCHED)
        self.create_timer(STATUS_PERIOD_S, self._publish_status, clock=self._steady)
        self.add_on_set_parameters_callback(self._check_next_start)
        self.add_post_set_parameters_callback(self._note_next_start)
        self.start_lifecycle()

    def configure(self) -> None:
        """Read and check the parameters; offer ~/start and ~/stop."""
        self.config = self._read_parameters()
        self._topics = self._resolve_topics(self.config.topics)
        self.create_service(Trigger, '~/start', self._on_start)
        self.create_service(Trigger, '~/stop', self._on_stop)
        self.create_timer(self.config.discovery_period_s, self._discover, clock=self._steady)
        self._flush_timer = self.create_timer(self.config.flush_interval_s, self._flush,
                                              clock=self._steady)
        self._publish_status()

    def activate(self) -> None:
        """Start recording if ``autostart``; else wait for ~/start."""
        if self.config.autostart:
            self.start_recording()
        else:
            self._publish_status()

    def deactivate(self) -> None:
        """Close the open bag (footer, summary, metadata.yaml)."""
        if self.recording:
            self.stop_recording()
        else:
            self._publish_status()

    def cleanup(self) -> None:
        """Close the open bag, if any."""
        self.close()
        self._publish_status()

    # -- parameters ---------------------------------------------------------------------------

    def _declare_parameters(self) -> None:
        # An empty list cannot carry the string-array type: declare the type with no default
        # (unset reads as None, refused at configure as "no topics").
        self.declare_parameter('topics', Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description='Topics to record; relative names are resolved in the node namespace. '
            'A change applies from the next start.', read_only=False))
        declare_params(self, PARAMETERS)

    def _read_parameters(self, changes: Sequence[Parameter] = ()) -> RecorderConfig:
        """The recorder's configuration now (with ``changes`` applied), checked."""
        values = {param.name: self.get_parameter(param.name).value for param in PARAMETERS}
        values['topics'] = self.get_parameter_or('topics', None).value
        values.update({change.name: change.value for change in changes
                       if change.name in values})
        return RecorderConfig(**{**values, 'topics': tuple(values['topics'] or ())})

    def _check_next_start(self, parameters: Sequence[Parameter]):
        """Refuse a change the next recording could not start with (no side effects)."""
        if not any(parameter.name == 'topics' for parameter in parameters):
            return accept()  # a folder or name that cannot be made is said at ~/start
        try:
            self._resolve_topics(self._read_parameters(parameters).topics)
        except ValueError as error:
            return refuse(str(error))
        return accept()

    def _note_next_start(self, parameters: Sequence[Parameter]) -> None:
        names = [p.name for p in parameters if p.name in ('topics', 'output_dir', 'bag_name',
                                                            'flush_interval_s')]
        if names:
            when = 'the next recording' if self.recording else 'the next start'
            self.get_logger().info(f'{", ".join(names)} changed: applies from {when}')

    def _resolve_topics(self, topics: Sequence[str]) -> tuple[str, ...]:
        try:
            return tuple(dict.fromkeys(self.resolve_topic_name(topic) for topic in topics))
        except Exception as error:  # rclpy raises several types for invalid names
            raise ValueError(
                f'demo_recorder cannot resolve topics {list(topics)}: {error}; use valid ROS '
                'topic names such as /cmd_vel or joint_states.') from error

    # -- recording ----------------------------------------------------------------------------

    @property
    def recording(self) -> bool:
        """True while a bag is open."""
        return self._bag is not None

    def start_recording(self) -> Path:
        """Open a new bag and subscribe to the topics that are already advertised.

        The parameters are read now: what was set since the last start applies.
        """
        with self._state_lock:
            if not self.active:
                raise RecorderError(f'The recorder is {self.lifecycle_state}; activate it '
                                    'first (ros2 lifecycle set /demo_recorder activate).')
            if self._bag is not None:
                raise RecorderError(
                    f'Already recording to {self._bag.path}; call ~/stop before starting again.')
            config = self._read_parameters()
            self._topics = self._resolve_topics(config.topics)
            if config.flush_interval_s != self.config.flush_interval_s:
                self._flush_timer.timer_period_ns = int(config.flush_interval_s * 1e9)
            self.config = config
            path = self._new_bag_path().resolve()
            self._bag = BagWriter(path, flush_interval_s=self.config.flush_interval_s)
            self._waiting = list(self._topics)
            self._problems.clear()
        self.get_logger().info(f'Recording {", ".join(self._topics)} to {path}')
        self._discover()
        self._publish_status()
        return path

    def stop_recording(self) -> tuple[Path, dict[str, int]]:
        """Close the bag; return its path and the messages recorded per topic."""
        path, counts = self._close_bag()
        self._publish_status()
        total = sum(counts.values())
        self.get_logger().info(f'Closed {path} with {total} messages')
        return path, counts

    def _close_bag(self) -> tuple[Path, dict[str, int]]:
        with self._state_lock:
            if self._bag is None:
                raise RecorderError('Not recording; call ~/start first.')
            for recorded in self._recorded.values():
                self.destroy_subscription(recorded.subscription)
            self._recorded.clear()
            self._waiting = []
            bag, self._bag = self._bag, None
            counts = bag.counts
            bag.close()
        return bag.path, counts

    def _new_bag_path(self) -> Path:
        base = self.config.bag_name or default_bag_name()
        path = Path(self.config.output_dir) / base
        suffix = 1
        # A second recording in the same second, or with a fixed bag_name, gets a new directory
        # instead of failing.
        while path.exists():
            path = Path(self.config.output_dir) / f'{base}_{suffix}'
            suffix += 1
        return path

    def _on_message(self, topic: str, data: bytes, info: Any) -> None:
        with self._state_lock:
            bag = self._bag
            if bag is None or topic not in self._recorded:
                return
            publish_time = info.get('source_timestamp') if isinstance(info, dict) else None
            try:
                bag.write(topic, data, self.get_clock().now().nanoseconds, publish_time)
            except (BagError, OSError) as error:
                self.get_logger().error(
                    f'Cannot write a message of {topic} to {bag.path}: {error}',
                    throttle_duration_sec=5.0)

    def _flush(self) -> None:
        with self._state_lock:
            if self._bag is None:
                return
            try:
                self._bag.flush()
            except OSError as error:
                self.get_logger().error(f'Cannot flush {self._bag.path}: {error}',
                                        throttle_duration_sec=5.0)

    # -- discovery ----------------------------------------------------------------------------

    def _discover(self) -> None:
        changed = False
        with self._state_lock:
            if self._bag is None:
                return
            advertised = {name for name, _ in self.get_topic_names_and_types()}
            for topic in list(self._waiting):
                if topic in advertised:
                    changed |= self._try_subscribe(topic)
            for topic in list(self._recorded):
                changed |= self._check_recorded(topic)
        if changed:
            self._publish_status()

    def _try_subscribe(self, topic: str) -> bool:
        publishers = self.get_publishers_info_by_topic(topic)
        if not publishers:
            return False  # only subscribers so far: nothing to record, no QoS to match
        types = sorted({info.topic_type for info in publishers})
        if len(types) > 1:
            return self._report(
                topic, f'{topic} is published with several types ({", ".join(types)}); it is '
                'not recorded until all its publishers agree on one type.')
        type_name = types[0]
        try:
            msg_type = message_class(type_name)
        except BagError as error:
            # Even raw subscriptions need the type support to register with the middleware.
            return self._report(topic, f'{topic} cannot be recorded: {error}')
        offered = [info.qos_profile for info in publishers]
        qos = adapt_qos(offered)
        try:
            self._bag.add_topic(topic, type_name, qos_profiles_yaml(offered),
                                type_hash=str(publishers[0].topic_type_hash))
        except BagError as error:
            return self._report(topic, f'{topic} cannot be recorded: {error}')
        subscription = self.create_subscription(
            msg_type, topic, functools.partial(self._on_message, topic), qos, raw=True)
        self._recorded[topic] = _Recorded(subscription, type_name, qos)
        self._waiting.remove(topic)
        self._problems.pop(topic, None)
        # What the subscription asked for: the adapted profile, or a qos_overrides parameter.
        asked = subscription.qos_profile
        self.get_logger().info(
            f'Recording {topic} ({type_name}, {asked.reliability.name.lower()}, '
            f'{asked.durability.name.lower()})')
        return True

    def _check_recorded(self, topic: str) -> bool:
        recorded = self._recorded[topic]
        publishers = self.get_publishers_info_by_topic(topic)
        if not publishers:
            return False
        other_types = sorted({info.topic_type for info in publishers} - {recorded.type_name})
        if other_types:
            return self._report(
                topic, f'{topic} changed type from {recorded.type_name} to '
                f'{", ".join(other_types)}; messages of the new type are not recorded in this '
                'bag (stop and start a new one).')
        changed = self._problems.pop(topic, None) is not None
        needed = adapt_qos([info.qos_profile for info in publishers])
        if is_stricter(recorded.qos, needed):
            # A new publisher offers less than we asked for and would be left unmatched.
            self.destroy_subscription(recorded.subscription)
            recorded.subscription = self.create_subscription(
                message_class(recorded.type_name), topic,
                functools.partial(self._on_message, topic), needed, raw=True)
            recorded.qos = needed
            self.get_logger().info(
                f'Re-subscribed to {topic} as {needed.reliability.name.lower()}/'
                f'{needed.durability.name.lower()} to match a new publisher')
        return changed

    def _report(self, topic: str, problem: str) -> bool:
        if self._problems.get(topic) == problem:
            return False
        self._problems[topic] = problem
        self.get_logger().warning(problem)
        return True

    # -- services and status ------------------------------------------------------------------

    def _on_start(self, request: Trigger.Request, response: Trigger.Response,
                  ) -> Trigger.Response:
        try:
            path = self.start_recording()
        except (RecorderError, BagError, OSError) as error:
            response.success, response.message = False, str(error)
            return response
        response.success, response.message = True, str(path)
        return response

    def _on_stop(self, request: Trigger.Request, response: Trigger.Response,
                 ) -> Trigger.Response:
        try:
            path, counts = self.stop_recording()
        except (RecorderError, BagError, OSError) as error:
            response.success, response.message = False, str(error)
            return response
        per_topic = ', '.join(f'{topic}: {count}' for topic, count in sorted(counts.items()))
        response.success = True
        response.message = (f'{path} ({sum(counts.values())} messages'
                            f'{"; " + per_topic if per_topic else ""})')
        return response

    def status(self) -> dict[str, Any]:
        """Return what ``~/status`` publishes: recording, bag, counts, waiting topics, problems."""
        with self._state_lock:
            bag = self._bag
            counts = bag.counts if bag is not None else {}
            return {
                'lifecycle': self.lifecycle_state,
                'recording': bag is not None,
                'bag': str(bag.path) if bag is not None else None,
                'counts': counts,
                'message_count': sum(counts.values()),
                'waiting_for': list(self._waiting),
                # Publishers each recording subscription has matched: a driver waits until
                # these are all the graph's publishers before the messages it needs flow.
                'matched': {topic: recorded.subscription.get_publisher_count()
                            for topic, recorded in self._recorded.items()},
                'problems': dict(self._problems),
            }

    def _publish_status(self) -> None:
        self._status_publisher.publish(String(data=json.dumps(self.status())))

    def close(self) -> None:
        """Close the bag cleanly (footer, summary, final metadata) if one is open."""
        try:
            path, counts = self._close_bag()
        except RecorderError:
            return
        # While the context shuts down the node logger may no longer reach /rosout; a plain
        # named logger still prints to the console.
        logger = self.get_logger() if self.context.ok() else rclpy.logging.get_logger(
            f'{self.get_name()}.shutdown')
        logger.info(f'Closed {path} with {sum(counts.values())} messages')

    def destroy_node(self) -> None:
        """Close the bag before the node goes away (for owners that skip ``stop()``)."""
        self.close()
        super().destroy_node()


def main(args: Optional[list[str]] = None) -> int:
    """Run demo_recorder until SIGINT/SIGTERM, then close the bag cleanly."""
    return run(DemoRecorder, args, name='demo_recorder')


if __name__ == '__main__':
    sys.exit(main())
