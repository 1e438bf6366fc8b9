"""What ``netbed trace`` prints: the JSON document and the table, written straight from the columns.

Why not ``json.dumps(connection.to_json())``: building a dict and encoding it costs ~8 us per
connection, more than classifying it. Every value here is a number, ``null`` or a string made of
address characters and verdict words (nothing to escape), so one ``%`` template per connection gives
byte for byte what ``json.dumps`` gives (``tests/test_trace_command.py`` holds them side by side).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from .addresses import ip_texts
from .columns import ConnectionTable
from .constants import CLOSE_KIND_OF_CODE, CLOSER_OF_CODE, HANDSHAKE_OF_CODE

__all__ = ["JSON_HEAD", "TABLE_COLUMNS", "json_lines", "json_tail", "table_head", "table_rows"]

JSON_HEAD = '{\n "connections": ['
_JSON = ('{"client": "%s", "server": "%s", "handshake": "%s", "isn": {"client": %s, "server": %s}, '
         '"close": {"kind": "%s", "initiator": %s}, "bytes": {"client": %d, "server": %d}, "half_close_bytes": %d, '
         '"segments": %d, "retransmissions": {"client": %d, "server": %d}, "start": %r, "end": %r}')
TABLE_COLUMNS = ("client", "server", "handshake", "close", "initiator", "bytes c>s", "bytes s>c", "half-close",
                 "segments")
# Widths that fit IPv4 endpoints and large counts; a longer value (IPv6) widens only its own row.
_WIDTHS = (21, 21, 10, 12, 9, 12, 12, 10, 8)
_ROW = "  ".join(f"{{:{'>' if i >= 5 else '<'}{w}}}" for i, w in enumerate(_WIDTHS))
_ROW_PERCENT = "  ".join(f"%{'' if i >= 5 else '-'}{w}{'d' if i >= 5 else 's'}" for i, w in enumerate(_WIDTHS))
# Plain strings per code, looked up by position: an enum's .value costs a descriptor call per row.
_HANDSHAKE = [HANDSHAKE_OF_CODE[c].value for c in sorted(HANDSHAKE_OF_CODE)]
_KIND = [CLOSE_KIND_OF_CODE[c].value for c in sorted(CLOSE_KIND_OF_CODE)]
_CLOSER = {c: w.value if w is not None else "-" for c, w in CLOSER_OF_CODE.items()}
_CLOSER_JSON = {c: f'"{w.value}"' if w is not None else "null" for c, w in CLOSER_OF_CODE.items()}


def _endpoints(table: ConnectionTable) -> tuple[list[str], list[str]]:
    def texts(ips: list[str], ports: list[int]) -> list[str]:
        return [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip, port in zip(ips, ports)]

    return (texts(ip_texts(table.client_hi, table.client_lo), table.client_port.tolist()),
            texts(ip_texts(table.server_hi, table.server_lo), table.server_port.tolist()))


def json_lines(table: ConnectionTable) -> Iterator[str]:
    """Each connection as the compact JSON object ``Connection.to_json`` would give."""
    clients, servers = _endpoints(table)
    columns = zip(clients, servers, *(getattr(table, name).tolist() for name in (
        "handshake", "isn_client", "isn_server", "close_kind", "closer", "bytes_client", "bytes_server",
        "half_close", "segments", "retrans_client", "retrans_server", "start", "end")))
    hs_text, kind_text, closer = _HANDSHAKE, _KIND, _CLOSER_JSON
    for c, s, hs, xc, xs, k, w, bc, bs, hb, n, rc, rs, t0, t1 in columns:
        yield _JSON % (c, s, hs_text[hs], xc if xc >= 0 else "null", xs if xs >= 0 else "null",
                       kind_text[k], closer[w], bc, bs, hb, n, rc, rs, t0, t1)


def json_tail(any_connection: bool, warnings: Iterable[str]) -> str:
    return ("\n ]" if any_connection else "]") + f',\n "warnings": {json.dumps(list(warnings))}\n}}\n'


def table_head() -> str:
    return _ROW.format(*TABLE_COLUMNS).rstrip() + "\n" + _ROW.format(*("-" * w for w in _WIDTHS)) + "\n"


def table_rows(table: ConnectionTable) -> Iterator[str]:
    clients, servers = _endpoints(table)
    hs_text, kind_text, closer, row = _HANDSHAKE, _KIND, _CLOSER, _ROW_PERCENT
    for c, s, hs, k, w, bc, bs, hb, n in zip(clients, servers, *(getattr(table, name).tolist() for name in (
            "handshake", "close_kind", "closer", "bytes_client", "bytes_server", "half_close", "segments"))):
        yield row % (c, s, hs_text[hs], kind_text[k], closer[w], bc, bs, hb, n)
