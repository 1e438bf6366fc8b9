"""``netbed trace`` as a user runs it: files, gzip, standard input, streamed JSON, a progress bar at a terminal."""

from __future__ import annotations

import gzip
import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from chunked import chunked_equivalence  # noqa: F401 - every capture here is also read in tiny chunks
from conftest import NETBED, REPO, netbed
from pcapbuild import Conversation, interleave, pcap_bytes, pcapng_bytes, write_pcap

from netbed.trace import read_trace

T0 = 1_700_000_000.0


def conversations() -> list[Conversation]:
    a = Conversation().handshake()
    a.client("P.", 100)
    a.server("P.", 300)
    a.four_way_close()
    b = Conversation(client_addr=("10.0.0.3", 40001), start=T0 + 0.0005).handshake()
    b.server("F.")
    b.client("F.")
    b.server(".")
    c = Conversation(client_addr=("fd00::1", 50000), server_addr=("fd00::2", 443), start=T0 + 0.0007).handshake()
    c.client("P.", 10)
    c.client("R")
    return [a, b, c]


def test_streamed_json_is_byte_for_byte_what_read_trace_gives(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "c.pcap", interleave(*conversations()))
    res = netbed("trace", str(path), "--json")
    assert res.returncode == 0, res.stderr
    assert res.stdout == read_trace(path).to_json_text()
    assert len(json.loads(res.stdout)["connections"]) == 3


def test_an_empty_capture_is_still_one_json_document(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "e.pcap", [])
    res = netbed("trace", str(path), "--json")
    assert json.loads(res.stdout) == {"connections": [], "warnings": []}
    assert res.stdout == read_trace(path).to_json_text()


def test_the_table_lists_every_connection_and_counts_frames(tmp_path: Path) -> None:
    packets = interleave(*conversations())
    res = netbed("trace", str(write_pcap(tmp_path / "c.pcap", packets)))
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["client", "server", "handshake"]
    assert lines[2].split()[:5] == ["10.0.0.1:40000", "10.0.0.2:80", "complete", "four-way", "client"]
    assert lines[4].split()[:5] == ["[fd00::1]:50000", "[fd00::2]:443", "complete", "reset", "client"]
    assert lines[-1] == f"3 TCP connections, {len(packets)} frames"


def test_table_cells_are_padded_like_the_endpoint_texts_whatever_their_length(tmp_path: Path) -> None:
    """Rows are formatted from an address prefix and a port; each cell must still be the endpoint's
    text left-aligned in its column, and a text longer than the column (IPv6) widens only its cell."""
    long = Conversation(client_addr=("fd00:1234:5678:9abc:def0:1234:5678:9abc", 65535),
                        server_addr=("fd00::2", 8), start=T0 + 0.0009).handshake()
    long.four_way_close()
    path = write_pcap(tmp_path / "c.pcap", interleave(*conversations(), long))
    rows = netbed("trace", str(path)).stdout.splitlines()[2:-1]
    expected = [f"{str(c.client):<21}  {str(c.server):<21}  {c.handshake:<10}  {c.close_kind:<12}  "
                f"{c.close_initiator or '-':<9}  {c.bytes_client:>12}  {c.bytes_server:>12}  {c.half_close_bytes:>10}  "
                f"{c.segment_count:>8}" for c in read_trace(path).connections]
    assert rows == expected
    assert len(rows[-1]) > len(rows[0])


def by_client(text: str | bytes) -> dict:
    doc = json.loads(text)
    doc["connections"].sort(key=lambda c: c["client"])
    return doc


def test_standard_input_gzip_and_a_pcapng_of_several_sections_and_interfaces_read_alike(tmp_path: Path) -> None:
    a, b, c = conversations()
    for p in b.packets:
        p.interface = 1  # the second interface of the first section: Linux cooked capture
    first = pcapng_bytes(interleave(a, b), interfaces=((1, 6), (113, 6)))
    second = pcapng_bytes(c.packets, interfaces=((101, 6),), big_endian=True)  # a new section, other byte order
    ng = tmp_path / "two-sections.pcapng"
    ng.write_bytes(first + second)
    # The pcapng holds the IPv6 connection last (its own section): compare connections by client.
    expected = by_client(read_trace(write_pcap(tmp_path / "c.pcap", interleave(a, b, c))).to_json_text())
    from_file = by_client(netbed("trace", str(ng), "--json").stdout)
    assert from_file == expected and len(expected["connections"]) == 3
    from_stdin = subprocess.run([*NETBED, "trace", "-", "--json"], input=ng.read_bytes(), capture_output=True,
                                cwd=REPO, timeout=60)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert by_client(from_stdin.stdout) == expected
    gz = tmp_path / "rotated.pcap.gz"
    gz.write_bytes(gzip.compress(pcap_bytes(interleave(a, b, c))))
    assert by_client(netbed("trace", str(gz), "--json").stdout) == expected
    assert read_trace(gz).to_json_text() == read_trace(tmp_path / "c.pcap").to_json_text()


def test_a_gzip_capture_cut_off_keeps_what_was_written_and_warns(tmp_path: Path) -> None:
    data = gzip.compress(pcap_bytes(interleave(*conversations())))
    gz = tmp_path / "writing.pcap.gz"
    gz.write_bytes(data[: len(data) - 10])
    res = netbed("trace", str(gz), "--json")
    assert res.returncode == 0
    assert "damaged gzip stream" in res.stderr or "truncated" in res.stderr
    json.loads(res.stdout)


def test_json_streams_connections_before_the_input_ends(tmp_path: Path) -> None:
    early = Conversation().handshake()
    early.four_way_close()
    late = Conversation(client_addr=("10.0.0.3", 40001), start=T0 + 60).handshake()  # a minute later
    data = pcap_bytes(interleave(early, late))
    cut = len(pcap_bytes(early.packets)) + len(pcap_bytes(late.packets[:1])) - 24
    proc = subprocess.Popen([*NETBED, "trace", "-", "--json"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(data[:cut])  # the early connection, then one segment a minute later: it is final
    proc.stdin.flush()
    seen = b""
    deadline = time.monotonic() + 60
    while b"10.0.0.1:40000" not in seen and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 1)[0]:
            seen += os.read(proc.stdout.fileno(), 65536)
    assert b"10.0.0.1:40000" in seen, "nothing printed while the input was still open"
    assert proc.poll() is None, "the command ended before its input did"
    proc.stdin.write(data[cut:])
    proc.stdin.close()
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    doc = json.loads(seen + rest)
    assert [c["client"] for c in doc["connections"]] == ["10.0.0.1:40000", "10.0.0.3:40001"]


def _run_in_pty(args: list[str], data: bytes, pieces: int = 8, pause: float = 0.35,
                term: str = "xterm-256color") -> tuple[str, bytes]:
    """Run netbed with stderr on a pseudo-terminal of type `term` (set here, not inherited: under
    `vagrant ssh -c` the suite's own TERM is dumb) and the capture trickling into stdin."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": term}
    proc = subprocess.Popen([*NETBED, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave,
                            cwd=REPO, env=env)
    os.close(slave)
    assert proc.stdin is not None and proc.stdout is not None
    step = len(data) // pieces + 1
    for i in range(0, len(data), step):
        proc.stdin.write(data[i:i + step])
        proc.stdin.flush()
        time.sleep(pause)
    proc.stdin.close()
    out = proc.stdout.read()
    proc.wait(timeout=60)
    seen = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return seen.decode(errors="replace"), out


def many_connections(count: int) -> bytes:
    convs = []
    for i in range(count):
        c = Conversation(client_addr=("10.0.0.1", 20000 + i), start=T0 + i * 0.01).handshake()
        c.client("P.", 100)
        c.four_way_close()
        convs.append(c)
    return pcap_bytes(interleave(*convs))


def test_a_terminal_shows_a_progress_bar_when_the_analysis_takes_over_a_second() -> None:
    seen, out = _run_in_pty(["trace", "-"], many_connections(200))
    assert "packets/s" in seen and "connections" in seen, seen
    assert out.decode().splitlines()[-1].startswith("200 TCP connections")


def test_no_progress_bar_with_json_or_when_stderr_is_not_a_terminal() -> None:
    data = many_connections(200)
    seen, out = _run_in_pty(["trace", "-", "--json"], data)
    assert seen == ""
    dumb_seen, dumb_out = _run_in_pty(["trace", "-"], data, term="dumb")  # a terminal that cannot redraw a line
    assert dumb_seen == "" and dumb_out.decode().splitlines()[-1].startswith("200 TCP connections")
    assert len(json.loads(out)["connections"]) == 200
    proc = subprocess.Popen([*NETBED, "trace", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    for i in range(0, len(data), len(data) // 6 + 1):
        proc.stdin.write(data[i:i + len(data) // 6 + 1])
        proc.stdin.flush()
        time.sleep(0.35)
    out, err = proc.communicate(timeout=60)
    assert err == b""
