"""Record and read rosbag2-compatible bags (MCAP, and sqlite3 for reading) without the ros2 CLI.

``BagWriter`` writes a bag directory that ``ros2 bag info/play``, the ``mcap`` CLI, Foxglove and
``rosbags`` open as they would one written by ``ros2 bag record -s mcap``, and that survives its
writer being killed: everything up to the last flush stays readable. ``open_bag`` reads such
bags back (also half-written ones), and bags that ``ros2 bag record`` wrote, checking every
MCAP chunk against its CRC: a damaged chunk is skipped, and the reader lists it in ``losses``.
``reindex_bag`` rewrites a bag cut short or damaged into a complete one (as ``ros2 bag
reindex`` does), so that other tools read it too.

Example::

    with BagWriter('bags/demo_001', flush_interval_s=1.0) as bag:
        bag.add_topic('/scan', 'sensor_msgs/msg/LaserScan')
        bag.write('/scan', serialize_message(scan), log_time_ns=now_ns)

    reader = open_bag('bags/demo_001')
    for message in reader.messages(['/scan']):
        scan = reader.deserialize(message)
"""

from __future__ import annotations

from dataclasses import dataclass
import datetime
import functools
import heapq
import importlib
import io
import json
import logging
import os
from pathlib import Path
import re
import shutil
import sqlite3
import struct
import sys
import threading
import time
from typing import Any, Iterable, Iterator, Optional
import zlib

import lz4.frame
from mcap.opcode import Opcode
from mcap.records import Channel, Schema
from mcap.writer import CompressionType, LIBRARY_IDENTIFIER, Writer
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.serialization import deserialize_message
import yaml
import zstandard

from ilrl_ros import __version__

logger = logging.getLogger(__name__)

__all__ = [
    'BagError',
    'BagLoss',
    'BagMessage',
    'BagMessageError',
    'BagReader',
    'BagWriter',
    'TopicInfo',
    'bag_metadata',
    'find_interface_file',
    'format_log_time',
    'message_class',
    'message_definition',
    'open_bag',
    'qos_profiles_yaml',
    'reindex_bag',
    'type_description_hash',
    'write_metadata_file',
]

# The rosbag2 metadata format ROS 2 Jazzy writes (QoS as a YAML list with named policies).
METADATA_VERSION = 9
METADATA_FILE = 'metadata.yaml'

_MCAP_MAGIC = b'\x89MCAP0\r\n'
_SQLITE_MAGIC = b'SQLite format 3\x00'
_RECORD_HEADER = struct.Struct('<BQ')  # opcode, record length
_FOOTER_RECORD_SIZE = _RECORD_HEADER.size + 8 + 8 + 4
_MESSAGE_FIXED = struct.Struct('<HIQQ')  # channel id, sequence, log time, publish time
# No chunk of a bag we can read decompresses to more; a larger size is a damaged header.
_MAX_CHUNK_BYTES = 1 << 32
# rosbag2 marks "no message yet" with the largest time point; its tools expect that value.
_NO_TIME = 2**63 - 1
_INFINITE_NS = 2**63 - 1

# Field types of .msg files that need no definition of their own.
_PRIMITIVE_TYPES = frozenset({
    'bool', 'byte', 'char', 'float32', 'float64', 'int8', 'uint8', 'int16', 'uint16',
    'int32', 'uint32', 'int64', 'uint64', 'string', 'wstring',
})
# Same rule as rosbag2's local message definition source, so our schema text matches its own.
_TYPE_NAME = re.compile(r'^([A-Za-z0-9_]+)/(?:(msg|srv)/)?([A-Za-z0-9_]+)$')
_DELIMITER = '=' * 80 + '\n'

_COMPRESSION = {
    'zstd': CompressionType.ZSTD,
    'lz4': CompressionType.LZ4,
    'none': CompressionType.NONE,
    '': CompressionType.NONE,
}


class BagError(ValueError):
    """A bag could not be written or read; the message says which bag and what was expected."""


class BagMessageError(BagError):
    """One recorded message does not decode as its type; the message says which and where."""


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: its name, message type (``pkg/msg/Type``) and message count."""

    name: str
    type_name: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One recorded message, still CDR-serialized; ``log_time_ns`` is when it was received."""

    topic: str
    type_name: str
    data: bytes
    log_time_ns: int
    publish_time_ns: Optional[int] = None


def format_log_time(time_ns: Optional[int]) -> str:
    """A log time for people: seconds since the epoch, and the UTC date where it is one."""
    if time_ns is None:
        return 'an unknown time'
    try:
        when = datetime.datetime.fromtimestamp(time_ns / 1e9, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f'{time_ns / 1e9:.3f} s'
    return f'{time_ns / 1e9:.3f} s ({when:%Y-%m-%d %H:%M:%S} UTC)'


@dataclass
class BagLoss:
    """A damaged part of a bag file that was skipped: where, the log times it held, and why.

    ``chunk`` is the chunk's number in its file (0 first), None for damage between chunks.
    ``start_ns``/``end_ns`` bound the log times lost (from the chunk's header or index, or the
    intact messages around the damage; None where unknown). ``messages`` counts the messages
    lost per topic as the file's message index lists them, None where that is unknown.
    """

    file: str
    offset: int
    length: int
    reason: str
    chunk: Optional[int] = None
    start_ns: Optional[int] = None
    end_ns: Optional[int] = None
    messages: Optional[dict[str, int]] = None

    @property
    def message_count(self) -> Optional[int]:
        """Messages lost here, or None when the damage hides how many."""
        return None if self.messages is None else sum(self.messages.values())

    def describe(self) -> str:
        """One sentence: the file, the chunk and bytes, the log times lost, why, how many."""
        where = f'bytes {self.offset} to {self.offset + self.length}'
        if self.chunk is not None:
            where = f'chunk {self.chunk} ({where})'
        if self.start_ns is None and self.end_ns is None:
            times = 'log times unknown'
        elif self.end_ns is None:
            times = f'log time from {format_log_time(self.start_ns)} on'
        elif self.start_ns is None:
            times = f'log time up to {format_log_time(self.end_ns)}'
        else:
            times = (f'log time {format_log_time(self.start_ns)} to '
                     f'{format_log_time(self.end_ns)}')
        if self.messages is None:
            lost = 'an unknown number of messages lost'
        else:
            lost = f'{self.message_count} messages lost' + (
                ' (' + ', '.join(f'{topic}: {count}' for topic, count in
                                 sorted(self.messages.items())) + ')' if self.messages else '')
        return f'{self.file}, {where}, {times}: {self.reason}; {lost}.'

    def to_dict(self) -> dict[str, Any]:
        """The loss as JSON-ready values, with its sentence."""
        return {'file': self.file, 'chunk': self.chunk, 'offset': self.offset,
                'length': self.length, 'start_ns': self.start_ns, 'end_ns': self.end_ns,
                'reason': self.reason, 'messages': self.messages,
                'message_count': self.message_count, 'text': self.describe()}


# --------------------------------------------------------------------------------------------
# Message definitions, type hashes and QoS, as rosbag2 stores them
# --------------------------------------------------------------------------------------------

def _split_type_name(type_name: str) -> tuple[str, str, str]:
    """Split ``pkg/msg/Type`` (or ``pkg/Type``) into package, interface kind and name."""
    match = _TYPE_NAME.match(type_name)
    if match is None:
        raise BagError(
            f'Message type {type_name!r} is not understood; expected a name like '
            "'sensor_msgs/msg/LaserScan'.")
    package, kind, name = match.groups()
    return package, kind or 'msg', name


def _share_dirs(package: str) -> list[Path]:
    """Candidate ``share/<package>`` directories, most authoritative first."""
    candidates: list[Path] = []
    if os.environ.get('AMENT_PREFIX_PATH'):
        try:
            from ament_index_python.packages import get_package_share_directory

            candidates.append(Path(get_package_share_directory(package)))
        except Exception:  # noqa: BLE001 - any ament index problem just means "look elsewhere"
            pass
        for prefix in os.environ['AMENT_PREFIX_PATH'].split(os.pathsep):
            if prefix:
                candidates.append(Path(prefix) / 'share' / package)
    candidates.append(Path(sys.prefix) / 'share' / package)
    # Wheels and colcon installs put share/ a few levels above the Python package
    # (<prefix>/lib/pythonX.Y/site-packages/<package>), so walk up from the import location.
    try:
        module = importlib.import_module(package)
        module_dir = Path(module.__file__).resolve().parent if module.__file__ else None
    except ImportError:
        module_dir = None
    if module_dir is not None:
        for parent in module_dir.parents:
            candidates.append(parent / 'share' / package)
    unique: list[Path] = []
    for candidate in candidates:
        if candidate not in unique and candidate.is_dir():
            unique.append(candidate)
    return unique


def find_interface_file(type_name: str, extension: str = '.msg') -> Optional[Path]:
    """Find the installed interface file of ``type_name`` (e.g. its ``.msg`` or ``.json``).

    Looks in the ament index when ``AMENT_PREFIX_PATH`` is set, then in ``sys.prefix/share`` and
    in the ``share`` directories above the package's import location (pip/venv installs).
    Returns None if no such file is installed.
    """
    package, kind, name = _split_type_name(type_name)
    for share in _share_dirs(package):
        path = share / kind / f'{name}{extension}'
        if path.is_file():
            return path
    return None


def _msg_dependencies(text: str, package: str) -> list[str]:
    """Non-primitive field types of a .msg text, as ``pkg/Type``, sorted like rosbag2 does."""
    dependencies = set()
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) < 2 or tokens[0].startswith('#'):
            continue
        field_type = re.sub(r'\[[^\]]*\]$', '', tokens[0]).split('<=')[0]
        if field_type in _PRIMITIVE_TYPES or not re.fullmatch(r'[A-Za-z0-9_/]+', field_type):
            continue
        dependencies.add(field_type if '/' in field_type else f'{package}/{field_type}')
    return sorted(dependencies)


# Python message classes describe their fields with IDL names; .msg files use these.
_IDL_TO_MSG = {
    'boolean': 'bool', 'octet': 'byte', 'float': 'float32', 'double': 'float64',
    'long double': 'float64', 'char': 'uint8', 'wchar': 'uint16',
}


def _msg_field_type(idl_type: str) -> str:
    """Translate one ``get_fields_and_field_types()`` entry into .msg field syntax."""
    match = re.fullmatch(r'sequence<(.+?)(?:,\s*(\d+))?>', idl_type)
    if match:
        element, bound = match.groups()
        return f'{_msg_field_type(element)}[{"<=" + bound if bound else ""}]'
    match = re.fullmatch(r'(.+)\[(\d+)\]', idl_type)
    if match:
        return f'{_msg_field_type(match.group(1))}[{match.group(2)}]'
    match = re.fullmatch(r'(w?string)<(\d+)>', idl_type)
    if match:
        return f'{match.group(1)}<={match.group(2)}'
    return _IDL_TO_MSG.get(idl_type, idl_type)


def _definition_from_class(type_name: str) -> Optional[str]:
    """Build a .msg text from the importable Python class (no comments or constants)."""
    try:
        fields = _import_message_class(type_name).get_fields_and_field_types()
    except BagError:
        return None
    return ''.join(f'{_msg_field_type(field_type)} {field}\n'
                   for field, field_type in fields.items())


def _load_msg_text(type_name: str) -> Optional[str]:
    path = find_interface_file(type_name, '.msg')
    if path is not None:
        return path.read_text(encoding='utf-8')
    return _definition_from_class(type_name)


@functools.lru_cache(maxsize=None)
def message_definition(type_name: str) -> str:
    """Full ``ros2msg`` schema text of ``type_name``, in the rosbag2 (and MCAP) convention.

    The type's own .msg text, then for each nested type, depth first and each type once: a line
    of 80 ``=``, a line ``MSG: pkg/Type``, and that type's .msg text. Where a .msg file is not
    installed, the text is rebuilt from the Python message class.
    """
    seen: set[str] = set()

    def append(name: str, depth: int) -> str:
        if depth > 50:
            raise BagError(f'Message type {type_name!r} nests types more than 50 levels deep.')
        text = _load_msg_text(name)
        if text is None:
            raise BagError(
                f'No definition of message type {name!r} (needed by {type_name!r}) was found: '
                'no .msg file under any share/ directory and no importable Python class; '
                'install the message package or source its workspace.')
        package = _split_type_name(name)[0]
        result = text
        for dependency in _msg_dependencies(text, package):
            if dependency not in seen:
                seen.add(dependency)
                result += '\n' + _DELIMITER + f'MSG: {dependency}\n' + append(dependency,
                                                                             depth + 1)
        return result

    return append(type_name, 0)


@functools.lru_cache(maxsize=None)
def type_description_hash(type_name: str) -> str:
    """Return the ``RIHS01_...`` hash from the installed type description (.json), or ''."""
    path = find_interface_file(type_name, '.json')
    if path is None:
        return ''
    try:
        hashes = json.loads(path.read_text(encoding='utf-8')).get('type_hashes', [])
    except (OSError, ValueError):
        return ''
    for entry in hashes:
        if entry.get('type_name') == type_name:
            return entry.get('hash_string', '')
    return ''


def _duration_dict(duration: Any) -> dict[str, int]:
    nanoseconds = getattr(duration, 'nanoseconds', duration)
    nanoseconds = min(int(nanoseconds), _INFINITE_NS)
    return {'sec': nanoseconds // 1_000_000_000, 'nsec': nanoseconds % 1_000_000_000}


def _policy_name(enum_type: type, value: Any) -> str:
    try:
        return enum_type(int(value)).name.lower()
    except ValueError:
        return 'unknown'


def _qos_dict(profile: QoSProfile) -> dict[str, Any]:
    """One QoS profile in the rosbag2 version 9 layout (policies by lower-case name)."""
    return {
        'history': _policy_name(HistoryPolicy, profile.history),
        'depth': int(profile.depth),
        'reliability': _policy_name(ReliabilityPolicy, profile.reliability),
        'durability': _policy_name(DurabilityPolicy, profile.durability),
        'deadline': _duration_dict(profile.deadline),
        'lifespan': _duration_dict(profile.lifespan),
        'liveliness': _policy_name(LivelinessPolicy, profile.liveliness),
        'liveliness_lease_duration': _duration_dict(profile.liveliness_lease_duration),
        'avoid_ros_namespace_conventions': bool(profile.avoid_ros_namespace_conventions),
    }


def qos_profiles_yaml(profiles: Iterable[QoSProfile]) -> str:
    """Serialize offered QoS profiles as rosbag2 stores them in MCAP channels; '' for none."""
    dicts = [_qos_dict(profile) for profile in profiles]
    if not dicts:
        return ''
    return yaml.safe_dump(dicts, default_flow_style=False, sort_keys=False)


# --------------------------------------------------------------------------------------------
# metadata.yaml
# --------------------------------------------------------------------------------------------

@dataclass
class _TopicRecord:
    name: str
    type_name: str
    qos_yaml: str
    type_hash: str
    channel_id: int
    count: int = 0


def bag_metadata(
    *,
    file_name: str,
    topics: Iterable[_TopicRecord],
    start_ns: Optional[int],
    end_ns: Optional[int],
    storage_identifier: str = 'mcap',
) -> dict[str, Any]:
    """Return the content of a rosbag2 ``metadata.yaml`` (version 9) for a single-file bag.

    ``topics`` are objects with ``name``, ``type_name``, ``qos_yaml`` (offered QoS as
    :func:`qos_profiles_yaml` writes it), ``type_hash`` and ``count``; ``start_ns``/``end_ns``
    are the first and last log times, or None while the bag is empty.
    """
    topics = list(topics)
    message_count = sum(topic.count for topic in topics)
    if start_ns is None or end_ns is None:
        starting_time, duration = _NO_TIME, 0
    else:
        starting_time, duration = start_ns, max(0, end_ns - start_ns)
    topics_with_message_count = []
    for topic in topics:
        offered = yaml.safe_load(topic.qos_yaml) if topic.qos_yaml else []
        topics_with_message_count.append({
            'topic_metadata': {
                'name': topic.name,
                'type': topic.type_name,
                'serialization_format': 'cdr',
                'offered_qos_profiles': offered or [],
                'type_description_hash': topic.type_hash,
            },
            'message_count': topic.count,
        })
    return {
        'rosbag2_bagfile_information': {
            'version': METADATA_VERSION,
            'storage_identifier': storage_identifier,
            'duration': {'nanoseconds': duration},
            'starting_time': {'nanoseconds_since_epoch': starting_time},
            'message_count': message_count,
            'topics_with_message_count': topics_with_message_count,
            'compression_format': '',
            'compression_mode': '',
            'relative_file_paths': [file_name],
            'files': [{
                'path': file_name,
                'starting_time': {'nanoseconds_since_epoch': starting_time},
                'duration': {'nanoseconds': duration},
                'message_count': message_count,
            }],
            'custom_data': None,
            'ros_distro': os.environ.get('ROS_DISTRO') or 'jazzy',
        },
    }


def write_metadata_file(bag_dir: Path, metadata: dict[str, Any]) -> None:
    """Replace ``bag_dir/metadata.yaml`` atomically, so a crash never leaves half a file."""
    text = yaml.safe_dump(metadata, default_flow_style=False, sort_keys=False)
    tmp_path = Path(bag_dir) / f'.{METADATA_FILE}.tmp'
    with open(tmp_path, 'w', encoding='utf-8') as tmp:
        tmp.write(text)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp_path, Path(bag_dir) / METADATA_FILE)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

class BagWriter:
    """Write a rosbag2 bag directory with one MCAP file, flushed often enough to survive a kill.

    Creates ``path/`` holding ``path/<name>_0.mcap`` (or ``file_name``) and
    ``path/metadata.yaml``. Every flush
    closes the MCAP chunk in progress, fsyncs the file and rewrites metadata.yaml, so if the
    writer dies (SIGKILL, power loss after the fsync) everything up to the last flush can be read
    back with :func:`open_bag`. A flush happens on :meth:`flush`, and on :meth:`write` or
    :meth:`flush_if_due` once ``flush_interval_s`` has passed since the last one (None: only
    explicit flushes). Safe to call from several threads.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        flush_interval_s: Optional[float] = 1.0,
        compression: str = 'zstd',
        file_name: Optional[str] = None,
    ) -> None:
        self.path = Path(path)
        if flush_interval_s is not None and not flush_interval_s > 0:
            raise BagError(
                f'flush_interval_s for bag {self.path} must be a positive number of seconds '
                f'(or None), got {flush_interval_s!r}.')
        if compression not in _COMPRESSION:
            raise BagError(
                f'Unknown compression {compression!r} for bag {self.path}; expected one of '
                "'zstd', 'lz4' or 'none'.")
        if self.path.exists():
            raise BagError(
                f'Cannot create bag {self.path}: it already exists; choose another bag name '
                'or move the old bag away.')
        try:
            self.path.mkdir(parents=True)
        except OSError as error:
            raise BagError(f'Cannot create bag directory {self.path}: {error}.') from error
        self.file_name = file_name or f'{self.path.name}_0.mcap'
        self.file_path = self.path / self.file_name
        self._flush_interval_s = flush_interval_s
        self._lock = threading.Lock()
        self._topics: dict[str, _TopicRecord] = {}
        self._schema_ids: dict[str, int] = {}
        self._start_ns: Optional[int] = None
        self._end_ns: Optional[int] = None
        self._unflushed = 0
        self._closed = False
        self._file = open(self.file_path, 'wb')
        self._mcap = Writer(self._file, compression=_COMPRESSION[compression])
        self._mcap.start(profile='ros2', library=f'ilrl_ros/{__version__}; {LIBRARY_IDENTIFIER}')
        self._sync_file()
        self._write_metadata()
        self._last_flush = time.monotonic()

    # -- public API ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    @property
    def counts(self) -> dict[str, int]:
        """Messages written so far, per topic."""
        with self._lock:
            return {name: topic.count for name, topic in self._topics.items()}

    @property
    def message_count(self) -> int:
        """Messages written so far, all topics together."""
        with self._lock:
            return sum(topic.count for topic in self._topics.values())

    def add_topic(self, name: str, type_name: str, qos_yaml: str = '', *,
                  type_hash: Optional[str] = None,
                  schema: Optional[tuple[str, bytes]] = None) -> None:
        """Declare a topic before writing to it.

        ``type_name`` is like ``sensor_msgs/msg/LaserScan``; ``qos_yaml`` is the publishers'
        offered QoS as :func:`qos_profiles_yaml` writes it; ``type_hash`` (``RIHS01_...``)
        defaults to the hash of the installed type description; ``schema`` (encoding, data)
        is stored instead of the installed definition, e.g. when copying a bag. Adding a topic
        again with the same type does nothing.
        """
        with self._lock:
            self._check_open()
            known = self._topics.get(name)
            if known is not None:
                if known.type_name != type_name:
                    raise BagError(
                        f'Topic {name!r} is already in bag {self.path} with type '
                        f'{known.type_name!r}; one bag cannot hold it as {type_name!r} too.')
                return
            schema_id = self._schema_ids.get(type_name)
            if schema_id is None:
                encoding, data = schema or ('ros2msg', message_definition(type_name).encode())
                schema_id = self._mcap.register_schema(
                    name=type_name, encoding=encoding, data=data)
                self._schema_ids[type_name] = schema_id
            if type_hash is None or not type_hash.startswith('RIHS'):
                type_hash = type_description_hash(type_name)
            channel_id = self._mcap.register_channel(
                topic=name, message_encoding='cdr', schema_id=schema_id,
                metadata={'offered_qos_profiles': qos_yaml, 'topic_type_hash': type_hash})
            self._topics[name] = _TopicRecord(name, type_name, qos_yaml, type_hash, channel_id)

    def write(self, topic: str, data: bytes, log_time_ns: int,
              publish_time_ns: Optional[int] = None) -> None:
        """Append one CDR-serialized message; flushes first if the flush interval has passed."""
        with self._lock:
            self._check_open()
            record = self._topics.get(topic)
            if record is None:
                raise BagError(
                    f'Topic {topic!r} is not in bag {self.path}; call add_topic() for it '
                    'before writing its messages.')
            log_time_ns = int(log_time_ns)
            if log_time_ns < 0:
                raise BagError(
                    f'Log time {log_time_ns} ns for topic {topic!r} in bag {self.path} is '
                    'negative; MCAP stores times as unsigned nanoseconds.')
            publish_time_ns = log_time_ns if publish_time_ns is None else int(publish_time_ns)
            self._mcap.add_message(
                channel_id=record.channel_id, log_time=log_time_ns, data=data,
                publish_time=max(0, publish_time_ns))
            record.count += 1
            self._start_ns = log_time_ns if self._start_ns is None else min(self._start_ns,
                                                                            log_time_ns)
            self._end_ns = log_time_ns if self._end_ns is None else max(self._end_ns, log_time_ns)
            self._unflushed += 1
            if self._due():
                self._flush_locked()

    def flush(self) -> None:
        """Put everything written so far on disk and describe it in metadata.yaml."""
        with self._lock:
            if not self._closed:
                self._flush_locked()

    def flush_if_due(self) -> bool:
        """Flush if ``flush_interval_s`` has passed since the last flush; for timers."""
        with self._lock:
            if self._closed or not self._due():
                return False
            self._flush_locked()
            return True

    def close(self) -> None:
        """Finish the MCAP file (summary, indexes, footer) and write the final metadata.yaml."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._finish_chunk()
                metadata = self._metadata()
                # rosbag2 embeds its metadata in the MCAP file too, so the .mcap alone is a bag.
                self._mcap.add_metadata('rosbag2', {
                    'serialized_metadata': yaml.safe_dump(
                        metadata['rosbag2_bagfile_information'], sort_keys=False)})
                self._mcap.finish()
                self._sync_file()
            finally:
                self._file.close()
            write_metadata_file(self.path, metadata)

    def __enter__(self) -> 'BagWriter':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BagError(f'Bag {self.path} is closed; open a new BagWriter to record more.')

    def _due(self) -> bool:
        return (self._flush_interval_s is not None and self._unflushed > 0
                and time.monotonic() - self._last_flush >= self._flush_interval_s)

    def _finish_chunk(self) -> None:
        # Recent mcap releases finish the chunk in progress with a public flush(); older ones
        # only have the private method, which does the same.
        finish = getattr(self._mcap, 'flush', None) or self._mcap._Writer__finalize_chunk
        finish()

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if self._unflushed == 0:
            return
        self._finish_chunk()
        self._sync_file()
        self._unflushed = 0
        self._write_metadata()

    def _sync_file(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def _metadata(self) -> dict[str, Any]:
        return bag_metadata(file_name=self.file_name, topics=self._topics.values(),
                            start_ns=self._start_ns, end_ns=self._end_ns)

    def _write_metadata(self) -> None:
        write_metadata_file(self.path, self._metadata())


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def _import_message_class(type_name: str) -> type:
    package, kind, name = _split_type_name(type_name)
    try:
        module = importlib.import_module(f'{package}.{kind}')
    except ImportError as error:
        raise BagError(
            f'Cannot load message type {type_name!r}: Python package {package!r} is not '
            'importable; install it or source the workspace that builds it.') from error
    found = getattr(module, name, None)
    if found is None:
        raise BagError(
            f'Cannot load message type {type_name!r}: {package}.{kind} has no {name!r}; the '
            'installed package may be older than the one the bag was recorded with.')
    return found


class _Damaged(Exception):
    """Raised inside the MCAP reader for a record that does not parse; says what is wrong."""


class _Cursor:
    """Bounds-checked little-endian reads from one record body."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise _Damaged(f'a field of {size} bytes at {self.pos} runs past the end of its '
                           f'{len(self.data)}-byte record')
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def number(self, fmt: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def text(self) -> str:
        raw = self.take(self.number('<I'))
        try:
            return raw.decode('utf-8')
        except UnicodeDecodeError as error:
            raise _Damaged(f'a text field is not UTF-8 ({error})') from error

    def text_map(self) -> dict[str, str]:
        end = self.number('<I') + self.pos
        if end > len(self.data):
            raise _Damaged('a map field runs past the end of its record')
        out = {}
        while self.pos < end:
            key = self.text()
            out[key] = self.text()
        if self.pos != end:
            raise _Damaged('a map field overruns its declared length')
        return out

    def finish(self, what: str) -> None:
        if self.pos != len(self.data):
            raise _Damaged(f'its {what} fields end {len(self.data) - self.pos} bytes before the '
                           'record does')


def _parse_schema(body: bytes) -> Schema:
    cursor = _Cursor(body)
    schema = Schema(id=cursor.number('<H'), name=cursor.text(), encoding=cursor.text(),
                    data=cursor.take(cursor.number('<I')))
    cursor.finish('schema')
    return schema


def _parse_channel(body: bytes) -> Channel:
    cursor = _Cursor(body)
    channel_id, schema_id = cursor.number('<H'), cursor.number('<H')
    channel = Channel(id=channel_id, schema_id=schema_id, topic=cursor.text(),
                      message_encoding=cursor.text(), metadata=cursor.text_map())
    cursor.finish('channel')
    return channel


def _message_index_count(body: bytes) -> Optional[tuple[int, int]]:
    """(channel id, entries) if ``body`` is laid out as a message index record, else None."""
    if len(body) < 6:
        return None
    channel_id, size = struct.unpack_from('<HI', body)
    if 6 + size != len(body) or size % 16:
        return None
    return channel_id, size // 16


def _is_header(body: bytes) -> bool:
    cursor = _Cursor(body)
    try:
        cursor.text()
        cursor.text()
        cursor.finish('header')
    except _Damaged:
        return False
    return True


def _decompress(compression: str, payload: bytes, size: int) -> bytes:
    if size > _MAX_CHUNK_BYTES:
        raise _Damaged(f'its header gives an implausible uncompressed size of {size} bytes')
    try:
        if compression == '':
            data = payload
        elif compression == 'zstd':
            # Read at most one byte more than the header promises: a damaged frame header cannot
            # make us allocate what it claims.
            with zstandard.ZstdDecompressor().stream_reader(payload) as stream:
                parts, left = [], size + 1
                while left > 0:
                    part = stream.read(min(left, 1 << 20))
                    if not part:
                        break
                    parts.append(part)
                    left -= len(part)
            data = b''.join(parts)
        elif compression == 'lz4':
            data = lz4.frame.LZ4FrameDecompressor().decompress(payload, max_length=size + 1)
        else:
            raise _Damaged(f'it names an unknown compression {compression!r}')
    except _Damaged:
        raise
    except Exception as error:  # noqa: BLE001 - each decompressor fails in its own way
        raise _Damaged(f'its {compression} data does not decompress ({error})') from error
    if len(data) != size:
        raise _Damaged(f'it decompresses to {len(data)}{"+" if len(data) > size else ""} '
                       f'bytes where its header says {size}')
    return data


@dataclass
class _ChunkHeader:
    start_ns: int
    end_ns: int
    size: int
    crc: int
    compression: str
    payload: bytes


def _parse_chunk(body: bytes) -> _ChunkHeader:
    cursor = _Cursor(body)
    start, end, size, crc = (cursor.number('<Q'), cursor.number('<Q'), cursor.number('<Q'),
                             cursor.number('<I'))
    compression = cursor.take(cursor.number('<I')).decode('utf-8', 'replace')
    payload = cursor.take(cursor.number('<Q'))
    cursor.finish('chunk')
    return _ChunkHeader(start, end, size, crc, compression, payload)


def _chunk_times(body: bytes) -> tuple[Optional[int], Optional[int]]:
    """The log-time range a (possibly damaged) chunk header claims, if it has one."""
    if len(body) < 16:
        return None, None
    return struct.unpack_from('<QQ', body)


def _chunk_records(body: bytes) -> tuple[list[Schema], list[Channel], list[tuple]]:
    """Check and decode one chunk body: its schemas, channels and messages.

    Messages are ``(channel_id, log_time, publish_time, data)`` in chunk order. Raises
    :class:`_Damaged` when the chunk does not decompress, fails its CRC or holds a record that
    does not parse.
    """
    chunk = _parse_chunk(body)
    data = _decompress(chunk.compression, chunk.payload, chunk.size)
    if chunk.crc:
        actual = zlib.crc32(data)
        if actual != chunk.crc:
            raise _Damaged(f'its CRC-32 is {actual:08x} where its header says {chunk.crc:08x}')
    schemas, channels, messages = [], [], []
    view, offset = memoryview(data), 0
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER.size:
            raise _Damaged(f'it ends inside a record header at byte {offset} of its records')
        opcode, length = _RECORD_HEADER.unpack_from(data, offset)
        start = offset + _RECORD_HEADER.size
        if length > len(data) - start:
            raise _Damaged(f'its record at byte {offset} runs past the end of the chunk')
        if opcode == Opcode.MESSAGE:
            if length < _MESSAGE_FIXED.size:
                raise _Damaged(f'its message record at byte {offset} is too short')
            channel_id, _, log_time, publish_time = _MESSAGE_FIXED.unpack_from(data, start)
            messages.append((channel_id, log_time, publish_time,
                             bytes(view[start + _MESSAGE_FIXED.size:start + length])))
        elif opcode == Opcode.SCHEMA:
            schemas.append(_parse_schema(data[start:start + length]))
        elif opcode == Opcode.CHANNEL:
            channels.append(_parse_channel(data[start:start + length]))
        offset = start + length
    return schemas, channels, messages


def _read_at(stream: io.BufferedReader, offset: int, size: int) -> bytes:
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise _Damaged(f'the file ends {size - len(data)} bytes short of a record at {offset}')
    return data


@dataclass
class _ChunkRef:
    """Where one chunk is, the log times its messages span and (if known) its channels."""

    ordinal: int
    offset: int
    length: int  # of the record body, after opcode and length
    start_ns: int
    end_ns: int
    channels: Optional[frozenset] = None
    index_offsets: tuple = ()  # message index records of this chunk (summary mode)
    lost: bool = False
    loose: tuple = ()  # for messages outside any chunk: (offset, length) of each record


def _topic_label(channels: dict[int, Channel], channel_id: int) -> str:
    channel = channels.get(channel_id)
    return channel.topic if channel is not None else f'channel {channel_id} (topic unknown)'


class _McapFile:
    """Topics and messages of one .mcap file, checked against its CRCs.

    A file with an intact footer and summary is read through its chunk index; one without
    (a killed writer) or with a damaged summary is scanned record by record at open. Every
    chunk is checked (decompression, CRC, records) when it is read: a damaged one is skipped
    and listed in ``losses``, and reading goes on with the next. ``truncated`` says the file
    ends before its data section does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.truncated = False
        self.truncated_after_ns: Optional[int] = None
        self.notes: list[str] = []
        self.losses: list[BagLoss] = []
        self._channels: dict[int, Channel] = {}
        self._schemas: dict[int, Schema] = {}
        self._counts: dict[int, int] = {}
        self._chunks: list[_ChunkRef] = []
        self._unknown_reported: set[int] = set()  # chunks whose unknown channels are in losses
        self._opened = False
        try:
            with open(path, 'rb') as stream:
                if stream.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
                    raise BagError(f'{path} is not an MCAP file: it does not start with the '
                                   'MCAP magic bytes.')
                size = os.fstat(stream.fileno()).st_size
                if not self._read_summary(stream, size):
                    self._walk(stream, size)
        except OSError as error:
            raise BagError(f'Cannot read bag file {path}: {error}.') from error
        except (_Damaged, struct.error) as error:  # a guard: the scan handles damage itself
            raise BagError(f'{path} could not be read as MCAP: {error}.') from error
        self._opened = True
        for loss in self.losses:
            logger.warning('%s', loss.describe())

    # -- opening ------------------------------------------------------------------------------

    def _read_summary(self, stream: io.BufferedReader, size: int) -> bool:
        """Take channels, counts and the chunk list from the summary, if it is intact."""
        footer_at = size - len(_MCAP_MAGIC) - _FOOTER_RECORD_SIZE
        if footer_at < len(_MCAP_MAGIC):
            return False
        stream.seek(footer_at)
        tail = stream.read(_FOOTER_RECORD_SIZE + len(_MCAP_MAGIC))
        opcode, length, summary_start, _, summary_crc = struct.unpack_from('<BQQQI', tail)
        if (tail[_FOOTER_RECORD_SIZE:] != _MCAP_MAGIC or opcode != Opcode.FOOTER
                or length != _FOOTER_RECORD_SIZE - _RECORD_HEADER.size):
            return False
        if not len(_MCAP_MAGIC) <= summary_start <= footer_at:
            if summary_start:
                self.notes.append(f'{self.path}: its footer points outside the file (damaged); '
                                  'the file was scanned instead.')
            return False
        summary = _read_at(stream, summary_start, footer_at - summary_start)
        if summary_crc:
            actual = zlib.crc32(tail[:_FOOTER_RECORD_SIZE - 4], zlib.crc32(summary))
            if actual != summary_crc:
                self.notes.append(f'{self.path}: its summary section is damaged (CRC-32 '
                                  f'{actual:08x}, recorded {summary_crc:08x}); the file was '
                                  'scanned instead.')
                return False
        try:
            return self._take_summary(summary)
        except (_Damaged, struct.error) as error:
            self.notes.append(f'{self.path}: its summary section does not parse ({error}); the '
                              'file was scanned instead.')
            return False

    def _take_summary(self, summary: bytes) -> bool:
        schemas, channels, indexes, statistics = {}, {}, [], None
        offset = 0
        while offset < len(summary):
            opcode, length = _RECORD_HEADER.unpack_from(summary, offset)
            body = summary[offset + _RECORD_HEADER.size:offset + _RECORD_HEADER.size + length]
            if len(body) != length:
                raise _Damaged(f'a record at byte {offset} of the summary runs past its end')
            offset += _RECORD_HEADER.size + length
            cursor = _Cursor(body)
            if opcode == Opcode.SCHEMA:
                schema = _parse_schema(body)
                schemas[schema.id] = schema
            elif opcode == Opcode.CHANNEL:
                channel = _parse_channel(body)
                channels[channel.id] = channel
            elif opcode == Opcode.STATISTICS:
                message_count = cursor.number('<Q')
                cursor.take(2 + 4 + 4 + 4)
                chunk_count = cursor.number('<I')
                cursor.take(16)
                counts_end = cursor.number('<I') + cursor.pos
                counts = {}
                while cursor.pos < counts_end:
                    channel_id = cursor.number('<H')
                    counts[channel_id] = cursor.number('<Q')
                cursor.finish('statistics')
                statistics = (message_count, chunk_count, counts)
            elif opcode == Opcode.CHUNK_INDEX:
                start, end, chunk_at, chunk_length = (cursor.number('<Q') for _ in range(4))
                offsets_end = cursor.number('<I') + cursor.pos
                index_offsets = []
                while cursor.pos < offsets_end:
                    index_offsets.append((cursor.number('<H'), cursor.number('<Q')))
                cursor.number('<Q')
                cursor.text()
                cursor.take(16)
                cursor.finish('chunk index')
                if chunk_length < _RECORD_HEADER.size:
                    raise _Damaged(f'a chunk index gives a chunk length of {chunk_length}')
                indexes.append(_ChunkRef(
                    0, chunk_at, chunk_length - _RECORD_HEADER.size, start, end,
                    frozenset(channel_id for channel_id, _ in index_offsets),
                    tuple(index_offsets)))
        if statistics is None:
            return False
        message_count, chunk_count, counts = statistics
        if chunk_count != len(indexes) or (message_count and not indexes):
            return False  # not (fully) chunk-indexed: scan the data section instead
        indexes.sort(key=lambda ref: ref.offset)
        for ordinal, ref in enumerate(indexes):
            ref.ordinal = ordinal
        self._schemas, self._channels, self._chunks = schemas, channels, indexes
        self._counts = counts
        return True

    def _chunk_length_at(self, stream: io.BufferedReader, offset: int,
                         size: int) -> Optional[int]:
        """The body length of a chunk record at ``offset`` by its own inner length fields.

        None unless those fields are consistent and the chunk lies wholly in the file; the
        record's own length field is not consulted, so a chunk whose opcode or length was
        damaged is still found.
        """
        fixed = _RECORD_HEADER.size + 28
        if offset + fixed + 4 > size:
            return None
        stream.seek(offset + fixed)
        name_length = struct.unpack('<I', stream.read(4))[0]
        if name_length > 64 or offset + fixed + 4 + name_length + 8 > size:
            return None
        stream.seek(name_length, os.SEEK_CUR)
        payload = struct.unpack('<Q', stream.read(8))[0]
        inner = 28 + 4 + name_length + 8 + payload
        return inner if offset + _RECORD_HEADER.size + inner <= size else None

    def _plausible_record_at(self, stream: io.BufferedReader, offset: int, size: int) -> bool:
        if offset == size:
            return True
        if offset + _RECORD_HEADER.size > size:
            return False
        stream.seek(offset)
        opcode, length = _RECORD_HEADER.unpack(stream.read(_RECORD_HEADER.size))
        return (Opcode.HEADER <= opcode <= Opcode.DATA_END or opcode >= 0x80) and (
            length <= size - offset - _RECORD_HEADER.size)

    def _resync(self, stream: io.BufferedReader, start: int, size: int) -> Optional[int]:
        """The offset of the next chunk (or data end) record after damage, or None."""
        block = 1 << 20
        position = start
        while position < size:
            stream.seek(position)
            data = stream.read(block)
            for found in re.finditer(b'[\x06\x0f]', data):
                candidate = position + found.start()
                if self._chunk_length_at(stream, candidate, size) is not None:
                    return candidate
                if data[found.start()] == Opcode.DATA_END and candidate + 13 <= size:
                    stream.seek(candidate + 1)
                    if struct.unpack('<Q', stream.read(8))[0] == 4:
                        return candidate
            position += len(data)
        return None

    def _lose(self, loss: BagLoss) -> BagLoss:
        self.losses.append(loss)
        if self._opened:  # those found at open are logged once complete (see __init__)
            logger.warning('%s', loss.describe())
        return loss

    def _walk(self, stream: io.BufferedReader, size: int) -> None:
        """Scan the data section record by record: channels, counts, chunks, damage, the end.

        A chunk that fails its checks is recorded as a loss and skipped by its length; a record
        whose length cannot be trusted is skipped by searching for the next chunk. A file that
        ends before its data section does (a killed writer) is ``truncated``.
        """
        offset = len(_MCAP_MAGIC)
        ordinal = 0
        last_time: Optional[int] = None  # the newest message read so far
        lost_chunk: Optional[BagLoss] = None  # its message index records follow it
        loose: list[tuple[int, int, int, int]] = []  # offset, length, channel id, log time
        unknown: dict[tuple[int, int], int] = {}  # (chunk ordinal, channel id) -> messages
        problem = ''
        while True:
            if offset == size:
                problem = f'it ends after {offset} bytes, at a record boundary, without a footer'
                break
            if size - offset < _RECORD_HEADER.size:
                problem = f'it ends inside a record header at byte {offset}'
                break
            stream.seek(offset)
            opcode, length = _RECORD_HEADER.unpack(stream.read(_RECORD_HEADER.size))
            fits = length <= size - offset - _RECORD_HEADER.size
            end = offset + _RECORD_HEADER.size + length
            inner = self._chunk_length_at(stream, offset, size)
            if inner is not None and (opcode == Opcode.CHUNK or inner == length):
                body = _read_at(stream, offset + _RECORD_HEADER.size, inner)
                lost_chunk, newest = self._scan_chunk(body, offset, ordinal, last_time, unknown)
                if newest is not None:
                    last_time = newest if last_time is None else max(last_time, newest)
                ordinal += 1
                offset += _RECORD_HEADER.size + inner
                continue
            if opcode == Opcode.DATA_END and length == 4 and fits:
                self._check_data_crc(stream, offset)
                return self._finish_walk(loose, ordinal, unknown)
            if opcode == Opcode.FOOTER and fits and end + len(_MCAP_MAGIC) == size:
                return self._finish_walk(loose, ordinal, unknown)
            body = _read_at(stream, offset + _RECORD_HEADER.size, length) if fits else None
            kind = self._record_kind(opcode, body, offset) if fits else None
            if kind == 'message_index' and lost_chunk is not None:
                channel_id, count = _message_index_count(body)
                lost = lost_chunk.messages if lost_chunk.messages is not None else {}
                label = _topic_label(self._channels, channel_id)
                lost[label] = lost.get(label, 0) + count
                lost_chunk.messages = lost
            elif kind == 'message':
                channel_id, _, log_time, _ = _MESSAGE_FIXED.unpack_from(body)
                loose.append((offset, length, channel_id, log_time))
            elif kind in ('schema', 'channel'):
                record = (_parse_schema if kind == 'schema' else _parse_channel)(body)
                known = self._schemas if kind == 'schema' else self._channels
                known.setdefault(record.id, record)
            if kind is not None:
                if kind != 'message_index':
                    lost_chunk = None
                offset = end
                continue
            if opcode == Opcode.CHUNK and fits and self._plausible_record_at(stream, end, size):
                # A chunk whose inner length fields are damaged, but whose own length leads to
                # the next record: lose just this chunk (its message indexes follow it).
                start, stop = _chunk_times(body)
                lost_chunk = self._lose(BagLoss(
                    str(self.path), offset, end - offset, 'skipped as damaged: its length fields '
                    'disagree with each other', chunk=ordinal, start_ns=start, end_ns=stop))
                ordinal += 1
                offset = end
                continue
            # Damage: a record that does not parse, or whose length leads nowhere.
            lost_chunk = None
            resume = self._resync(stream, offset + 1, size)
            if resume is None:
                if Opcode.HEADER <= opcode <= Opcode.DATA_END and not fits:
                    problem = (f'the record at byte {offset} is cut off ({length} bytes '
                               f'declared, {size - offset - _RECORD_HEADER.size} present)')
                else:
                    self._lose(BagLoss(
                        str(self.path), offset, size - offset, 'skipped as unreadable: it does '
                        'not parse as MCAP records, and no intact chunk follows',
                        start_ns=last_time))
                    problem = f'it is unreadable from byte {offset} on'
                break
            next_start = None
            if self._chunk_length_at(stream, resume, size) is not None:
                next_start = struct.unpack('<Q', _read_at(
                    stream, resume + _RECORD_HEADER.size, 8))[0]
            self._lose(BagLoss(
                str(self.path), offset, resume - offset,
                f'skipped as unreadable: a record there (type 0x{opcode:02x}, {length} bytes '
                'declared) does not parse, and it may have held messages', start_ns=last_time,
                end_ns=next_start))
            offset = resume
        self.truncated = True
        self.truncated_after_ns = last_time
        total = sum(self._counts.values())
        after = (f'; messages logged after {format_log_time(last_time)} are missing'
                 if last_time is not None else '')
        self.notes.insert(0, f'{self.path} was not closed properly (its writer was probably '
                          f'killed): {problem}. Read the {total} messages before that '
                          f'point{after}.')
        self._finish_walk(loose, ordinal, unknown)

    def _record_kind(self, opcode: int, body: bytes, offset: int) -> Optional[str]:
        """What a record outside the chunks is, judged by its content; None if damaged."""
        if offset == len(_MCAP_MAGIC):
            return 'header' if _is_header(body) else None
        index = _message_index_count(body)
        if opcode in (Opcode.MESSAGE_INDEX, Opcode.MESSAGE, Opcode.CHUNK) and index is not None:
            return 'message_index'  # (an index whose opcode lost a bit reads as one of these)
        try:
            if opcode == Opcode.MESSAGE and len(body) >= _MESSAGE_FIXED.size:
                return 'message'
            if opcode == Opcode.SCHEMA:
                _parse_schema(body)
                return 'schema'
            if opcode == Opcode.CHANNEL:
                _parse_channel(body)
                return 'channel'
            if opcode == Opcode.METADATA:
                cursor = _Cursor(body)
                cursor.text()
                cursor.text_map()
                cursor.finish('metadata')
                return 'metadata'
            if opcode == Opcode.ATTACHMENT:
                cursor = _Cursor(body)
                cursor.take(16)
                cursor.text()
                cursor.text()
                cursor.take(cursor.number('<Q'))
                cursor.take(4)
                cursor.finish('attachment')
                return 'attachment'
        except _Damaged:
            return None
        if opcode >= 0x80:
            return 'private'
        return None

    def _scan_chunk(self, body: bytes, offset: int, ordinal: int, last_time: Optional[int],
                    unknown: dict) -> tuple[Optional[BagLoss], Optional[int]]:
        """Check one chunk during the scan; return (its loss or None, its newest log time)."""
        try:
            schemas, channels, messages = _chunk_records(body)
        except (_Damaged, struct.error) as error:
            start, end = _chunk_times(body)
            loss = self._lose(BagLoss(str(self.path), offset, _RECORD_HEADER.size + len(body),
                                      f'skipped as damaged: {error}', chunk=ordinal,
                                      start_ns=start, end_ns=end))
            return loss, None
        for schema in schemas:
            self._schemas.setdefault(schema.id, schema)
        for channel in channels:
            self._channels.setdefault(channel.id, channel)
        present = set()
        times = []
        for channel_id, log_time, _, _ in messages:
            if channel_id in self._channels:
                self._counts[channel_id] = self._counts.get(channel_id, 0) + 1
                present.add(channel_id)
                times.append(log_time)
            else:
                key = (ordinal, channel_id)
                unknown[key] = unknown.get(key, 0) + 1
        start, end = _chunk_times(body)
        self._chunks.append(_ChunkRef(
            ordinal, offset, len(body), min(times, default=start), max(times, default=end),
            frozenset(present)))
        return None, max(times, default=None)

    def _finish_walk(self, loose: list, ordinal: int, unknown: dict) -> None:
        by_ordinal = {ref.ordinal: ref for ref in self._chunks}
        for (chunk, channel_id), count in sorted(unknown.items()):
            ref = by_ordinal[chunk]
            self._unknown_reported.add(ref.offset)
            self._lose(BagLoss(
                str(self.path), ref.offset, _RECORD_HEADER.size + ref.length,
                f'dropped {count} of its messages: they are on channel {channel_id}, which no '
                'intact record defines (its channel record was probably in a damaged chunk)',
                chunk=chunk, start_ns=ref.start_ns, end_ns=ref.end_ns,
                messages={_topic_label(self._channels, channel_id): count}))
        if not loose:
            return
        if ordinal:
            # In a chunked file every message belongs in a CRC-checked chunk: a message record
            # outside them is more likely a damaged record than data, so it is not trusted.
            for offset, length, channel_id, log_time in loose:
                self._lose(BagLoss(
                    str(self.path), offset, _RECORD_HEADER.size + length,
                    'dropped a message record found outside the chunks (no CRC protects it)',
                    start_ns=log_time, end_ns=log_time,
                    messages={_topic_label(self._channels, channel_id): 1}))
            return
        kept, present, dropped = [], set(), {}
        for offset, length, channel_id, log_time in loose:
            if channel_id in self._channels:
                kept.append((offset, length, log_time))
                present.add(channel_id)
                self._counts[channel_id] = self._counts.get(channel_id, 0) + 1
            else:
                dropped[channel_id] = dropped.get(channel_id, 0) + 1
        if dropped:
            self._lose(BagLoss(
                str(self.path), loose[0][0], 0, 'dropped messages on channels that no record '
                f'defines ({", ".join(map(str, sorted(dropped)))})',
                messages={_topic_label(self._channels, c): n for c, n in dropped.items()}))
        if kept:
            times = [log_time for _, _, log_time in kept]
            self._chunks.append(_ChunkRef(
                0, kept[0][0], 0, min(times), max(times), frozenset(present),
                loose=tuple((offset, length) for offset, length, _ in kept)))

    def _check_data_crc(self, stream: io.BufferedReader, data_end: int) -> None:
        """Compare the data section with the CRC in its data end record (cheap: we scan it)."""
        expected = struct.unpack('<I', _read_at(stream, data_end + _RECORD_HEADER.size, 4))[0]
        if not expected:
            return
        crc, position = 0, 0
        stream.seek(0)
        while position < data_end:
            block = stream.read(min(1 << 22, data_end - position))
            if not block:
                break
            crc = zlib.crc32(block, crc)
            position += len(block)
        if crc != expected and not self.losses:
            self.notes.append(
                f'{self.path}: its data section fails its CRC-32 ({crc:08x}, recorded '
                f'{expected:08x}), but every chunk passed its own check: the damage is in '
                'records that hold no messages (indexes or headers).')

    # -- reading ------------------------------------------------------------------------------

    def _index_counts(self, stream: io.BufferedReader,
                      ref: _ChunkRef) -> Optional[dict[str, int]]:
        """Messages per topic in a chunk, from its message index records; None if damaged."""
        if not ref.index_offsets:
            return None
        counts: dict[str, int] = {}
        try:
            for channel_id, offset in ref.index_offsets:
                opcode, length = _RECORD_HEADER.unpack(_read_at(
                    stream, offset, _RECORD_HEADER.size))
                entries = _message_index_count(_read_at(
                    stream, offset + _RECORD_HEADER.size, min(length, 1 << 30)))
                if opcode != Opcode.MESSAGE_INDEX or entries is None or entries[0] != channel_id:
                    return None
                label = _topic_label(self._channels, channel_id)
                counts[label] = counts.get(label, 0) + entries[1]
        except (_Damaged, struct.error, OverflowError):
            return None
        return counts

    def _load(self, stream: io.BufferedReader, ref: _ChunkRef) -> list[tuple]:
        """The messages of one chunk (checked), or [] with the loss recorded if it is damaged."""
        try:
            if ref.loose:
                messages = []
                for offset, length in ref.loose:
                    body = _read_at(stream, offset + _RECORD_HEADER.size, length)
                    channel_id, _, log_time, publish_time = _MESSAGE_FIXED.unpack_from(body)
                    messages.append((channel_id, log_time, publish_time,
                                     body[_MESSAGE_FIXED.size:]))
                return messages
            _, _, messages = _chunk_records(_read_at(
                stream, ref.offset + _RECORD_HEADER.size, ref.length))
        except (_Damaged, struct.error) as error:
            ref.lost = True
            self._lose(BagLoss(
                str(self.path), ref.offset, _RECORD_HEADER.size + ref.length,
                f'skipped as damaged: {error}', chunk=ref.ordinal, start_ns=ref.start_ns,
                end_ns=ref.end_ns, messages=self._index_counts(stream, ref)))
            return []
        if ref.offset not in self._unknown_reported:
            unknown: dict[int, int] = {}
            for channel_id, *_ in messages:
                if channel_id not in self._channels:
                    unknown[channel_id] = unknown.get(channel_id, 0) + 1
            if unknown:
                self._unknown_reported.add(ref.offset)
                self._lose(BagLoss(
                    str(self.path), ref.offset, _RECORD_HEADER.size + ref.length,
                    'dropped messages on channels that no intact record defines '
                    f'({", ".join(map(str, sorted(unknown)))})', chunk=ref.ordinal,
                    start_ns=ref.start_ns, end_ns=ref.end_ns,
                    messages={_topic_label(self._channels, c): n for c, n in unknown.items()}))
        return messages

    def _type_name(self, channel: Channel) -> str:
        schema = self._schemas.get(channel.schema_id)
        return schema.name if schema is not None else ''

    def topics(self) -> dict[str, TopicInfo]:
        topics: dict[str, TopicInfo] = {}
        for channel_id, channel in self._channels.items():
            count = self._counts.get(channel_id, 0)
            known = topics.get(channel.topic)
            if known is not None:
                count += known.count
            topics[channel.topic] = TopicInfo(channel.topic, self._type_name(channel), count)
        return topics

    def channels(self) -> dict[str, tuple[Channel, Optional[Schema]]]:
        """Topic name to its channel record and schema (the first, where a topic has several)."""
        out: dict[str, tuple[Channel, Optional[Schema]]] = {}
        for channel in self._channels.values():
            out.setdefault(channel.topic, (channel, self._schemas.get(channel.schema_id)))
        return out

    def messages(self, topics: Optional[set[str]]) -> Iterator[BagMessage]:
        wanted = None if topics is None else {
            channel_id for channel_id, channel in self._channels.items()
            if channel.topic in topics}
        refs = sorted((ref for ref in self._chunks if not ref.lost and (
            wanted is None or ref.channels is None or ref.channels & wanted)),
            key=lambda ref: (ref.start_ns, ref.offset))
        # Chunks may overlap in time: hold decoded messages until no later chunk can hold an
        # earlier one. Ties keep file order, whatever the topic filter.
        pending: list[tuple] = []
        try:
            with open(self.path, 'rb') as stream:
                for ref in refs:
                    while pending and pending[0][0] < ref.start_ns:
                        yield heapq.heappop(pending)[3]
                    for position, (channel_id, log_time, publish_time, data) in enumerate(
                            self._load(stream, ref)):
                        channel = self._channels.get(channel_id)
                        if channel is None or (wanted is not None and channel_id not in wanted):
                            continue
                        heapq.heappush(pending, (log_time, ref.offset, position, BagMessage(
                            channel.topic, self._type_name(channel), data, log_time,
                            publish_time)))
        except OSError as error:
            raise BagError(f'Cannot read bag file {self.path}: {error}.') from error
        while pending:
            yield heapq.heappop(pending)[3]

    def close(self) -> None:
        pass


class _SqliteFile:
    """Topics and messages of one rosbag2 sqlite3 (.db3) file."""

    truncated = False
    truncated_after_ns = None
    notes: tuple = ()
    losses: tuple = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(f'{path.resolve().as_uri()}?mode=ro', uri=True)
            rows = self._db.execute('SELECT id, name, type FROM topics').fetchall()
            counts = dict(self._db.execute(
                'SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id').fetchall())
        except sqlite3.Error as error:
            raise BagError(
                f'{path} is not a readable rosbag2 sqlite3 bag ({error}); expected the tables '
                "'topics' and 'messages' that ros2 bag record writes.") from error
        self._topics = {topic_id: (name, type_name) for topic_id, name, type_name in rows}
        self._counts = counts

    def topics(self) -> dict[str, TopicInfo]:
        topics: dict[str, TopicInfo] = {}
        for topic_id, (name, type_name) in self._topics.items():
            count = self._counts.get(topic_id, 0) + (topics[name].count if name in topics else 0)
            topics[name] = TopicInfo(name, type_name, count)
        return topics

    def messages(self, topics: Optional[set[str]]) -> Iterator[BagMessage]:
        wanted = [topic_id for topic_id, (name, _) in self._topics.items()
                  if topics is None or name in topics]
        if not wanted:
            return
        placeholders = ','.join('?' * len(wanted))
        try:
            cursor = self._db.execute(
                'SELECT topic_id, timestamp, data FROM messages '
                f'WHERE topic_id IN ({placeholders}) ORDER BY timestamp, id', wanted)
            for topic_id, timestamp, data in cursor:
                name, type_name = self._topics[topic_id]
                yield BagMessage(name, type_name, bytes(data), int(timestamp))
        except sqlite3.DatabaseError as error:
            raise BagError(
                f'{self.path} is damaged ({error}): its recorder was probably killed in the '
                'middle of a write; `sqlite3 FILE ".recover"` can often save what was '
                'written.') from error

    def close(self) -> None:
        self._db.close()


def _natural_key(path: Path) -> list[Any]:
    # bag_2.mcap sorts before bag_10.mcap, as rosbag2 numbers split files.
    return [int(part) if part.isdigit() else part for part in re.split(r'(\d+)', path.name)]


class BagReader:
    """A bag opened with :func:`open_bag`: its topics, its messages in log-time order.

    ``truncated`` is True when a file of the bag was not closed by its writer (it was killed);
    the messages up to the cut are still read, and ``notes`` says what was found. ``corrupt``
    is True once a damaged chunk has been skipped; ``losses`` says where, which log times and
    how many messages.
    """

    def __init__(self, path: Path, sources: list[_McapFile | _SqliteFile], *,
                 storage_identifier: str, metadata: Optional[dict[str, Any]] = None,
                 notes: Iterable[str] = ()) -> None:
        self.path = path
        self.storage_identifier = storage_identifier
        self.metadata = metadata
        self.files = tuple(source.path for source in sources)
        self._sources = sources
        self.notes = list(notes) + [note for source in sources for note in source.notes]
        self.truncated = any(source.truncated for source in sources)
        self._topics: dict[str, TopicInfo] = {}
        for source in sources:
            for name, info in source.topics().items():
                known = self._topics.get(name)
                if known is None:
                    self._topics[name] = info
                    continue
                if known.type_name != info.type_name:
                    self.notes.append(
                        f'Topic {name!r} has type {known.type_name!r} in one file and '
                        f'{info.type_name!r} in {source.path}; it is reported with the first.')
                self._topics[name] = TopicInfo(name, known.type_name, known.count + info.count)
        for note in self.notes:
            logger.warning('%s', note)

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Topic name to :class:`TopicInfo`, with the counts of messages actually readable."""
        return dict(self._topics)

    @property
    def message_count(self) -> int:
        """All readable messages of the bag."""
        return sum(info.count for info in self._topics.values())

    @property
    def losses(self) -> list[BagLoss]:
        """The damaged parts skipped so far, file by file.

        Complete once :meth:`messages` has been iterated to its end: an intact-looking file is
        checked chunk by chunk as it is read (a file without its footer, at open).
        """
        return [loss for source in self._sources for loss in source.losses]

    @property
    def corrupt(self) -> bool:
        """True once a damaged part of the bag has been skipped (see :attr:`losses`)."""
        return any(source.losses for source in self._sources)

    @property
    def truncated_after_ns(self) -> Optional[int]:
        """For a bag cut short: the newest log time read before the cut (None if none)."""
        times = [source.truncated_after_ns for source in self._sources
                 if source.truncated and source.truncated_after_ns is not None]
        return min(times, default=None)

    def messages(self, topics: Optional[Iterable[str]] = None) -> Iterator[BagMessage]:
        """Iterate the bag's messages (of ``topics`` only, if given) in log-time order."""
        wanted = None
        if topics is not None:
            wanted = {topics} if isinstance(topics, str) else set(topics)
            unknown = sorted(wanted - set(self._topics))
            if unknown:
                raise BagError(
                    f'Bag {self.path} has no topic {", ".join(map(repr, unknown))}; it has: '
                    f'{", ".join(sorted(self._topics)) or "no topics"}.')
        streams = [source.messages(wanted) for source in self._sources]
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=lambda message: message.log_time_ns)

    def deserialize(self, message: BagMessage) -> Any:
        """Turn a :class:`BagMessage` into its rclpy message object.

        Raises :class:`BagMessageError` when its bytes do not decode as its type (a bag
        written without CRCs can hold damaged messages), :class:`BagError` when the type's
        package is not installed.
        """
        cls = message_class(message.type_name)
        try:
            return deserialize_message(message.data, cls)
        except Exception as error:  # noqa: BLE001 - rclpy raises RuntimeError subclasses
            raise BagMessageError(
                f'A message on {message.topic} logged at {format_log_time(message.log_time_ns)} '
                f'in bag {self.path} does not decode as {message.type_name} ({error}).'
            ) from error

    def close(self) -> None:
        """Release open database handles (MCAP files are opened per read)."""
        for source in self._sources:
            source.close()

    def __enter__(self) -> 'BagReader':
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


@functools.lru_cache(maxsize=None)
def message_class(type_name: str) -> type:
    """Return the rclpy message class of ``type_name`` (``pkg/msg/Type``) from ``pkg.msg``."""
    return _import_message_class(type_name)


def _open_file(path: Path) -> _McapFile | _SqliteFile:
    try:
        with open(path, 'rb') as stream:
            magic = stream.read(len(_SQLITE_MAGIC))
    except OSError as error:
        raise BagError(f'Cannot read bag file {path}: {error}.') from error
    if magic.startswith(_MCAP_MAGIC):
        return _McapFile(path)
    if magic == _SQLITE_MAGIC:
        return _SqliteFile(path)
    raise BagError(
        f'{path} is not a bag file: expected an MCAP (.mcap) or rosbag2 sqlite3 (.db3) file, '
        "but it starts with neither format's magic bytes.")


def _storage_of(sources: list[_McapFile | _SqliteFile]) -> str:
    kinds = {'mcap' if isinstance(source, _McapFile) else 'sqlite3' for source in sources}
    return kinds.pop() if len(kinds) == 1 else 'mixed'


def _open_directory(path: Path) -> BagReader:
    metadata_path = path / METADATA_FILE
    notes: list[str] = []
    if metadata_path.is_file():
        try:
            metadata = yaml.safe_load(metadata_path.read_text(encoding='utf-8'))
            info = metadata['rosbag2_bagfile_information']
            storage = info['storage_identifier']
            names = [Path(name).name for name in info['relative_file_paths']]
        except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
            notes.append(f'{metadata_path} is not valid rosbag2 metadata ({error!r}); read the '
                         'bag files found in the directory instead.')
        else:
            if storage not in ('mcap', 'sqlite3'):
                raise BagError(
                    f'Bag {path} uses storage {storage!r}; only rosbag2 bags stored as mcap or '
                    'sqlite3 can be read.')
            if info.get('compression_mode') and info.get('compression_mode') != 'none':
                raise BagError(
                    f'Bag {path} is compressed per {info["compression_mode"]} '
                    f'({info.get("compression_format")}); decompress it first, e.g. with '
                    '`ros2 bag convert`.')
            missing = [name for name in names if not (path / name).is_file()]
            if missing:
                raise BagError(
                    f'Bag {path} lists files in metadata.yaml that are missing: '
                    f'{", ".join(missing)}.')
            # A recorder killed after splitting leaves files that the last metadata.yaml it
            # wrote does not list yet: read them too rather than lose their messages.
            unlisted = sorted((child for child in path.iterdir() if child.is_file()
                               and child.suffix in ('.mcap', '.db3') and child.name not in names),
                              key=_natural_key)
            if unlisted:
                notes.append(f'Bag {path}: {", ".join(f.name for f in unlisted)} not listed in '
                             'metadata.yaml (its recorder was probably stopped before it could '
                             'update it); read as well.')
            sources = [_open_file(path / name) for name in names] + [
                _open_file(file) for file in unlisted]
            return BagReader(path, sources, storage_identifier=storage, metadata=metadata,
                             notes=notes)
    files = sorted((child for child in path.iterdir()
                    if child.suffix in ('.mcap', '.db3') and child.is_file()), key=_natural_key)
    if not files:
        raise BagError(
            f'{path} is not a bag: expected a rosbag2 directory with metadata.yaml or with '
            '.mcap/.db3 files, but found neither.')
    sources = [_open_file(file) for file in files]
    return BagReader(path, sources, storage_identifier=_storage_of(sources), notes=notes)


def open_bag(path: str | os.PathLike) -> BagReader:
    """Open a bag for reading.

    ``path`` may be a rosbag2 bag directory (with metadata.yaml, or just holding .mcap/.db3
    files), a single ``.mcap`` file, or a single sqlite3 ``.db3`` file. MCAP files whose writer
    was killed are read up to the cut, and the reader's ``truncated`` is set.
    """
    path = Path(path)
    if path.name == METADATA_FILE and path.is_file():
        path = path.parent
    if not path.exists():
        raise BagError(
            f'No bag at {path}: the path does not exist; expected a rosbag2 bag directory, '
            'an .mcap file or a .db3 file.')
    if path.is_dir():
        try:
            return _open_directory(path)
        except PermissionError as error:
            raise BagError(f'Cannot read bag directory {path}: {error}.') from error
    source = _open_file(path)
    return BagReader(path, [source], storage_identifier=_storage_of([source]))


# --------------------------------------------------------------------------------------------
# Repair
# --------------------------------------------------------------------------------------------

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
