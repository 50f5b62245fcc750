"""One .mcap file read record by record, every chunk checked against its CRC.

Damaged chunks are skipped and listed as :class:`BagLoss`; a file whose writer was killed
(no footer) or whose summary is damaged is scanned at open.
"""

from __future__ import annotations

from dataclasses import dataclass
import heapq
import io
import logging
import os
from pathlib import Path
import re
import struct
from typing import Iterator, Optional
import zlib

import lz4.frame
from mcap.opcode import Opcode
from mcap.records import Channel, Schema
import zstandard

from ilrl_ros.bag.records import BagError, BagLoss, BagMessage, format_log_time, TopicInfo

logger = logging.getLogger(__name__)

MCAP_MAGIC = b'\x89MCAP0\r\n'
_RECORD_HEADER = struct.Struct('<BQ')  # opcode, record length
_FOOTER_RECORD_SIZE = _RECORD_HEADER.size + 8 + 8 + 4
_MESSAGE_FIXED = struct.Struct('<HIQQ')  # channel id, sequence, log time, publish time
# No chunk of a bag we can read decompresses to more; a larger size is a damaged header.
_MAX_CHUNK_BYTES = 1 << 32


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


class McapFile:
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
                if stream.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
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
        footer_at = size - len(MCAP_MAGIC) - _FOOTER_RECORD_SIZE
        if footer_at < len(MCAP_MAGIC):
            return False
        stream.seek(footer_at)
        tail = stream.read(_FOOTER_RECORD_SIZE + len(MCAP_MAGIC))
        opcode, length, summary_start, _, summary_crc = struct.unpack_from('<BQQQI', tail)
        if (tail[_FOOTER_RECORD_SIZE:] != MCAP_MAGIC or opcode != Opcode.FOOTER
                or length != _FOOTER_RECORD_SIZE - _RECORD_HEADER.size):
            return False
        if not len(MCAP_MAGIC) <= summary_start <= footer_at:
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
        offset = len(MCAP_MAGIC)
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
            if opcode == Opcode.FOOTER and fits and end + len(MCAP_MAGIC) == size:
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
        if offset == len(MCAP_MAGIC):
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
