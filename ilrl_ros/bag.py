"""Record and read rosbag2-compatible bags (MCAP, and sqlite3 for reading) without the ros2 CLI.

``BagWriter`` writes a bag directory that ``ros2 bag info/play``, the ``mcap`` CLI, Foxglove and
``rosbags`` open as they would one written by ``ros2 bag record -s mcap``, and that survives its
writer being killed: everything up to the last flush stays readable. ``open_bag`` reads such
bags back (also half-written ones), and bags that ``ros2 bag record`` wrote.

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
import functools
import heapq
import importlib
import io
import json
import logging
import os
from pathlib import Path
import re
import sqlite3
import struct
import sys
import threading
import time
from typing import Any, Iterable, Iterator, Optional

from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.reader import SeekingReader
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import breakup_chunk
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

from ilrl_ros import __version__

logger = logging.getLogger(__name__)

__all__ = [
    'BagError',
    'BagMessage',
    'BagReader',
    'BagWriter',
    'TopicInfo',
    'bag_metadata',
    'find_interface_file',
    'message_class',
    'message_definition',
    'open_bag',
    'qos_profiles_yaml',
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

    Creates ``path/`` holding ``path/<name>_0.mcap`` and ``path/metadata.yaml``. Every flush
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
        self.file_name = f'{self.path.name}_0.mcap'
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
                  type_hash: Optional[str] = None) -> None:
        """Declare a topic before writing to it.

        ``type_name`` is like ``sensor_msgs/msg/LaserScan``; ``qos_yaml`` is the publishers'
        offered QoS as :func:`qos_profiles_yaml` writes it; ``type_hash`` (``RIHS01_...``)
        defaults to the hash of the installed type description. Adding a topic again with the
        same type does nothing.
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
                definition = message_definition(type_name)
                schema_id = self._mcap.register_schema(
                    name=type_name, encoding='ros2msg', data=definition.encode('utf-8'))
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


class _McapFile:
    """Topics and messages of one .mcap file; reads its summary or, if absent, scans it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.truncated = False
        self.note = ''
        self._scan_limit: Optional[int] = None
        self._in_order = True
        self._channels: dict[int, Channel] = {}
        self._schemas: dict[int, Schema] = {}
        self._counts: dict[int, int] = {}
        with open(path, 'rb') as stream:
            if stream.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
                raise BagError(f'{path} is not an MCAP file: it does not start with the MCAP '
                               'magic bytes.')
            self._use_summary = self._read_summary(stream)
            if not self._use_summary:
                self._scan_counts(stream)

    def _read_summary(self, stream: io.BufferedReader) -> bool:
        size = os.fstat(stream.fileno()).st_size
        if size < 2 * len(_MCAP_MAGIC) + _FOOTER_RECORD_SIZE:
            return False
        stream.seek(size - len(_MCAP_MAGIC))
        if stream.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
            return False
        stream.seek(size - len(_MCAP_MAGIC) - _FOOTER_RECORD_SIZE)
        opcode, _ = _RECORD_HEADER.unpack(stream.read(_RECORD_HEADER.size))
        if opcode != Opcode.FOOTER:
            return False
        stream.seek(0)  # SeekingReader checks the magic at the current position
        try:
            summary = SeekingReader(stream).get_summary()
        except Exception:  # noqa: BLE001 - a damaged summary is read around, not fatal
            return False
        if summary is None or summary.statistics is None:
            return False
        self._channels = dict(summary.channels)
        self._schemas = dict(summary.schemas)
        self._counts = dict(summary.statistics.channel_message_counts)
        return True

    def _walk(self, stream: io.BufferedReader, outcome: dict[str, Any],
              limit: Optional[int] = None) -> Iterator[Schema | Channel | Message]:
        """Yield the data records of the file in order, stopping at a cut or damaged record.

        When the file ends before its data section does (what a killed writer leaves behind),
        ``outcome`` gets ``problem`` (what was found) and ``end`` (the end of the last good
        record); reading again with ``limit=end`` then yields the same records.
        """
        size = os.fstat(stream.fileno()).st_size if limit is None else limit
        offset = len(_MCAP_MAGIC)
        stream.seek(offset)
        problem = ''
        while True:
            if offset == size:
                problem = f'it ends after {offset} bytes, at a record boundary, without a footer'
                break
            header = stream.read(_RECORD_HEADER.size)
            if len(header) < _RECORD_HEADER.size:
                problem = f'it ends inside a record header at byte {offset}'
                break
            opcode, length = _RECORD_HEADER.unpack(header)
            if opcode == 0:
                problem = f'it holds an invalid (zero) record at byte {offset}'
                break
            if length > size - offset - _RECORD_HEADER.size:
                problem = (f'the record at byte {offset} is cut off ({length} bytes declared, '
                           f'{size - offset - _RECORD_HEADER.size} present)')
                break
            if opcode in (Opcode.DATA_END, Opcode.FOOTER):
                break  # everything after this is the summary: no new messages
            body = stream.read(length)
            try:
                records = self._parse(opcode, body, length)
            except Exception as error:  # noqa: BLE001 - torn records can fail in any decoder
                problem = f'the record at byte {offset} is damaged ({error})'
                break
            offset += _RECORD_HEADER.size + length
            yield from records
        if problem:
            outcome['problem'] = problem
            outcome['end'] = offset

    @staticmethod
    def _parse(opcode: int, body: bytes, length: int) -> list[Schema | Channel | Message]:
        stream = ReadDataStream(io.BytesIO(body))
        if opcode == Opcode.SCHEMA:
            return [Schema.read(stream)]
        if opcode == Opcode.CHANNEL:
            return [Channel.read(stream)]
        if opcode == Opcode.MESSAGE:
            return [Message.read(stream, length)]
        if opcode == Opcode.CHUNK:
            return breakup_chunk(Chunk.read(stream), validate_crc=True)
        return []

    def _scan_counts(self, stream: io.BufferedReader) -> None:
        last_time = -1
        outcome: dict[str, Any] = {}
        for record in self._walk(stream, outcome):
            if isinstance(record, Schema):
                self._schemas[record.id] = record
            elif isinstance(record, Channel):
                self._channels[record.id] = record
            elif isinstance(record, Message):
                self._counts[record.channel_id] = self._counts.get(record.channel_id, 0) + 1
                self._in_order = self._in_order and record.log_time >= last_time
                last_time = record.log_time
        if outcome:
            self.truncated = True
            self._scan_limit = outcome['end']
            total = sum(self._counts.values())
            self.note = (f'{self.path} was not closed properly (its writer was probably '
                         f'killed): {outcome["problem"]}. Read the {total} messages before '
                         'that point.')

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

    def messages(self, topics: Optional[set[str]]) -> Iterator[BagMessage]:
        with open(self.path, 'rb') as stream:
            if self._use_summary:
                reader = SeekingReader(stream)
                for schema, channel, message in reader.iter_messages(
                        topics=topics, log_time_order=True):
                    yield BagMessage(channel.topic, schema.name if schema else '',
                                     message.data, message.log_time)
                return
            found = self._scan_messages(stream, topics)
            if not self._in_order:
                found = iter(sorted(found, key=lambda message: message.log_time_ns))
            yield from found

    def _scan_messages(self, stream: io.BufferedReader,
                       topics: Optional[set[str]]) -> Iterator[BagMessage]:
        channels: dict[int, Channel] = {}
        for record in self._walk(stream, {}, self._scan_limit):
            if isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                channel = channels.get(record.channel_id) or self._channels.get(record.channel_id)
                if channel is None or (topics is not None and channel.topic not in topics):
                    continue
                yield BagMessage(channel.topic, self._type_name(channel), record.data,
                                 record.log_time)

    def close(self) -> None:
        pass


class _SqliteFile:
    """Topics and messages of one rosbag2 sqlite3 (.db3) file."""

    truncated = False
    note = ''

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
    the messages up to the cut are still read, and ``notes`` says what was found.
    """

    def __init__(self, path: Path, sources: list[_McapFile | _SqliteFile], *,
                 storage_identifier: str, metadata: Optional[dict[str, Any]] = None,
                 notes: Iterable[str] = ()) -> None:
        self.path = path
        self.storage_identifier = storage_identifier
        self.metadata = metadata
        self.files = tuple(source.path for source in sources)
        self._sources = sources
        self.notes = list(notes) + [source.note for source in sources if source.note]
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
        """Turn a :class:`BagMessage` into its rclpy message object."""
        return deserialize_message(message.data, message_class(message.type_name))

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
