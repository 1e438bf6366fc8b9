"""What ``netbed trace`` prints: the JSON document and the table, written straight from the columns.

Why not ``json.dumps(connection.to_json())``: building a dict and encoding it costs ~8 us per
connection, more than classifying it. Every value here is a number, ``null`` or a string made of
address characters and verdict words (nothing to escape), so one ``%`` template per connection gives
byte for byte what ``json.dumps`` gives (``tests/test_trace_command.py`` holds them side by side).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

from .addresses import factorize, ip_texts
from .columns import ConnectionTable
from .constants import CLOSE_KIND_OF_CODE, CLOSER_OF_CODE, HANDSHAKE_OF_CODE

__all__ = ["JSON_HEAD", "TABLE_COLUMNS", "json_lines", "json_tail", "table_head", "table_rows"]

JSON_HEAD = '{\n "connections": ['
# An endpoint is written as its address prefix ("10.0.0.1:" or "[fd00::1]:", made once per distinct
# address) followed by its port, so no text is built per connection before the row itself.
_JSON = ('{"client": "%s%d", "server": "%s%d", "handshake": "%s", "isn": {"client": %s, "server": %s}, '
         '"close": {"kind": "%s", "initiator": %s}, "bytes": {"client": %d, "server": %d}, "half_close_bytes": %d, '
         '"segments": %d, "retransmissions": {"client": %d, "server": %d}, "start": %r, "end": %r}')
TABLE_COLUMNS = ("client", "server", "handshake", "close", "initiator", "bytes c>s", "bytes s>c", "half-close",
                 "segments")
# Widths that fit IPv4 endpoints and large counts; a longer value (IPv6) widens only its own row.
_WIDTHS = (21, 21, 10, 12, 9, 12, 12, 10, 8)
_ENDPOINT_WIDTH = _WIDTHS[0]
_ROW = "  ".join(f"{{:{'>' if i >= 5 else '<'}{w}}}" for i, w in enumerate(_WIDTHS))
# An endpoint cell is "%s%-*d": the address prefix, then the port left-aligned in what is left of the
# column (a prefix too long for the column just widens the cell, as "%-21s" of the whole text would).
_ROW_PERCENT = "  ".join(("%s%-*d" if i < 2 else f"%{'' if i >= 5 else '-'}{w}{'d' if i >= 5 else 's'}")
                         for i, w in enumerate(_WIDTHS))
# Words per code, as object arrays a code column indexes in one step (CloserCode.NOBODY, -1, is the last).
_HANDSHAKE = np.array([HANDSHAKE_OF_CODE[c].value for c in sorted(HANDSHAKE_OF_CODE)], dtype=object)
_KIND = np.array([CLOSE_KIND_OF_CODE[c].value for c in sorted(CLOSE_KIND_OF_CODE)], dtype=object)
_CLOSERS = sorted(CLOSER_OF_CODE, key=lambda c: (c < 0, c))  # 0, 1, 2, then -1
_CLOSER = np.array([w.value if w is not None else "-" for w in map(CLOSER_OF_CODE.get, _CLOSERS)], dtype=object)
_CLOSER_JSON = np.array([f'"{w.value}"' if w is not None else "null" for w in map(CLOSER_OF_CODE.get, _CLOSERS)],
                        dtype=object)


def _prefixes(hi: np.ndarray, lo: np.ndarray) -> tuple[list[str], list[int]]:
    """Per row, the endpoint text before the port and the room left for the port in a table cell."""
    if len(hi) == 0:
        return [], []
    ids, rows = factorize(hi, lo)
    texts = [f"[{ip}]:" if ":" in ip else f"{ip}:" for ip in ip_texts(hi[rows], lo[rows])]
    prefix = np.array(texts, dtype=object)
    # Never negative: "%-*d" reads a negative width as a left-aligned positive one.
    room = np.array([max(0, _ENDPOINT_WIDTH - len(t)) for t in texts], dtype=object)
    return prefix[ids].tolist(), room[ids].tolist()


def _nullable(values: np.ndarray) -> list[object]:
    """Numbers as they are, -1 (not seen) as JSON's null."""
    return np.where(values >= 0, values.astype(object), "null").tolist()


def json_lines(table: ConnectionTable) -> list[str]:
    """Each connection as the compact JSON object ``Connection.to_json`` would give.

    Every column becomes a Python list in one NumPy step (words looked up by code, -1 made null), so
    the per-connection work is the one ``%`` of the template, run by ``map`` without a Python loop.
    """
    clients, _ = _prefixes(table.client_hi, table.client_lo)
    servers, _ = _prefixes(table.server_hi, table.server_lo)
    return list(map(_JSON.__mod__, zip(
        clients, table.client_port.tolist(), servers, table.server_port.tolist(),
        _HANDSHAKE[table.handshake].tolist(), _nullable(table.isn_client), _nullable(table.isn_server),
        _KIND[table.close_kind].tolist(), _CLOSER_JSON[table.closer].tolist(),
        *(getattr(table, name).tolist() for name in ("bytes_client", "bytes_server", "half_close", "segments",
                                                     "retrans_client", "retrans_server", "start", "end")))))


def json_tail(any_connection: bool, warnings: Iterable[str]) -> str:
    return ("\n ]" if any_connection else "]") + f',\n "warnings": {json.dumps(list(warnings))}\n}}\n'


def table_head() -> str:
    return _ROW.format(*TABLE_COLUMNS).rstrip() + "\n" + _ROW.format(*("-" * w for w in _WIDTHS)) + "\n"


def table_rows(table: ConnectionTable) -> list[str]:
    """One fixed-width row per connection (see :data:`_ROW_PERCENT`), made like :func:`json_lines`."""
    clients, client_room = _prefixes(table.client_hi, table.client_lo)
    servers, server_room = _prefixes(table.server_hi, table.server_lo)
    return list(map(_ROW_PERCENT.__mod__, zip(
        clients, client_room, table.client_port.tolist(), servers, server_room, table.server_port.tolist(),
        _HANDSHAKE[table.handshake].tolist(), _KIND[table.close_kind].tolist(), _CLOSER[table.closer].tolist(),
        *(getattr(table, name).tolist() for name in ("bytes_client", "bytes_server", "half_close", "segments")))))
