"""``BagWriter``: a rosbag2 bag directory with one MCAP file that survives its writer's death."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import threading
import time
from typing import Any, Optional

from mcap.writer import CompressionType, LIBRARY_IDENTIFIER, Writer
import yaml

from ilrl_ros import __version__
from ilrl_ros.bag.metadata import bag_metadata, write_metadata_file
from ilrl_ros.bag.records import BagError
from ilrl_ros.bag.schema import message_definition, type_description_hash

_COMPRESSION = {
    'zstd': CompressionType.ZSTD,
    'lz4': CompressionType.LZ4,
    'none': CompressionType.NONE,
    '': CompressionType.NONE,
}


@dataclass
class _TopicRecord:
    name: str
    type_name: str
    qos_yaml: str
    type_hash: str
    channel_id: int
    count: int = 0


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
