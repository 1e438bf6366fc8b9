"""Where the chunked analysis gets its TCP segments: read and decoded ahead in a thread, or in a second process.

Why a second process: reading a chunk (the record chain is a Python loop) and decoding it take about
as long as classifying it, and both are many NumPy calls that hold the interpreter lock between
them, so a reader *thread* overlaps little. A forked reader process overlaps fully on a second core:
it reads, decodes and picks the TCP columns of the next chunk, and groups them by 4-tuple (the
classifier's first step), while this process classifies the current one. The columns cross through
shared memory -- two slots of one chunk each, the reader fills one while the classifier copies the
other out -- so memory grows by two chunks of columns, not with the capture. Both sources give the
same segments, numbered the same (the forked one grouped by 4-tuple, capture order inside each).
"""

from __future__ import annotations

import mmap
import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import BinaryIO, TypeVar

import numpy as np

from .classify import by_four_tuple
from .columns import TcpColumns
from .constants import MAX_RECORD
from .container import PcapError
from .pcap import CaptureStream

__all__ = ["Chunk", "ForkedReader", "InProcessReader", "read_ahead"]

SLOTS = 2  # chunks of columns in shared memory: one being filled, one being copied out
SMALLEST_TCP_RECORD = 16 + 20 + 20  # classic pcap record header, IPv4 and TCP headers, raw IP link
_COLUMNS = [f.name for f in fields(TcpColumns) if f.name not in ("count", "again")]
_ALIGN = 8


@dataclass
class Chunk:
    """The TCP segments of one chunk and how far the capture has been read."""

    segments: TcpColumns
    cut_frames: int  # frames of this chunk cut short by the snap length
    frames: int  # frames read so far
    bytes_read: int
    total_bytes: int | None


def _chunks(capture: CaptureStream, frames_source: Iterable, grouped: bool = False) -> Iterator[Chunk]:
    """The TCP columns of each chunk, with the capture clock carried on; ``grouped``: rows grouped by
    4-tuple (capture order inside each), which is the classifier's first step, done here instead."""
    clock = -np.inf
    for frames in frames_source:
        t = TcpColumns.from_frames(frames, clock)
        if len(t):
            clock = max(clock, float(t.clock[-1]))
            if grouped:
                t = t.select(by_four_tuple(t))
        yield Chunk(t, int(np.count_nonzero(frames.caplen < frames.wirelen)), capture.frames, capture.bytes_read,
                    capture.total_bytes)


class InProcessReader:
    """Chunks read and decoded one ahead by a thread of this process."""

    def __init__(self, path: str, chunk_bytes: int) -> None:
        self.capture = CaptureStream(path, chunk_bytes)
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[Chunk]:
        yield from _chunks(self.capture, read_ahead(self.capture))
        self.warnings = list(self.capture.warnings)


class ForkedReader:
    """Chunks read and decoded by a forked process (see the module's docstring); ``warnings`` are
    complete once the iteration ends. Errors of the reader (not a capture, unreadable) are raised
    here as the same kind of exception."""

    def __init__(self, path: str, chunk_bytes: int) -> None:
        self.path = path
        self.chunk_bytes = max(1, chunk_bytes)
        rows = (self.chunk_bytes + MAX_RECORD) // SMALLEST_TCP_RECORD + 1
        self.slot_bytes = rows * sum(np.dtype(_dtype(c)).itemsize for c in _COLUMNS) + _ALIGN * len(_COLUMNS)
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[Chunk]:
        shared = mmap.mmap(-1, SLOTS * self.slot_bytes)  # anonymous and shared with the child
        up_r, up_w = os.pipe()
        down_r, down_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the reader: never returns
            os.close(up_r)
            os.close(down_w)
            _reader_process(self.path, self.chunk_bytes, shared, self.slot_bytes, up_w, down_r)
        os.close(up_w)
        os.close(down_r)
        messages = os.fdopen(up_r, "rb")
        freed = os.fdopen(down_w, "wb", buffering=0)
        try:
            while True:
                try:
                    message = pickle.load(messages)
                except EOFError:
                    raise RuntimeError("netbed trace: the reading process ended without a word") from None
                kind = message[0]
                if kind == "chunk":
                    _, slot, layout, cut, frames, bytes_read, total = message
                    t = _take(shared, slot * self.slot_bytes, layout) if isinstance(layout, list) else layout
                    try:
                        freed.write(bytes([slot]))
                    except BrokenPipeError:  # the reader has sent its last chunk and left
                        pass
                    yield Chunk(t, cut, frames, bytes_read, total)
                elif kind == "end":
                    self.warnings = message[1]
                    return
                else:
                    raise _error(message)
        finally:
            messages.close()
            try:
                freed.close()  # the reader, waiting for a free slot, sees the end and leaves
            except OSError:
                pass
            _reap(pid)
            shared.close()


def _dtype(column: str) -> str:
    return {"frame": "u4", "time": "f8", "clock": "f8", "src_hi": "u8", "src_lo": "u8", "dst_hi": "u8",
            "dst_lo": "u8", "sport": "u2", "dport": "u2", "seq": "u4", "ack": "u4", "flags": "u1",
            "plen": "u4"}[column]


def _put(shared: mmap.mmap, at: int, size: int, t: TcpColumns) -> list[tuple[str, str, int, int]] | None:
    """Copy the columns into the slot at ``at``; return where each is, or None when they do not fit."""
    layout = []
    offset = at
    for name in _COLUMNS:
        column = np.ascontiguousarray(getattr(t, name))
        if offset + column.nbytes > at + size:
            return None
        np.frombuffer(shared, column.dtype, len(column), offset)[:] = column
        layout.append((name, column.dtype.str, len(column), offset))
        offset += -(-column.nbytes // _ALIGN) * _ALIGN
    return layout


def _take(shared: mmap.mmap, at: int, layout: list[tuple[str, str, int, int]]) -> TcpColumns:
    """The columns of a slot, copied out (the slot is refilled while these are still in use)."""
    columns = {name: np.frombuffer(shared, dtype, count, offset).copy() for name, dtype, count, offset in layout}
    return TcpColumns(*(columns[name] for name in _COLUMNS))


def _send(out: BinaryIO, message: tuple) -> None:
    pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _reader_process(path: str, chunk_bytes: int, shared: mmap.mmap, slot_bytes: int, up: int, down: int) -> None:
    """The forked reader: chunks into free slots, one message per chunk, then the warnings; exits."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the classifier's to report; it ends us
        out = os.fdopen(up, "wb")
        freed = os.fdopen(down, "rb", buffering=0)
        free = list(range(SLOTS))
        capture = CaptureStream(path, chunk_bytes)
        try:
            for chunk in _chunks(capture, capture, grouped=True):
                if not free:
                    got = freed.read(1)
                    if not got:
                        return  # the classifier stopped reading
                    free.append(got[0])
                slot = free.pop(0)
                layout = _put(shared, slot * slot_bytes, slot_bytes, chunk.segments)
                _send(out, ("chunk", slot, chunk.segments if layout is None else layout, chunk.cut_frames,
                            chunk.frames, chunk.bytes_read, chunk.total_bytes))
            _send(out, ("end", list(capture.warnings)))
        except PcapError as exc:
            _send(out, ("error", "pcap", str(exc), None))
        except OSError as exc:
            _send(out, ("error", "os", exc.strerror or str(exc), exc.errno))
        except Exception:  # noqa: BLE001 - a bug: its traceback goes to the classifier, which raises it
            _send(out, ("error", "bug", traceback.format_exc(), None))
    except BaseException:  # noqa: BLE001 - the classifier is gone (broken pipe) or we were told to stop
        code = 1
    finally:
        os._exit(code)


def _error(message: tuple) -> Exception:
    _, kind, text, errno = message
    if kind == "pcap":
        return PcapError(text)
    if kind == "os":
        return OSError(errno, text)
    return RuntimeError(f"the reading process failed:\n{text}")


def _reap(pid: int) -> None:
    """Wait for the reader; stop it first if it is still at work (the classifier stopped early)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


T = TypeVar("T")


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """The items of ``items``, produced one ahead in a thread.

    Why: reading and decoding the next chunk and classifying this one are about equal work, and
    NumPy lets go of the interpreter lock in its copies, gathers and sorts, so on a second core the
    two overlap somewhat. One chunk ahead at most: memory grows by one chunk, not more.
    """
    ahead: queue.Queue[object] = queue.Queue(maxsize=1)
    done = object()

    def produce() -> None:
        try:
            for item in items:
                ahead.put(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            ahead.put(_Failed(exc))
        else:
            ahead.put(done)

    threading.Thread(target=produce, name="netbed-trace-reader", daemon=True).start()
    while True:
        item = ahead.get()
        if item is done:
            return
        if isinstance(item, _Failed):
            raise item.error
        yield item  # type: ignore[misc]
