"""Read a classic pcap or pcapng capture -- a file, a gzip file or standard input -- into frame tables.

Two ways in, one parser: :func:`read_frames` gives the whole capture as one table (what experiments
and ``read_trace`` use: small captures, every frame kept); :class:`CaptureStream` gives it in
chunks of about ``chunk_bytes`` so a capture of any size is analysed in bounded memory. Both feed
the same :class:`~netbed.trace.container.ContainerReader` and the same header decoder, so a frame
reads the same either way.

Input: a path, ``-`` for standard input (``tcpdump -w - | netbed trace -``), or a gzip-compressed
capture (``.pcap.gz`` as rotating captures write it), recognised by its magic bytes, not its name.
"""

from __future__ import annotations

import mmap
import os
import select
import stat
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from .container import Buffer, ContainerReader, PcapError
from .frames import Frames
from .headers import decode

__all__ = ["CaptureStream", "Frames", "PcapError", "capture_bytes", "read_frames"]

GZIP_MAGIC = b"\x1f\x8b"
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's way of saying "with a gzip header and trailer"
DEFAULT_CHUNK_BYTES = 32 << 20  # ~300,000 frames of short connections per chunk
# A pipe's writer counts as pausing (what arrived is analysed) once nothing came for this long. Not
# zero: a fast writer (`cat big.pcap |`) leaves the pipe empty for microseconds all the time, and a
# chunk per 64 KiB pipe-full costs more per chunk than the chunk's analysis.
PAUSE_SECONDS = 0.05
FIRST_CHUNK_BYTES = 4 << 20  # a file's first chunk: what the classifier waits for before it can start


def _open(name: str) -> tuple[BinaryIO, int | None]:
    """The capture as a binary stream (gzip undone) and its size in bytes when known."""
    if name == "-":
        raw: BinaryIO = sys.stdin.buffer
        size = None
    else:
        raw = open(name, "rb")  # noqa: SIM115 - closed by the caller
        size = os.fstat(raw.fileno()).st_size
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == GZIP_MAGIC:
        return _Gunzip(raw), size  # type: ignore[return-value]
    return raw, size


class _Gunzip:
    """gzip undone as it arrives. Unlike ``gzip.GzipFile``, a stream cut off mid-way (a rotating
    capture still being written) first gives everything before the cut, then raises EOFError."""

    def __init__(self, raw: BinaryIO) -> None:
        self.fileobj = raw
        self._inflate = zlib.decompressobj(wbits=GZIP_WBITS)
        self._pending = b""
        self._done = False

    def read1(self, size: int) -> bytes:
        while not self._pending:
            if self._done:
                return b""
            block = self.fileobj.read1(size)  # type: ignore[attr-defined]
            if not block:
                self._done = True
                if not self._inflate.eof:
                    raise EOFError("the gzip stream ends before its end marker")
                return b""
            out = self._inflate.decompress(block)
            while self._inflate.eof and self._inflate.unused_data:  # several gzip members, one after another
                rest = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=GZIP_WBITS)
                out += self._inflate.decompress(rest)
            self._pending = out
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def close(self) -> None:
        self.fileobj.close()


def _damaged(exc: Exception, used: int) -> str:
    return f"damaged gzip stream after {used} bytes of capture ({exc}); kept the frames before it"


def _decompress_all(stream: _Gunzip, name: str) -> tuple[bytes, str | None]:
    """Everything that decompresses, and a warning when the gzip stream breaks off (a rotating
    capture still being written) or is damaged."""
    parts: list[bytes] = []
    used = 0
    while True:
        try:
            block = stream.read1(DEFAULT_CHUNK_BYTES)
        except (EOFError, OSError, zlib.error) as exc:
            if not used:
                raise PcapError(f"not a pcap or pcapng file: {name} (damaged gzip: {exc})") from None
            return b"".join(parts), _damaged(exc, used)
        if not block:
            return b"".join(parts), None
        parts.append(block)
        used += len(block)


@contextmanager
def capture_bytes(path: str | os.PathLike[str]) -> Iterator[tuple[Buffer, list[str]]]:
    """The whole capture's bytes (gzip undone; a file is mapped, not copied) and the warnings met
    reading them; the mapping is closed on leaving the ``with`` block."""
    name = os.fspath(path)
    stream, size = _open(name)
    data: bytes | mmap.mmap
    warnings: list[str] = []
    try:
        if isinstance(stream, _Gunzip):
            data, damaged = _decompress_all(stream, name)
            if damaged:
                warnings.append(damaged)
        else:
            try:
                # Mapping the file costs a page fault per 64 KiB instead of a copy of the whole file. (A file
                # that grows meanwhile is read up to its size now; one truncated meanwhile would SIGBUS.)
                data = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) if name != "-" and size else b""
            except (OSError, ValueError):  # not mappable (a pipe, a special file): read it
                data = b""
            if not data:
                data = stream.read()
    finally:
        if name != "-":
            stream.close()
    try:
        yield data, warnings
    finally:
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:  # a view still alive (only on an error path): the collector closes it
                pass


def read_frames(path: str | os.PathLike[str]) -> tuple[Frames, list[str]]:
    """Read every frame of a capture; return the table and the warnings met on the way."""
    name = os.fspath(path)
    with capture_bytes(name) as (data, damaged):
        reader = ContainerReader(name)
        index, _ = reader.index(data, final=True)
        warnings = reader.warnings + damaged
        return decode(np.frombuffer(data, np.uint8), index, warnings), warnings


class CaptureStream:
    """A capture read chunk by chunk: iterate to get frame tables of about ``chunk_bytes`` each.

    Memory stays at about one chunk whatever the capture's size. ``bytes_read`` and ``total_bytes``
    (None for a pipe) feed a progress bar; ``warnings`` is complete once the iteration ends.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        self.name = os.fspath(path)
        self.chunk_bytes = max(1, chunk_bytes)
        self.reader = ContainerReader(self.name)
        self.warnings = self.reader.warnings
        self.bytes_read = 0
        self.total_bytes: int | None = None
        self.frames = 0
        self._error: Exception | None = None

    def _fill(self, stream: BinaryIO, fd: int | None, buf: bytearray, filled: int) -> tuple[int, bool]:
        """Read up to ``chunk_bytes`` more into ``buf`` after its first ``filled`` bytes; return how
        many bytes it holds now and whether the input ended.

        From a pipe, whatever has arrived is analysed as soon as the writer pauses (the pipe is not
        readable), so ``tcpdump -w - | netbed trace -`` shows connections while the capture runs. One
        buffer serves every chunk: what is left of a record at a chunk's end moves to its start.
        """
        if self._error is not None:
            raise self._error
        want = filled + self.chunk_bytes
        if len(buf) < want:
            buf.extend(bytes(want - len(buf)))
        view = memoryview(buf)
        got = filled
        try:
            while got < want:
                if got > filled and fd is not None and not select.select([fd], [], [], PAUSE_SECONDS)[0]:
                    break
                try:
                    # read1, not readinto1: after the format sniffing peek(), readinto1 would hand over the
                    # buffered bytes and then block in a read for more.
                    block = stream.read1(want - got)  # type: ignore[attr-defined]
                except (EOFError, OSError, zlib.error) as exc:
                    if got == filled:
                        raise
                    self._error = exc  # analyse what arrived before the damage first
                    break
                if not block:
                    return got, True
                view[got:got + len(block)] = block
                got += len(block)
            return got, False
        finally:
            view.release()

    def _mapped(self, stream: BinaryIO, size: int) -> Iterator[Frames]:
        """A regular file's chunks as windows of one read-only mapping: nothing is copied, a record
        cut by a window's end is simply seen whole by the next window."""
        mapping = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        whole = memoryview(mapping)
        at = end = 0
        try:
            while True:
                # Like the buffer of a stream: what is left of the last window, plus a chunk. The first
                # chunk is smaller, so that the classifier (in another process) can start sooner.
                end = min(size, end + (self.chunk_bytes if end else min(self.chunk_bytes, FIRST_CHUNK_BYTES)))
                final = end == size
                with whole[at:end] as data:
                    index, used = self.reader.index(data, final)
                    frames = decode(np.frombuffer(data, np.uint8), index, self.warnings, self.frames + 1) \
                        if len(index.start) else None
                # Pages already analysed leave this process (the page cache keeps them): resident
                # memory stays at about a chunk, not the file.
                done = (at + used) // mmap.PAGESIZE * mmap.PAGESIZE
                if done > at // mmap.PAGESIZE * mmap.PAGESIZE:
                    mapping.madvise(mmap.MADV_DONTNEED, 0, done)
                at += used
                self.bytes_read = at if not final else size
                if frames is not None:
                    self.frames += len(frames)
                    yield frames
                if final:
                    break
        finally:
            whole.release()
            mapping.close()

    def __iter__(self) -> Iterator[Frames]:
        stream, size = _open(self.name)
        compressed = isinstance(stream, _Gunzip)
        if not compressed and self.name != "-" and size and stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            try:
                self.total_bytes = size
                yield from self._mapped(stream, size)
                return
            finally:
                stream.close()
        self.total_bytes = size
        raw = stream.fileobj if compressed else stream  # type: ignore[attr-defined]
        try:
            fd: int | None = raw.fileno()
        except (OSError, AttributeError, ValueError):
            fd = None
        buf = bytearray()
        filled = 0
        try:
            while True:
                try:
                    total, final = self._fill(stream, fd, buf, filled)
                except (EOFError, OSError, zlib.error) as exc:
                    if not compressed:
                        raise
                    if not self.reader.offset and not filled:
                        raise PcapError(f"not a pcap or pcapng file: {self.name} (damaged gzip: {exc})") from None
                    self.warnings.append(_damaged(exc, self.reader.offset + filled))
                    total, final = filled, True
                self.bytes_read = raw.tell() if size is not None else self.bytes_read + total - filled
                data = memoryview(buf)[:total]
                index, used = self.reader.index(data, final)
                frames = None
                if len(index.start):
                    u8 = np.frombuffer(data, np.uint8)
                    frames = decode(u8, index, self.warnings, self.frames + 1)
                    del u8
                data.release()
                buf[:total - used] = buf[used:total]
                filled = total - used
                if frames is not None:
                    self.frames += len(frames)
                    yield frames
                if final:
                    break
        finally:
            if self.name != "-":
                stream.close()
