"""Transitions over ROS 2: the ``transitions`` message layout, and listening to a loop.

A transition travels as a ``std_msgs/Float64MultiArray`` whose ``layout.dim`` labels each
part, so ``ros2 topic echo`` shows what it holds and a reader refuses anything else:

    obs[n] action[m] next_obs[n] reward[1] flags[1] episode[1] stamp[2] next_stamp[2]

``flags`` is terminated + 2 truncated + 4 intervened; a stamp is (seconds, nanoseconds), each
exact in a float64. ``LoopListener`` subscribes a node to what a running loop publishes (the
spec's sensors, the command, ``reward/terms``, ``episode/step``, ``episode/event``) and feeds
a ``TransitionBuilder``; ``RosEnv`` and the transition publisher node are built on it.
"""

import json
import threading

import numpy as np
from std_msgs.msg import Float64MultiArray, MultiArrayDimension, String

from ilrl_ros import qos
from ilrl_ros.core.observation import ObservationAssembler, ObservationError
from ilrl_ros.core.rl.transitions import Transition, TransitionBuilder
from ilrl_ros.messages import action_from_message, action_message_class, command_stamp_ns

TOPIC = 'transitions'
PARTS = ('obs', 'action', 'next_obs', 'reward', 'flags', 'episode', 'stamp', 'next_stamp')
TERMINATED, TRUNCATED, INTERVENED = 1, 2, 4
# Episode numbers and stamps beyond these are not a loop's (and lose float64 exactness).
MAX_EPISODE = 2 ** 52
MAX_SECONDS = 2 ** 52


class TransitionError(ValueError):
    """A ``transitions`` message that is not a transition of this task."""


def _stamp_parts(stamp_ns: int) -> list:
    return [float(stamp_ns // 1_000_000_000), float(stamp_ns % 1_000_000_000)]


def to_message(t: Transition) -> Float64MultiArray:
    """The ``transitions`` message of ``t``."""
    flags = TERMINATED * t.terminated + TRUNCATED * t.truncated + INTERVENED * t.intervened
    parts = (t.obs, t.action, t.next_obs, [t.reward], [flags], [t.episode],
             _stamp_parts(t.stamp_ns), _stamp_parts(t.next_stamp_ns))
    msg = Float64MultiArray()
    stride = sum(len(p) for p in parts)
    for label, part in zip(PARTS, parts):
        msg.layout.dim.append(MultiArrayDimension(label=label, size=len(part), stride=stride))
    msg.data = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]).tolist()
    return msg


def _stamp(values: np.ndarray, what: str) -> int:
    seconds, nanoseconds = values
    if not (0 <= seconds < MAX_SECONDS and 0 <= nanoseconds < 1e9
            and seconds == int(seconds) and nanoseconds == int(nanoseconds)):
        raise TransitionError(f'{what} must be whole seconds and nanoseconds in [0, 1e9), '
                              f'got {values.tolist()}')
    return int(seconds) * 1_000_000_000 + int(nanoseconds)


def from_message(msg: Float64MultiArray, obs_size: int, action_size: int) -> Transition:
    """The transition in ``msg``, checked against the task's sizes; ``TransitionError`` if not."""
    expected = dict(zip(PARTS, (obs_size, action_size, obs_size, 1, 1, 1, 2, 2)))
    labels = [(d.label, d.size) for d in msg.layout.dim]
    if labels != list(expected.items()):
        raise TransitionError(f'transition layout {labels} is not {list(expected.items())} '
                              f'(observation {obs_size}, action {action_size} values)')
    data = np.asarray(msg.data, dtype=np.float64)
    if data.size != sum(expected.values()):
        raise TransitionError(f'transition has {data.size} values; its layout says '
                              f'{sum(expected.values())}')
    if not np.all(np.isfinite(data)):
        raise TransitionError('transition holds a NaN or an infinity')
    split = np.split(data, np.cumsum(list(expected.values()))[:-1])
    part = dict(zip(PARTS, split))
    flags, episode = part['flags'][0], part['episode'][0]
    if flags not in range(8) or int(flags) & (TERMINATED | TRUNCATED) == TERMINATED | TRUNCATED:
        raise TransitionError(f'transition flags {flags!r} are not terminated + 2 truncated + '
                              f'4 intervened with at most one of the first two')
    if not (0 <= episode < MAX_EPISODE and episode == int(episode)):
        raise TransitionError(f'transition episode {episode!r} is not a whole number >= 0')
    if np.any(np.abs(part['obs']) > 3.4e38) or np.any(np.abs(part['next_obs']) > 3.4e38) \
            or np.any(np.abs(part['action']) > 3.4e38) or abs(part['reward'][0]) > 3.4e38:
        raise TransitionError('transition values must fit a float32 (|x| <= 3.4e38)')
    flags = int(flags)
    return Transition(obs=part['obs'].astype(np.float32),
                      action=part['action'].astype(np.float32),
                      reward=float(part['reward'][0]),
                      next_obs=part['next_obs'].astype(np.float32),
                      terminated=bool(flags & TERMINATED), truncated=bool(flags & TRUNCATED),
                      stamp_ns=_stamp(part['stamp'], 'stamp'),
                      next_stamp_ns=_stamp(part['next_stamp'], 'next_stamp'),
                      episode=int(episode), intervened=bool(flags & INTERVENED))


def _json_object(msg: String, topic: str) -> dict:
    try:
        value = json.loads(msg.data)
    except json.JSONDecodeError as error:
        raise ValueError(f'{topic}: not JSON ({error})') from None
    if not isinstance(value, dict):
        raise ValueError(f'{topic}: expected a JSON object, got {type(value).__name__}')
    return value


class LoopListener:
    """Feeds a ``TransitionBuilder`` from what a running loop publishes.

    Observations are assembled from the spec's sources exactly as the policy node assembles
    them (same spec, same ``ObservationAssembler``). With ``listen_commands`` the command
    topic is read too (the transition publisher); ``RosEnv`` tells the builder its own
    commands instead. ``intervention_topic`` is where the actor names the observations a
    person answered (the policy node's ``policy/intervention``). Episode starts and ends
    (``episode/event``) are kept in ``starts`` and ``ended``. All state is guarded by
    ``lock``; ``changed`` is notified whenever something arrives.
    """

    def __init__(self, node, spec, *, listen_commands: bool, intervention_topic: str = '',
                 callback_group=None, horizon: int = 2000):
        from ilrl_ros.nodes.common import SourceSubscriptions
        self.node, self.spec = node, spec
        self.builder = TransitionBuilder(spec.action.size, horizon=horizon,
                                         action_history=spec.observation.action_history)
        self.assembler = ObservationAssembler(spec)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.starts = {}          # episode -> start stamp
        self.ended = {}           # episode -> outcome
        self.errors = 0
        self.last_error = ''
        self.sources = SourceSubscriptions(node, spec, self.assembler.sources,
                                           self._on_reading, self._on_error, callback_group,
                                           qos.SENSOR_EVERY)
        node.create_subscription(String, 'reward/terms', self._on_reward, qos.STEPS,
                                 callback_group=callback_group)
        node.create_subscription(String, 'episode/step', self._on_step, qos.STEPS,
                                 callback_group=callback_group)
        node.create_subscription(String, 'episode/event', self._on_event, qos.EVENTS,
                                 callback_group=callback_group)
        if listen_commands:
            node.create_subscription(action_message_class(spec.action), spec.action.topic,
                                     self._on_command, qos.COMMAND,
                                     callback_group=callback_group)
        if intervention_topic:
            node.create_subscription(String, intervention_topic, self._on_intervention,
                                     qos.STEPS, callback_group=callback_group)

    def _on_error(self, source: str, text: str) -> None:
        with self.lock:
            self.errors += 1
            self.last_error = text
        self.node.get_logger().error(f'transitions: {text}', throttle_duration_sec=1.0)

    def _notify(self) -> None:
        self.changed.notify_all()

    def _on_reading(self, source: str, reading) -> None:
        with self.lock:
            self.assembler.update(source, reading, self.node.get_clock().now().nanoseconds)
            try:
                observation = self.assembler.poll()
            except ObservationError as error:
                self.errors += 1
                self.last_error = str(error)
                return
            if observation is not None:
                self.builder.observation(observation.stamp_ns, observation.vector)
                self._notify()

    def _on_command(self, msg) -> None:
        try:
            action = self.spec.action.clip(action_from_message(self.spec.action, msg))
        except ValueError as error:
            # A command of the wrong size or with an unreadable stamp pairs with nothing.
            self._on_error('command', str(error))
            return
        answers = command_stamp_ns(self.spec.action, msg)
        with self.lock:
            self.builder.command(action, answers)
            self._notify()

    def _on_intervention(self, msg: String) -> None:
        # The actor names the observation a person's command answered.
        stamp = int(_json_object(msg, 'intervention')['stamp_ns'])
        with self.lock:
            self.builder.mark_intervened(stamp)

    def _on_reward(self, msg: String) -> None:
        terms = _json_object(msg, 'reward/terms')
        with self.lock:
            self.builder.reward(int(terms['stamp_ns']), float(terms['reward']),
                                int(terms.get('episode_start_ns', 0)))
            self._notify()

    def _on_step(self, msg: String) -> None:
        step = _json_object(msg, 'episode/step')
        with self.lock:
            self.builder.step(int(step['episode']), int(step['stamp_ns']),
                              int(step['previous_stamp_ns']), int(step['start_ns']),
                              step.get('outcome'), bool(step['terminated']),
                              bool(step['truncated']))
            if step.get('outcome') is not None:
                self.ended[int(step['episode'])] = step['outcome']
            self._notify()

    def _on_event(self, msg: String) -> None:
        event = _json_object(msg, 'episode/event')
        with self.lock:
            if event.get('event') == 'start':
                self.starts[int(event['episode'])] = int(event['stamp_ns'])
            elif event.get('event') == 'end':
                self.ended[int(event['episode'])] = str(event.get('outcome'))
            self._notify()


def read_transitions(bag, obs_size: int, action_size: int, topic: str = '/' + TOPIC):
    """The transitions a recorder kept in ``bag``, in log-time order, and what was refused.

    Returns (transitions, problems): each problem a sentence naming the message (a
    transition of another task, a damaged message) or the part of the bag lost.
    """
    from ilrl_ros.bag import BagError, BagMessageError, open_bag
    out, problems = [], []
    with open_bag(bag) as reader:
        if topic not in reader.topics:
            raise BagError(f'{bag}: no {topic} topic (recorded: '
                           f'{", ".join(sorted(reader.topics)) or "none"}); record it with '
                           '`ilrl learn --record` or the recorder topic list')
        for index, message in enumerate(reader.messages([topic])):
            try:
                out.append(from_message(reader.deserialize(message), obs_size, action_size))
            except (TransitionError, BagMessageError, ValueError) as error:
                problems.append(f'{topic} message {index}: {error}')
        problems += [str(loss) for loss in reader.losses]
    return out, problems
