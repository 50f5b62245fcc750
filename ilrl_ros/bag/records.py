"""What reading a bag yields and how it fails: errors, topics, messages and damaged parts."""

from __future__ import annotations

from dataclasses import dataclass
import datetime
from typing import Any, Optional


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
