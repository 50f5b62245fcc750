"""The ``command_arbiter`` node: exactly one command source reaches the robot.

In the manner of twist_mux, each source (the episode manager's safety and reset commands, a
person's teleop, the expert, the policy) publishes on a topic of its own; this node passes
the messages of the fresh source of highest priority on to the robot's command topic
unchanged (stamp kept: a lock-step robot matches a command to the observation it answers)
and drops the others, counting them and warning (throttled) that two drivers are talking.
The decision is ``ilrl_ros.core.arbitration.Arbiter``; this node is its glue.

- **Locks.** ``e_stop`` (std_msgs/Bool) holds the robot at zero while pressed, whatever
  comes. After an episode ends ``unsafe`` (``episode/event``), commands of sources below the
  episode manager's (``hold_source``) are zeros in their place until the next episode starts;
  the episode manager's own commands (a reset controller) still pass. At each ``start``
  the episode manager's source yields, so the policy drives from the episode's first step.
- **Timeouts** are measured on the steady clock: a lock-step robot that waits for a command
  stops simulated time, and a driver that went quiet must still hand over. A driver that
  times out hands over to the next fresh source (its newest command goes at once) or, with
  ``zero_on_timeout``, to one zero.
- **Published:** ``command_arbiter/active`` (latched String, on change: the source that
  drives, a lock's name, or ``none``) and ``~/status`` (latched JSON, every
  ``status_period_s`` and on change: active, locks, counts per source, warnings).
- **Fail-safe:** a fault in any callback, and stopping, command zero. A zero is stamped with
  the newest stamp seen (or the clock), never 0.

    ros2 run ilrl_ros command_arbiter --ros-args -p task:=track_follow
    ros2 topic echo /command_arbiter/active
    ros2 topic pub --once /e_stop std_msgs/msg/Bool '{data: true}'
"""

import json
import sys
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from std_msgs.msg import Bool, String

from ilrl_ros import qos
from ilrl_ros.core.arbitration import ALL, Arbiter, FORWARD, sources_from_lists
from ilrl_ros.messages import (action_from_message, action_message, action_message_class,
                               command_stamp_ns)
from ilrl_ros.nodes.common import declare_task, run, SafeNode, StatusPublisher
from ilrl_ros.nodes.params import declare_params, Param

E_STOP, HOLD = 'e_stop', 'safety_hold'
# The graph's sources, highest priority first (the e-stop is a lock above them all).
DEFAULT_SOURCES = ('safety', 'teleop', 'expert', 'policy')
# Largest command value taken as a command rather than garbage (as the nodes' inputs).
ABSURD = 1e6

PARAMETERS = (
    Param('source_names', list(DEFAULT_SOURCES), 'Names of the command sources.'),
    Param('source_topics', [f'arbiter/{name}' for name in DEFAULT_SOURCES],
          "Each source's command topic (the task's command type), in source_names' order."),
    Param('source_priorities', [40, 30, 20, 10], "Each source's priority, distinct; the "
          'fresh source of highest priority drives.'),
    Param('source_timeouts_s', [0.5, 0.5, 0.5, 0.5], "Each source's timeout (steady clock): "
          'a source whose last command is older no longer drives.'),
    Param('output_topic', '', "Where the chosen commands go; empty: the task spec's command "
          'topic.'),
    Param('e_stop_topic', 'e_stop', 'std_msgs/Bool: while true, every command is zero.'),
    Param('episode_event_topic', 'episode/event', "The episode manager's events: an end with "
          'an outcome in hold_outcomes holds the sources below hold_source at zero until the '
          "next start; at a start hold_source yields. Empty: none."),
    Param('hold_source', 'safety', "The episode manager's source: the safety hold's level "
          "(sources below it are held). Empty: no hold."),
    Param('hold_outcomes', ['unsafe'], 'Episode outcomes that engage the safety hold.'),
    Param('zero_on_timeout', True, 'Command zero once when the driver times out and no other '
          'source is fresh (false for a lock-step robot: it steps on every command).'),
    Param('warn_period_s', 5.0, 'At most one two-driver warning per pair of sources in this '
          'many seconds.', low=0.0, high=3600.0),
    Param('check_period_s', 0.02, 'How often timeouts are looked at (steady clock).',
          low=0.001, high=10.0),
    Param('status_period_s', 1.0, 'Period of ~/status.', low=0.01, high=3600.0),
    Param('frame_id', 'base_link', 'frame_id of the zero commands this node sends.'),
)


def command_problem(spec, msg):
    """Why a command message cannot drive the robot (wrong size, not finite, absurd), or None."""
    try:
        values = action_from_message(spec.action, msg)
    except (ValueError, TypeError, AttributeError) as error:
        return str(error)
    if not np.all(np.isfinite(values)) or np.any(np.abs(values) > ABSURD):
        return f'values {values.tolist()} are not finite numbers within +/-{ABSURD:g}'
    return None


class CommandArbiter(SafeNode):
    """Pass one command source on to the robot; see the module docstring."""

    def __init__(self, **kwargs):
        super().__init__('command_arbiter', **kwargs)
        self.spec = declare_task(self)
        values = declare_params(self, PARAMETERS)
        sources = sources_from_lists(values['source_names'], values['source_priorities'],
                                     values['source_timeouts_s'])
        topics = list(values['source_topics'])
        if len(topics) != len(sources):
            raise ValueError(f'source_topics has {len(topics)} topics for {len(sources)} '
                             f'sources; one topic per source expected')
        self.arbiter = Arbiter(sources, warn_period_s=values['warn_period_s'],
                               zero_on_timeout=values['zero_on_timeout'])
        self.frame_id = values['frame_id']
        self._hold_outcomes = set(values['hold_outcomes'])
        hold = values['hold_source']
        self._hold_source = hold if hold else None
        self._hold_level = self.arbiter.source(hold).priority if hold else None
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._estop = False
        self.refused = 0
        message = action_message_class(self.spec.action)
        self.output_topic = values['output_topic'] or self.spec.action.topic
        if self.output_topic in topics:
            raise ValueError(f'output_topic {self.output_topic!r} is also a source topic; the '
                             'arbiter would hear its own commands')
        self.command_pub = self.create_publisher(message, self.output_topic, qos.COMMAND)
        self.active_pub = self.create_publisher(String, f'{self.get_name()}/active',
                                                qos.LATCHED)
        self.status = StatusPublisher(self)
        # Events first: when an episode's start and the policy's first command are both
        # waiting, the executor takes the start (created first) first.
        if values['episode_event_topic']:
            self.create_subscription(String, values['episode_event_topic'], self._on_event,
                                     qos.EVENTS)
        self.create_subscription(Bool, values['e_stop_topic'], self._on_estop, qos.COMMAND)
        for source, topic in zip(values['source_names'], topics):
            self.create_subscription(message, topic,
                                     lambda msg, name=source: self._on_command(name, msg),
                                     qos.COMMAND)
        self.create_timer(values['check_period_s'], self._on_check, clock=self._steady)
        self.create_timer(values['status_period_s'], self._publish_status, clock=self._steady)
        self._publish_active()
        self._publish_status()
        self.get_logger().info(
            'arbitrating ' + ', '.join(f'{s.name} ({topic}, priority {s.priority}, timeout '
                                       f'{s.timeout_s:g} s)'
                                       for s, topic in zip(sources, topics))
            + f' onto {self.command_pub.topic_name}')

    # Inputs -------------------------------------------------------------------------------

    def _now(self) -> int:
        return self._steady.now().nanoseconds

    def _on_command(self, name: str, msg) -> None:
        problem = command_problem(self.spec, msg)
        if problem is not None:
            self.get_logger().error(f'refused a command from {name}: {problem}',
                                    throttle_duration_sec=1.0)
            self._apply(self.arbiter.refuse(name, self._now()))
            return
        stamp = command_stamp_ns(self.spec.action, msg)
        zero = not np.any(action_from_message(self.spec.action, msg))
        _, outputs = self.arbiter.receive(name, self._now(), stamp, msg, zero)
        self._apply(outputs)

    def _on_estop(self, msg: Bool) -> None:
        pressed = bool(msg.data)
        if pressed == self._estop:
            return
        self._estop = pressed
        now = self._now()
        self._apply(self.arbiter.engage(E_STOP, ALL, now) if pressed
                    else self.arbiter.disengage(E_STOP, now))

    def _on_event(self, msg: String) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self.get_logger().error(f'episode/event is not a JSON object: {msg.data[:200]!r}',
                                    throttle_duration_sec=1.0)
            return
        if self._hold_source is None:
            return
        now = self._now()
        if event.get('event') == 'end' and event.get('outcome') in self._hold_outcomes:
            self._apply(self.arbiter.engage(HOLD, self._hold_level, now))
        elif event.get('event') == 'start':
            self._apply(self.arbiter.disengage(HOLD, now))
            self._apply(self.arbiter.release(self._hold_source, now))

    def _on_check(self) -> None:
        self._apply(self.arbiter.tick(self._now()))

    # Outputs ------------------------------------------------------------------------------

    def _apply(self, outputs) -> None:
        for out in outputs:
            if self.stopping:
                break
            if out.kind == FORWARD:
                self.command_pub.publish(out.message)
            else:
                self._send_zero(out.stamp_ns)
        events = self.arbiter.take_events()
        for event in events:
            if event.kind == 'warning':
                self.get_logger().warn(event.text)
            else:
                self.get_logger().info(event.text)
        if any(event.kind == 'changed' for event in events):
            self._publish_active()
            self._publish_status()

    def _send_zero(self, stamp_ns=None) -> None:
        if not stamp_ns:
            stamp_ns = self.arbiter.newest_stamp_ns
        if not stamp_ns:
            # Before any stamp (and before /clock, whose time reads 0): the wall clock.
            stamp_ns = self.get_clock().now().nanoseconds or time.time_ns()
        self.command_pub.publish(action_message(self.spec.action,
                                                np.zeros(self.spec.action.size), stamp_ns,
                                                self.frame_id))

    def fail_safe(self) -> None:
        """Command zero: a fault, or stopping."""
        self._send_zero()

    def command_publishers(self) -> tuple:
        return (self.command_pub,)

    def _publish_active(self) -> None:
        self.active_pub.publish(String(data=self.arbiter.active or 'none'))

    def _publish_status(self) -> None:
        self.status.publish(**self.arbiter.status(), output_topic=self.output_topic,
                            e_stop=self._estop, faults=self.fault_count,
                            last_fault=self.last_fault)


def main(args=None) -> int:
    return run(lambda: CommandArbiter(), args, name='command_arbiter')


if __name__ == '__main__':
    sys.exit(main())
