"""Turn a recorded bag into a demonstration dataset for a task, aligned on the control clock.

Every command on the action topic (the commands that were executed: the control clock) anchors
one row. The row's time is the command's stamp when it has one (TwistStamped in its header, a
Float64MultiArray of efforts in its layout's ``stamp_ns=`` label: the observation it answers)
and otherwise the time the recorder received it (the bag's log time). Each observation source
then gives the newest reading at or before that time (header stamps against a stamp, log times
against a log time) if it lies within the alignment tolerance; a source with no such reading
drops the row, counted under a reason that names the topic and the gap. Nothing is ever filled
in or interpolated.

The action label is the command itself, or, with a label topic (an expert's ``expert/action``,
a teleoperator's ``teleop/cmd_vel``), the newest label message at or before the row's time
within the label tolerance; a state with no label in time is dropped as unlabelled. Compared
by log time (when either side has no stamp), a label must have arrived before the command: an
unstamped expert that answers after the commander does labels each state with its answer to
the previous one, so prefer stamped labels (TwistStamped) where the message type has a header.

A bag is read checked: chunks that fail their CRC or do not decode are skipped, and the report
lists them (``corrupt``, ``losses``) with the per-topic counts of what was read. Such a bag is
refused unless ``allow_partial`` is given, since its dataset would silently miss rows; a bag
merely cut short (a killed recorder: ``truncated``) converts, with a warning.

Rows are assigned to episodes by the episode manager's start/end events, and each row gets the
reward the reward monitor published for the step that starts at the row's observation, matched
by the stamp in ``reward/terms``. A bag with only ``reward`` (Float64, no stamp) gets each
reward matched to the newest sensor stamp received before it: approximate, since a reward can
reach the recorder before the readings it was computed from. The :class:`ConversionReport`
says what was kept and dropped, and why.

When the spec has ``observation.action_history`` k > 0, each row's observation is followed by
the last k commands on the action topic before the row's own (oldest first, as the policy
node's input is), from the start of the row's episode: a command belongs to the episode
from whose start on its time lies (its header stamp, or for an unstamped command the newest
sensor stamp received before it), and the places of commands from before the start are
zeros. A row whose history holds a command that could not be read is dropped.

Example::

    data, report = bag_to_dataset('bags/teleop_001', load_spec('track_follow'),
                                  label_topic='teleop/cmd_vel', label_tolerance_s=0.15)
    print(report.summary())
"""

from bisect import bisect_left, bisect_right
from collections import Counter
import dataclasses
from dataclasses import dataclass, field
import json
import logging
import math

import numpy as np

from ilrl_ros.bag import BagMessageError, format_log_time, open_bag
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.observation import ActionHistory, extract_observation, ObservationError
from ilrl_ros.core.spec import ActionSpec, TaskSpec
from ilrl_ros.messages import (action_from_message, command_stamp_ns, reading_from_message,
                               stamp_to_ns)

# Message types a command or label topic may carry, per action type: teleop tools publish
# Twist even where the robot takes TwistStamped, so either is read for a twist action.
LABEL_TYPES = {
    'twist': ('geometry_msgs/msg/Twist', 'geometry_msgs/msg/TwistStamped'),
    'float64_multi_array': ('std_msgs/msg/Float64MultiArray',),
}
NS = 1_000_000_000

logger = logging.getLogger(__name__)


class ConversionError(ValueError):
    """A bag cannot be converted for the task; the message names the bag and the problem."""


@dataclass
class ConversionReport:
    """What a conversion kept and dropped, and why."""

    bag: str
    """The bag that was converted."""
    rows: int = 0
    """Rows kept in the dataset."""
    episodes: int = 0
    """Episodes the kept rows belong to."""
    truncated: bool = False
    """True when the bag was cut short (its recorder was killed); it was read up to the cut."""
    truncated_after_ns: int = None
    """For a bag cut short: the newest log time read before the cut (later ones are missing)."""
    corrupt: bool = False
    """True when damaged parts of the bag were skipped (see ``losses``): messages were lost."""
    losses: list = field(default_factory=list)
    """The damaged parts skipped: file, chunk, byte offset, log times, reason, messages lost."""
    lost_messages: dict = field(default_factory=dict)
    """Messages lost per topic, as the damaged chunks' message indexes count them."""
    commands: int = 0
    """Messages on the action (anchor) topic: one candidate row each."""
    dropped: Counter = field(default_factory=Counter)
    """Rows dropped, by reason."""
    dropped_gaps_s: dict = field(default_factory=dict)
    """For reasons about a reading too old: the smallest and largest gap seen [s]."""
    skipped_messages: Counter = field(default_factory=Counter)
    """Messages that could not be used (malformed events or rewards), by reason."""
    unlabeled: int = 0
    """States with a complete observation but no label within the label tolerance."""
    topic_counts: dict = field(default_factory=dict)
    """Messages per topic actually read from the bag."""
    topic_counts_indexed: dict = field(default_factory=dict)
    """Messages per topic as the bag's index (or, for a bag cut short, its scan) counts them."""
    action_topic: str = ''
    """The topic whose commands anchor the rows."""
    label_topic: str = ''
    """The topic the labels came from ('' when the commands are the labels)."""
    align_tolerance_s: dict = field(default_factory=dict)
    """Alignment tolerance used for rows anchored on a header stamp ('stamp') or log time."""
    label_tolerance_s: dict = field(default_factory=dict)
    """Label tolerance used when comparing header stamps ('stamp') or log times ('log')."""
    anchored: Counter = field(default_factory=Counter)
    """Commands anchored on their stamp ('stamp': header, or layout label of efforts) or on
    their log time ('log')."""
    gaps_s: dict = field(default_factory=dict)
    """Per source topic (and 'label'), over kept rows: max and mean age of what was used [s]."""
    reward_alignment: str = 'none'
    """How rewards were attached: 'stamp' (reward/terms), 'arrival' (reward only) or 'none'."""
    rows_with_reward: int = 0
    """Kept rows that got a reward."""

    def drop(self, reason: str, gap_ns: int = None) -> None:
        """Count one dropped row under ``reason``, remembering the gap if there is one."""
        self.dropped[reason] += 1
        if gap_ns is not None:
            gap = gap_ns / NS
            low, high = self.dropped_gaps_s.get(reason, (gap, gap))
            self.dropped_gaps_s[reason] = (min(low, gap), max(high, gap))

    def summary(self) -> str:
        """A few lines for a terminal: counts in, rows out, and every reason for a drop."""
        cut = (' (bag was cut short: its recorder was killed; read up to the cut)'
               if self.truncated else '')
        labels = f', labels from {self.label_topic}' if self.label_topic else ''
        lines = [f'{self.bag}: {self.commands} commands on {self.action_topic}{labels} -> '
                 f'{self.rows} rows in {self.episodes} episodes{cut}']
        if self.truncated:
            lines.append(f'  cut short: {self.truncation_text()}')
        if self.corrupt:
            lines.append(f'  CORRUPT: {self.loss_text()}')
            lines.extend(f'    {loss["text"]}' for loss in self.losses)
        used = ', '.join(f'{n} by {"stamp" if k == "stamp" else "log time"} '
                         f'(tolerance {self.align_tolerance_s[k]:.3f} s)'
                         for k, n in sorted(self.anchored.items()))
        if used:
            lines.append(f'  aligned {used}')
        for topic, gap in self.gaps_s.items():
            lines.append(f'  {topic}: age at the command max {gap["max"]:.3f} s, '
                         f'mean {gap["mean"]:.3f} s')
        for reason, count in sorted(self.dropped.items()):
            lines.append(f'  dropped {count}: {reason}{self._gap_text(reason)}')
        for reason, count in sorted(self.skipped_messages.items()):
            lines.append(f'  skipped {count} messages: {reason}')
        if self.label_topic:
            lines.append(f'  unlabelled states: {self.unlabeled}')
        lines.append(f'  rewards: {self.rows_with_reward} of {self.rows} rows '
                     f'({self._reward_text()})')
        return '\n'.join(lines)

    def to_dict(self) -> dict:
        """Everything in the report as JSON-ready values."""
        out = dataclasses.asdict(self)
        out['dropped'] = {reason: count for reason, count in sorted(self.dropped.items())}
        out['dropped_gaps_s'] = {r: list(g) for r, g in sorted(self.dropped_gaps_s.items())}
        out['skipped_messages'] = dict(sorted(self.skipped_messages.items()))
        out['anchored'] = dict(self.anchored)
        out['dropped_total'] = sum(self.dropped.values())
        return out

    def truncation_text(self) -> str:
        """What a bag cut short is missing, in one sentence."""
        if self.truncated_after_ns is None:
            return 'no message was recorded before the cut'
        return (f'messages logged after {format_log_time(self.truncated_after_ns)} (the last '
                'complete chunk) are missing')

    def loss_text(self) -> str:
        """How much a corrupt bag lost, in one sentence."""
        counted = sum(self.lost_messages.values())
        unknown = sum(1 for loss in self.losses if loss['messages'] is None)
        lost = f'{counted} messages lost'
        if self.lost_messages:
            lost += ' (' + ', '.join(f'{topic}: {count}' for topic, count in
                                     sorted(self.lost_messages.items())) + ')'
        if unknown:
            lost += f', plus an unknown number in {unknown} unreadable part(s)'
        read = sum(self.topic_counts.values())
        return (f'{len(self.losses)} damaged part(s) of the bag skipped, {lost}; '
                f'{read} messages read')

    def _gap_text(self, reason: str) -> str:
        if reason not in self.dropped_gaps_s:
            return ''
        low, high = self.dropped_gaps_s[reason]
        if f'{low:.3f}' == f'{high:.3f}':
            return f' (gap {low:.3f} s)'
        return f' (gap {low:.3f} to {high:.3f} s)'

    def _reward_text(self) -> str:
        return {'stamp': 'attached by stamp from reward/terms',
                'arrival': 'approximate: reward/terms was not recorded, so each reward '
                           'went to the newest sensor stamp received before it',
                'none': 'the bag has no rewards'}[self.reward_alignment]


@dataclass
class _Stream:
    """The messages of one topic: bag order, log times and header stamps (None if unstamped)."""

    topic: str
    index: list = field(default_factory=list)
    log_ns: list = field(default_factory=list)
    stamp_ns: list = field(default_factory=list)
    payload: list = field(default_factory=list)
    _by_stamp: list = None

    def add(self, index: int, log_ns: int, stamp_ns, payload=None) -> None:
        self.index.append(index)
        self.log_ns.append(log_ns)
        self.stamp_ns.append(stamp_ns)
        self.payload.append(payload)

    @property
    def stamped(self) -> bool:
        return any(s for s in self.stamp_ns)

    def newest_at_or_before(self, domain: str, time_ns: int, bag_index: int):
        """The position of the newest message at or before the anchor, and its age [ns].

        In the 'stamp' domain header stamps are compared with ``time_ns``; in the 'log' domain
        the message must have been received no later than the anchor (bag order, so equal log
        times keep their order of arrival) and its age is measured in log time.
        """
        if domain == 'stamp':
            if self._by_stamp is None:
                self._by_stamp = sorted((s, i, k) for k, (s, i) in
                                        enumerate(zip(self.stamp_ns, self.index)) if s)
            # The last entry with stamp <= time (latest received among equal stamps).
            at = bisect_right(self._by_stamp, (time_ns, math.inf, math.inf)) - 1
            if at < 0:
                return None, None
            stamp, _, position = self._by_stamp[at]
            return position, time_ns - stamp
        at = bisect_right(self.index, bag_index) - 1
        if at < 0:
            return None, None
        return at, time_ns - self.log_ns[at]


@dataclass
class _Row:
    command_index: int
    readings: dict
    label: np.ndarray
    gaps: dict
    command_position: int = -1
    vector: np.ndarray = None
    stamp_ns: int = 0
    reward: float = math.nan


def _topic_key(name: str) -> str:
    return name.lstrip('/')


def _episode_intervals(events: list) -> list:
    """[(episode, start_ns, end_ns)] from start/end events (end may be open: inf)."""
    intervals, open_start = [], {}
    for event in events:
        episode = event.get('episode')
        if event.get('event') == 'start':
            open_start[episode] = int(event['stamp_ns'])
        elif event.get('event') == 'end' and episode in open_start:
            intervals.append((episode, open_start.pop(episode), int(event['stamp_ns'])))
    for episode, start in open_start.items():
        intervals.append((episode, start, math.inf))
    return sorted(intervals, key=lambda item: item[1])


def _header_stamp(msg):
    """The header stamp of a message in ns, or None when it has no header or a zero stamp."""
    header = getattr(msg, 'header', None)
    if header is None:
        return None
    return stamp_to_ns(header.stamp) or None


def _command_stamp(action: ActionSpec, msg):
    """The stamp of the observation a command or label answers in ns, or None if it has none.

    A Float64MultiArray names it in its layout (``messages.STAMP_LABEL``); one whose layout
    claims a stamp unreadably gets None here and is dropped as unusable by ``_action_values``.
    """
    if action.type == 'twist':
        return _header_stamp(msg)
    try:
        return command_stamp_ns(action, msg) or None
    except ValueError:
        return None


def _action_values(action: ActionSpec, msg) -> np.ndarray:
    """The action vector of a command or label, whether or not a twist is stamped."""
    if action.type == 'twist':
        return action_from_message(
            dataclasses.replace(action, stamped=hasattr(msg, 'header')), msg)
    return action_from_message(action, msg)


def _check_type(bag_path, topic: str, type_name: str, action: ActionSpec, role: str) -> None:
    allowed = LABEL_TYPES.get(action.type, (action.message_type,))
    if type_name not in allowed:
        raise ConversionError(
            f'bag {bag_path}: {role} topic /{topic} carries {type_name}; a {action.type} '
            f'action is read from {" or ".join(allowed)}')


def bag_to_dataset(bag_path, spec: TaskSpec, action_topic: str = None, label_topic: str = None,
                   label_tolerance_s: float = None, align_tolerance_s: float = None,
                   event_topic: str = 'episode/event', reward_topic: str = 'reward',
                   allow_partial: bool = False, namespace: str = ''):
    """Convert a bag to ``Demonstrations`` aligned on the commands; return (dataset, report).

    ``action_topic``: the executed commands that anchor the rows (default: the task's command
    topic). ``label_topic``: where the action labels come from (default: the commands
    themselves); Twist or TwistStamped for a twist action, Float64MultiArray otherwise.
    ``align_tolerance_s``: how old a source's reading may be at the command (default: the
    spec's ``observation.sync_tolerance_s`` for a stamped command, which names the observation
    it answers; ``observation.max_age_s`` for one aligned by log time, the age past which the
    policy node itself treats an input as stale). ``label_tolerance_s``: how old a label may be
    at the command (default: ``sync_tolerance_s`` when both carry stamps, else one control
    period). Episodes come from ``event_topic``, rewards from ``reward_topic`` + '/terms'
    (stamped) or else ``reward_topic``. Raises :class:`ConversionError` for a bag that lacks
    what the task needs or yields no row, and for a corrupt bag (damaged chunks skipped)
    unless ``allow_partial``; a bag cut short (a killed recorder) converts with a warning.
    ``namespace``: the robot of a fleet whose topics to read (``robot_2``: ``/robot_2/scan``
    for the task's ``scan``; the other robots' topics in a shared bag are left alone).
    """
    action: ActionSpec = spec.action
    prefix = namespace.strip('/') + '/' if namespace.strip('/') else ''

    def _robot_key(name: str) -> str:
        # Relative names are the robot's; an absolute one names its topic in full.
        return name.lstrip('/') if name.startswith('/') else prefix + name

    action_topic = _robot_key(action_topic or action.topic)
    label_topic = _robot_key(label_topic) if label_topic else None
    for name, value in (('align_tolerance_s', align_tolerance_s),
                        ('label_tolerance_s', label_tolerance_s)):
        if value is not None and not (math.isfinite(value) and value >= 0.0):
            raise ConversionError(f'{name} must be a number of seconds >= 0, got {value!r}')
    align_ns = {
        'stamp': round(NS * (spec.observation.sync_tolerance_s if align_tolerance_s is None
                             else align_tolerance_s)),
        'log': round(NS * (spec.observation.max_age_s if align_tolerance_s is None
                           else align_tolerance_s)),
    }
    label_ns = {
        'stamp': round(NS * (spec.observation.sync_tolerance_s if label_tolerance_s is None
                             else label_tolerance_s)),
        'log': round(NS * (spec.dt if label_tolerance_s is None else label_tolerance_s)),
    }
    report = ConversionReport(bag=str(bag_path), action_topic='/' + action_topic,
                              label_topic='/' + label_topic if label_topic else '',
                              align_tolerance_s={k: v / NS for k, v in align_ns.items()},
                              label_tolerance_s=({k: v / NS for k, v in label_ns.items()}
                                                 if label_topic else {}))
    sources = {_robot_key(spec.sources[s].topic): spec.sources[s]
               for s in spec.observation.sources}
    event_key, reward_key = _robot_key(event_topic), _robot_key(reward_topic)
    terms_key = reward_key + '/terms'

    with open_bag(bag_path) as reader:
        names = {_topic_key(name): name for name in reader.topics}
        report.topic_counts_indexed = {name: info.count
                                       for name, info in sorted(reader.topics.items())}
        types = {_topic_key(name): info.type_name for name, info in reader.topics.items()}
        needed = [*sources, action_topic] + ([label_topic] if label_topic else [])
        missing = [t for t in needed if t not in names]
        if missing:
            damage = ''.join(f'\n  (the bag is damaged: {loss.describe()})'
                             for loss in reader.losses)
            raise ConversionError(
                f'bag {bag_path} lacks topic(s) {", ".join("/" + t for t in missing)} that '
                f'task {spec.name!r} needs; it has '
                f'{", ".join(sorted(reader.topics)) or "no topics"}{damage}')
        _check_type(bag_path, action_topic, types[action_topic], action, 'action')
        if label_topic:
            _check_type(bag_path, label_topic, types[label_topic], action, 'label')
        for topic, source in sources.items():
            if types[topic] != source.message_type:
                raise ConversionError(
                    f'bag {bag_path}: /{topic} carries {types[topic]}, source '
                    f'{source.name!r} expects {source.message_type}')

        streams = {t: _Stream('/' + t) for t in [*sources, action_topic, label_topic] if t}
        events, terms, plain_rewards = [], [], []
        wanted = {t for t in [*streams, event_key, reward_key, terms_key] if t in names}
        read = Counter()
        # Every topic is read (not just those wanted), so that every chunk is checked and the
        # report counts what the bag really holds.
        for index, message in enumerate(reader.messages()):
            read[message.topic] += 1
            topic = _topic_key(message.topic)
            if topic not in wanted:
                continue
            try:
                msg = reader.deserialize(message)
            except BagMessageError as problem:
                msg, undecodable = None, str(problem)
                report.skipped_messages[f'/{topic}: does not decode as {message.type_name}'] += 1
            if topic in sources:
                # Only the stamp now: the chosen readings are decoded in a second pass, so
                # a long bag of images need not fit in memory.
                streams[topic].add(index, message.log_time_ns,
                                   _header_stamp(msg) if msg is not None else None)
            if msg is None:
                if topic == action_topic or topic == label_topic:
                    for key in {action_topic, label_topic} & {topic}:
                        streams[key].add(index, message.log_time_ns, None, (None, undecodable))
                continue
            if topic == action_topic or topic == label_topic:
                try:
                    values, error = action.check(_action_values(action, msg), 'the command'), ''
                except ValueError as problem:
                    values, error = None, str(problem)
                for key in {action_topic, label_topic} & {topic}:
                    streams[key].add(index, message.log_time_ns, _command_stamp(action, msg),
                                     (values, error))
            if topic == event_key:
                try:
                    events.append(json.loads(msg.data))
                except (json.JSONDecodeError, AttributeError):
                    report.skipped_messages[f'/{event_key}: not JSON'] += 1
            elif topic == terms_key:
                try:
                    entry = json.loads(msg.data)
                    terms.append((int(entry['stamp_ns']), float(entry['reward'])))
                except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
                    report.skipped_messages[f'/{terms_key}: not JSON with stamp_ns and '
                                            'reward'] += 1
            elif topic == reward_key:
                plain_rewards.append((index, float(msg.data)))
        _account_for_losses(reader, read, report, bag_path, allow_partial)

        rows = _align(spec, streams, sources, action_topic, label_topic, align_ns, label_ns,
                      report)
        _decode_readings(reader, names, sources, rows, report)

    rows = _build_observations(spec, rows, sources, report)
    intervals = _episode_intervals(events)
    _attach_rewards(rows, _reward_entries(terms, plain_rewards, streams, sources, report),
                    intervals)
    history = _CommandHistory(spec, streams[action_topic], streams, sources) \
        if spec.observation.action_history else None
    kept = []
    for row in rows:
        start_ns = -math.inf
        if intervals:
            episode, start_ns = next(((e, start) for e, start, end in intervals
                                      if start <= row.stamp_ns < end), (None, None))
            if episode is None:
                report.drop('outside any episode (during a reset)')
                continue
        else:
            episode = 0
        if history is not None:
            try:
                row.vector = history.augment(row, start_ns)
            except ValueError as problem:
                report.drop(str(problem))
                continue
        kept.append((row, episode))
    if not kept:
        raise ConversionError(f'bag {bag_path}: no usable rows for task {spec.name!r}\n'
                              + report.summary())
    report.rows = len(kept)
    report.episodes = len({episode for _, episode in kept})
    report.rows_with_reward = sum(1 for row, _ in kept if not math.isnan(row.reward))
    for key in [*(f'/{t}' for t in sources), 'label']:
        gaps = [row.gaps[key] / NS for row, _ in kept if key in row.gaps]
        if gaps:
            report.gaps_s[key] = {'max': max(gaps), 'mean': sum(gaps) / len(gaps)}
    data = Demonstrations(
        observations=np.stack([row.vector for row, _ in kept]).astype(np.float32),
        actions=np.stack([row.label for row, _ in kept]).astype(np.float32),
        episode=np.array([episode for _, episode in kept], dtype=np.int64),
        stamp_ns=np.array([row.stamp_ns for row, _ in kept], dtype=np.int64),
        reward=np.array([row.reward for row, _ in kept], dtype=np.float64),
        spec_json=spec.to_json(),
        info={'bag': str(bag_path), 'action_topic': report.action_topic,
              'label_topic': report.label_topic, 'truncated': report.truncated,
              'corrupt': report.corrupt,
              'align_tolerance_s': report.align_tolerance_s,
              'label_tolerance_s': report.label_tolerance_s,
              'reward_alignment': report.reward_alignment,
              'dropped': dict(report.dropped)})
    return data, report


def _account_for_losses(reader, read: Counter, report: ConversionReport, bag_path,
                        allow_partial: bool) -> None:
    """Put what the reader read and lost into the report; refuse a corrupt bag unless allowed."""
    report.topic_counts = {name: read.get(name, 0) for name in sorted(reader.topics)}
    report.truncated = reader.truncated
    report.truncated_after_ns = reader.truncated_after_ns
    report.losses = [loss.to_dict() for loss in reader.losses]
    report.corrupt = reader.corrupt
    lost = Counter()
    for loss in reader.losses:
        lost.update(loss.messages or {})
    report.lost_messages = dict(sorted(lost.items()))
    if report.truncated:
        logger.warning('bag %s was cut short (its recorder was probably killed): %s.', bag_path,
                       report.truncation_text())
    if report.corrupt and not allow_partial:
        raise ConversionError(
            f'bag {bag_path} is corrupt: {report.loss_text()}.\n'
            + '\n'.join(f'  {loss["text"]}' for loss in report.losses)
            + '\nNo dataset was written; rerun with --allow-partial (allow_partial=True) to '
            'accept the loss and convert what was read.')


def _align(spec, streams, sources, action_topic, label_topic, align_ns, label_ns, report):
    """One candidate row per usable command whose sources (and label) are all in time."""
    commands, labels = streams[action_topic], streams.get(label_topic)
    label_stamped = labels is not None and labels.stamped
    rows = []
    for k, bag_index in enumerate(commands.index):
        report.commands += 1
        values, error = commands.payload[k]
        if values is None and not label_topic:
            report.drop(f'unusable command on {commands.topic}: {error}')
            continue
        stamp = commands.stamp_ns[k]
        domain, time_ns = ('stamp', stamp) if stamp else ('log', commands.log_ns[k])
        report.anchored[domain] += 1
        where = 'the command stamp' if domain == 'stamp' else 'the command'
        readings, gaps, reason = {}, {}, None
        for topic, source in sources.items():
            position, gap = streams[topic].newest_at_or_before(domain, time_ns, bag_index)
            if position is None:
                reason = (f'no /{topic} at or before {where}', None)
            elif gap > align_ns[domain]:
                reason = (f'no /{topic} within {align_ns[domain] / NS:.3f} s before {where}',
                          gap)
            if reason:
                break
            readings[source.name] = (topic, position)
            gaps['/' + topic] = gap
        if reason:
            report.drop(*reason)
            continue
        if label_topic:
            label_domain = 'stamp' if domain == 'stamp' and label_stamped else 'log'
            position, gap = labels.newest_at_or_before(
                label_domain, time_ns if label_domain == domain else commands.log_ns[k],
                bag_index)
            if position is None or gap > label_ns[label_domain]:
                report.unlabeled += 1
                report.drop(f'unlabelled state: no /{label_topic} within '
                            f'{label_ns[label_domain] / NS:.3f} s before {where}'
                            if label_domain == domain else
                            f'unlabelled state: no /{label_topic} within '
                            f'{label_ns[label_domain] / NS:.3f} s before the command '
                            '(log time)', gap)
                continue
            values, error = labels.payload[position]
            if values is None:
                report.drop(f'unusable label on /{label_topic}: {error}')
                continue
            gaps['label'] = gap
        rows.append(_Row(command_index=bag_index, readings=readings, label=values, gaps=gaps,
                         command_position=k))
    return rows


def _decode_readings(reader, names, sources, rows, report) -> None:
    """Second pass over the sensor topics: decode just the readings the rows use."""
    wanted = {}
    for row in rows:
        for topic, position in row.readings.values():
            wanted.setdefault(topic, set()).add(position)
    decoded = {}
    counters = Counter()
    topics = [names[t] for t in sources]
    for message in reader.messages(topics):
        topic = _topic_key(message.topic)
        position = counters[topic]
        counters[topic] += 1
        if position not in wanted.get(topic, ()):
            continue
        source = sources[topic]
        try:
            decoded[topic, position] = reading_from_message(
                source.kind, reader.deserialize(message), source.name)
        except ObservationError as error:
            decoded[topic, position] = error
        except BagMessageError as error:
            decoded[topic, position] = ObservationError(str(error))
    for row in rows:
        row.readings = {name: decoded[key] for name, key in row.readings.items()}


def _build_observations(spec, rows, sources, report) -> list:
    """Observation vectors for the rows; malformed inputs and repeated observations dropped."""
    built, seen = [], set()
    for row in rows:
        bad = [r for r in row.readings.values() if isinstance(r, ObservationError)]
        if bad:
            report.drop(f'malformed reading: {bad[0]}')
            continue
        try:
            row.vector = extract_observation(spec, row.readings)
        except ObservationError as error:
            report.drop(f'observation not buildable: {error}')
            continue
        key = tuple(sorted((name, r.stamp_ns) for name, r in row.readings.items()))
        if key in seen:
            report.drop('a second command for the same observation')
            continue
        seen.add(key)
        row.stamp_ns = max(r.stamp_ns for r in row.readings.values())
        built.append(row)
    return built


class _CommandHistory:
    """The commands before each row's, appended to its observation (``action_history``)."""

    def __init__(self, spec, commands: _Stream, streams: dict, sources: dict):
        self.spec = spec
        self.commands = commands
        # A command's time, to place it in an episode: its stamp, else the newest sensor
        # stamp received before it (the observation it most likely answers).
        received = sorted((i, s) for topic in sources
                          for i, s in zip(streams[topic].index, streams[topic].stamp_ns) if s)
        indices, newest = [i for i, _ in received], []
        for _, stamp in received:
            newest.append(max(stamp, newest[-1]) if newest else stamp)
        self.times = []
        for bag_index, stamp in zip(commands.index, commands.stamp_ns):
            if stamp:
                self.times.append(stamp)
            else:
                at = bisect_left(indices, bag_index) - 1
                self.times.append(newest[at] if at >= 0 else -math.inf)

    def augment(self, row: _Row, start_ns: float) -> np.ndarray:
        """The row's observation followed by the commands before it since ``start_ns``."""
        history = ActionHistory(self.spec)
        position = row.command_position
        first = position
        while first > max(0, position - history.length) and self.times[first - 1] >= start_ns:
            first -= 1
        for j in range(first, position):
            values, error = self.commands.payload[j]
            if values is None:
                raise ValueError(f'unusable command on {self.commands.topic} in the action '
                                 f'history: {error}')
            history.push(values)
        return history.augment(row.vector)


def _reward_entries(terms, plain_rewards, streams, sources, report) -> list:
    """[(stamp_ns, reward)] in order of arrival, from reward/terms or else from reward.

    ``reward/terms`` carries the stamp of the readings that ended the step. A bare ``reward``
    (Float64) carries none: it gets the newest sensor stamp the recorder received before it,
    since the reward monitor publishes it as soon as that step's readings arrive.
    """
    if terms:
        report.reward_alignment = 'stamp'
        return terms
    if not plain_rewards:
        return []
    report.reward_alignment = 'arrival'
    received = sorted((i, s) for topic in sources
                      for i, s in zip(streams[topic].index, streams[topic].stamp_ns) if s)
    indices, newest, entries = [i for i, _ in received], [], []
    for _, stamp in received:
        newest.append(max(stamp, newest[-1]) if newest else stamp)
    for bag_index, reward in plain_rewards:
        at = bisect_left(indices, bag_index) - 1
        if at < 0:
            report.skipped_messages['rewards received before any sensor reading'] += 1
            continue
        entries.append((newest[at], reward))
    return entries


def _attach_rewards(rows, entries, intervals) -> None:
    """Give each row the reward of the step from its observation to the next row's.

    The reward monitor publishes, for every new synchronised set of readings, the reward of
    the step that ended there, with that set's stamp. A step ending at stamp n belongs to the
    row with the newest observation before n (several such steps, when commands are slower
    than the sensors or a row was dropped, add up). A step that ends after the row's episode
    ended crossed a reset and belongs to no row. A stamp published twice (the monitor scores
    the first readings of a new episode again) counts with its last value.
    """
    by_stamp = dict(entries)  # the last value for a stamp wins
    order = sorted(range(len(rows)), key=lambda i: rows[i].stamp_ns)
    stamps = [rows[i].stamp_ns for i in order]
    for stamp, reward in sorted(by_stamp.items()):
        at = bisect_left(stamps, stamp) - 1
        if at < 0:
            continue
        row = rows[order[at]]
        end = next((end for _, start, end in intervals if start <= row.stamp_ns < end),
                   math.inf)
        if stamp > end:
            continue
        row.reward = reward if math.isnan(row.reward) else row.reward + reward
