"""``reindex_bag``: rewrite a bag cut short or damaged into a complete MCAP bag."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import shutil
from typing import Optional

import yaml

from ilrl_ros.bag.metadata import METADATA_FILE
from ilrl_ros.bag.reader import BagReader, open_bag
from ilrl_ros.bag.records import BagError, BagLoss
from ilrl_ros.bag.writer import BagWriter


@dataclass
class Reindexed:
    """What :func:`reindex_bag` did: where the bag and its original are, what it holds."""

    bag: Path
    """The bag directory (repaired in place, or left alone when it was intact)."""
    original: Optional[Path]
    """Where the original bag directory was moved; None when nothing was rewritten."""
    counts: dict[str, int]
    """Messages per topic in the bag as it now is."""
    losses: list[BagLoss]
    """Damaged parts of the original that were left out."""
    truncated_after_ns: Optional[int]
    """For an original cut short: the newest log time read before the cut."""
    truncated: bool = False
    """True when the original was cut short (its recorder was killed)."""
    notes: tuple = ()
    """Everything else the reader found (damaged summaries, topics left out)."""


def reindex_bag(path: str | os.PathLike, *, original_suffix: str = '.orig') -> Reindexed:
    """Rewrite a bag cut short or damaged into a complete one, keeping the original.

    What ``ros2 bag reindex`` does for a bag whose recorder was killed, for MCAP bags: every
    intact message of the bag directory (all its MCAP files, in log-time order) is written
    with :class:`BagWriter` into one new MCAP file with its summary, index and footer, and a
    metadata.yaml to match, so that ``ros2 bag``, ``rosbags`` and the ``mcap`` tools read it.
    Damaged chunks are left out (they are in ``losses``). The original directory is renamed
    to ``<bag><original_suffix>`` and the repaired bag takes its name. A bag that is complete
    and intact is left as it is.
    """
    path = Path(path)
    if path.name == METADATA_FILE:
        path = path.parent
    if not path.is_dir():
        raise BagError(
            f'{path} is not a bag directory; reindexing rewrites a rosbag2 bag directory (the '
            'folder that holds metadata.yaml and the .mcap files).')
    original = path.with_name(path.name + original_suffix)
    work = path.with_name(f'.{path.name}.reindex')
    if work.exists():
        raise BagError(f'Cannot reindex {path}: {work} already exists (left by an interrupted '
                       'reindex?); remove it first.')
    with open_bag(path) as reader:
        if reader.storage_identifier != 'mcap':
            raise BagError(
                f'Cannot reindex {path}: it is stored as {reader.storage_identifier}; only MCAP '
                'bags are rewritten (for sqlite3, `sqlite3 FILE ".recover"` saves what was '
                'written, and `ros2 bag reindex` rebuilds metadata.yaml).')
        notes = list(reader.notes)
        writer = BagWriter(work, flush_interval_s=None, file_name=f'{path.name}_0.mcap')
        try:
            topics = _copy_topics(reader, writer, notes)
            for message in reader.messages(topics):
                writer.write(message.topic, message.data, message.log_time_ns,
                             message.publish_time_ns)
            writer.close()
        except BaseException:
            writer.close()
            shutil.rmtree(work, ignore_errors=True)
            raise
        intact = (not reader.truncated and not reader.corrupt and not notes
                  and reader.metadata is not None and len(reader.files) == 1)
        result = Reindexed(bag=path, original=None, counts=writer.counts,
                           losses=reader.losses, truncated=reader.truncated,
                           truncated_after_ns=reader.truncated_after_ns, notes=tuple(notes))
    if intact:
        shutil.rmtree(work)
        return result
    if original.exists():
        shutil.rmtree(work)
        raise BagError(f'Cannot reindex {path}: {original} already exists (from an earlier '
                       'reindex?); move it away first. Nothing was changed.')
    try:
        os.rename(path, original)
    except OSError as error:
        shutil.rmtree(work, ignore_errors=True)
        raise BagError(
            f'Cannot move {path} to {original}: {error}; nothing was changed.') from error
    os.rename(work, path)
    result.original = original
    return result


def _copy_topics(reader: BagReader, writer: BagWriter, notes: list[str]) -> list[str]:
    """Declare the reader's topics on the writer with their schema, QoS and type hash."""
    topics = []
    for source in reader._sources:
        for topic, (channel, schema) in source.channels().items():
            if topic in topics:
                continue
            if schema is None or not schema.name:
                notes.append(f'Topic {topic!r} was left out: the record naming its message type '
                             'was lost.')
                continue
            qos_yaml = channel.metadata.get('offered_qos_profiles', '')
            try:
                yaml.safe_load(qos_yaml)
            except yaml.YAMLError:
                notes.append(f'Topic {topic!r}: its offered QoS does not parse as YAML and was '
                             'left out.')
                qos_yaml = ''
            try:
                writer.add_topic(topic, schema.name, qos_yaml,
                                 type_hash=channel.metadata.get('topic_type_hash') or None,
                                 schema=(schema.encoding, schema.data))
            except BagError as error:
                notes.append(f'Topic {topic!r} was left out: {error}')
                continue
            topics.append(topic)
    return topics
