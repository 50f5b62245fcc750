"""One rosbag2 sqlite3 (.db3) file, read through its topics and messages tables."""

from __future__ import annotations

from pathlib import Path
import sqlite3
from typing import Iterator, Optional

from ilrl_ros.bag.records import BagError, BagMessage, TopicInfo

SQLITE_MAGIC = b'SQLite format 3\x00'


class SqliteFile:
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
