"""Turn a recorded bag into a demonstration dataset for the task spec.

Every command on the action topic becomes one row: the observation the commander saw, built
with the same code the policy node uses from the recorded sensor messages, and the command
as the action label. A stamped command (TwistStamped) is paired with the sensor messages of
exactly its stamp; an unstamped one with the newest complete, synchronised set recorded
before it. Rows are assigned to episodes by the episode manager's start/end events. Rows
that cannot be built are dropped and counted by reason, never filled in.
"""

from collections import Counter, deque
from dataclasses import dataclass, field
import json
import math

import numpy as np

from ilrl_ros.bag import open_bag
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.observation import extract_observation, ObservationError
from ilrl_ros.core.spec import ActionSpec, TaskSpec
from ilrl_ros.messages import (action_from_message, reading_from_message, stamp_to_ns)

HISTORY = 64


class ConversionError(ValueError):
    """A bag cannot be converted for the task; the message names the bag and the problem."""


@dataclass
class ConversionReport:
    """What a conversion kept and dropped, and why."""

    bag: str
    rows: int = 0
    episodes: int = 0
    truncated: bool = False
    commands: int = 0
    dropped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        lines = [f'{self.bag}: {self.commands} commands -> {self.rows} rows in '
                 f'{self.episodes} episodes' + (' (bag was cut short: its recorder was '
                                                'killed; read up to the cut)'
                                                if self.truncated else '')]
        for reason, count in sorted(self.dropped.items()):
            lines.append(f'  dropped {count}: {reason}')
        return '\n'.join(lines)


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


def bag_to_dataset(bag_path, spec: TaskSpec, action_topic: str = None,
                   event_topic: str = 'episode/event', reward_topic: str = 'reward'):
    """Convert a bag to ``Demonstrations``; return (dataset, ConversionReport)."""
    action: ActionSpec = spec.action
    action_topic = _topic_key(action_topic or action.topic)
    report = ConversionReport(bag=str(bag_path))
    with open_bag(bag_path) as reader:
        report.truncated = reader.truncated
        present = {_topic_key(name): info for name, info in reader.topics.items()}
        sources = {_topic_key(spec.sources[s].topic): spec.sources[s]
                   for s in spec.observation.sources}
        missing = [t for t in [*sources, action_topic] if t not in present]
        if missing:
            raise ConversionError(
                f'bag {bag_path} lacks topic(s) {", ".join("/" + t for t in missing)} that '
                f'task {spec.name!r} needs; it has '
                f'{", ".join(sorted(reader.topics)) or "no topics"}')
        wanted_type = action.message_type
        if present[action_topic].type_name != wanted_type:
            raise ConversionError(
                f'bag {bag_path}: {action_topic} carries {present[action_topic].type_name}, '
                f'the task commands {wanted_type}')
        for topic, source in sources.items():
            if present[topic].type_name != source.message_type:
                raise ConversionError(
                    f'bag {bag_path}: {topic} carries {present[topic].type_name}, source '
                    f'{source.name!r} expects {source.message_type}')

        history = {s.name: deque(maxlen=HISTORY) for s in sources.values()}
        events, rows = [], []
        used_stamps = set()
        tolerance = int(spec.observation.sync_tolerance_s * 1e9)
        names = {t for t in [*sources, action_topic, _topic_key(event_topic),
                             _topic_key(reward_topic)] if t in present}
        for message in reader.messages([n for n in reader.topics if _topic_key(n) in names]):
            topic = _topic_key(message.topic)
            if topic in sources:
                source = sources[topic]
                try:
                    reading = reading_from_message(source.kind, reader.deserialize(message),
                                                   source.name)
                except ObservationError as error:
                    report.dropped[f'malformed {topic}: {error}'] += 1
                    continue
                history[source.name].append(reading)
            elif topic == _topic_key(event_topic):
                try:
                    events.append(json.loads(reader.deserialize(message).data))
                except json.JSONDecodeError:
                    report.dropped['episode events that are not JSON'] += 1
            elif topic == _topic_key(reward_topic):
                if rows and math.isnan(rows[-1][3]):
                    rows[-1][3] = float(reader.deserialize(message).data)
            else:
                report.commands += 1
                msg = reader.deserialize(message)
                try:
                    label = action.check(action_from_message(action, msg), 'recorded command')
                except ValueError as error:
                    report.dropped[f'unusable command: {error}'] += 1
                    continue
                stamp = stamp_to_ns(msg.header.stamp) if action.stamped else None
                readings = _match(history, stamp, tolerance)
                if readings is None:
                    report.dropped['no synchronised observation for the command'
                                   + (' stamp' if stamp is not None else '')] += 1
                    continue
                obs_stamp = max(r.stamp_ns for r in readings.values())
                if obs_stamp in used_stamps:
                    report.dropped['a second command for the same observation'] += 1
                    continue
                try:
                    vector = extract_observation(spec, readings)
                except ObservationError as error:
                    report.dropped[f'observation not buildable: {error}'] += 1
                    continue
                used_stamps.add(obs_stamp)
                rows.append([vector, label, obs_stamp, math.nan])

    intervals = _episode_intervals(events)
    kept = []
    for vector, label, stamp, reward in rows:
        if intervals:
            episode = next((e for e, start, end in intervals if start <= stamp < end), None)
            if episode is None:
                report.dropped['outside any episode (during a reset)'] += 1
                continue
        else:
            episode = 0
        kept.append((vector, label, episode, stamp, reward))
    if not kept:
        raise ConversionError(f'bag {bag_path}: no usable rows for task {spec.name!r}\n'
                              + report.summary())
    report.rows = len(kept)
    report.episodes = len({row[2] for row in kept})
    data = Demonstrations(
        observations=np.stack([row[0] for row in kept]).astype(np.float32),
        actions=np.stack([row[1] for row in kept]).astype(np.float32),
        episode=np.array([row[2] for row in kept], dtype=np.int64),
        stamp_ns=np.array([row[3] for row in kept], dtype=np.int64),
        reward=np.array([row[4] for row in kept], dtype=np.float64),
        spec_json=spec.to_json(),
        info={'bag': str(bag_path), 'action_topic': action_topic,
              'truncated': report.truncated, 'dropped': dict(report.dropped)})
    return data, report


def _match(history: dict, stamp, tolerance: int):
    """The readings to pair with a command: by exact stamp, or the newest synchronised set."""
    if any(not h for h in history.values()):
        return None
    if stamp is not None:
        found = {}
        for name, readings in history.items():
            match = [r for r in readings if abs(r.stamp_ns - stamp) <= tolerance]
            if not match:
                return None
            found[name] = match[-1]
        return found
    newest = {name: h[-1] for name, h in history.items()}
    stamps = [r.stamp_ns for r in newest.values()]
    if max(stamps) - min(stamps) <= tolerance:
        return newest
    # The newest messages straddle two sensor cycles: use the newest cycle all have.
    common = min(stamps)
    found = {}
    for name, readings in history.items():
        match = [r for r in readings if abs(r.stamp_ns - common) <= tolerance]
        if not match:
            return None
        found[name] = match[-1]
    return found
