"""``open_bag``: a bag directory (or one file) read as one bag, files merged by log time.

Finds the bag's files through metadata.yaml (or the directory, where it is missing or
damaged), opens each with its file reader, and gathers topics, notes and losses.
"""

from __future__ import annotations

import heapq
import logging
import os
from pathlib import Path
import re
from typing import Any, Iterable, Iterator, Optional

from rclpy.serialization import deserialize_message
import yaml

from ilrl_ros.bag.mcap_reader import MCAP_MAGIC, McapFile
from ilrl_ros.bag.metadata import METADATA_FILE
from ilrl_ros.bag.records import (BagError, BagLoss, BagMessage, BagMessageError,
                                  format_log_time, TopicInfo)
from ilrl_ros.bag.schema import message_class
from ilrl_ros.bag.sqlite_reader import SQLITE_MAGIC, SqliteFile

logger = logging.getLogger(__name__)


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

    def __init__(self, path: Path, sources: list[McapFile | SqliteFile], *,
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


def _open_file(path: Path) -> McapFile | SqliteFile:
    try:
        with open(path, 'rb') as stream:
            magic = stream.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BagError(f'Cannot read bag file {path}: {error}.') from error
    if magic.startswith(MCAP_MAGIC):
        return McapFile(path)
    if magic == SQLITE_MAGIC:
        return SqliteFile(path)
    raise BagError(
        f'{path} is not a bag file: expected an MCAP (.mcap) or rosbag2 sqlite3 (.db3) file, '
        "but it starts with neither format's magic bytes.")


def _storage_of(sources: list[McapFile | SqliteFile]) -> str:
    kinds = {'mcap' if isinstance(source, McapFile) else 'sqlite3' for source in sources}
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
