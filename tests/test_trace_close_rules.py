"""The classifier's rules for the hard cases (docs/trace.md, "Decisions"), one hand-made capture each.

Every test holds a case that fails when its rule is broken: the big transfers are reported four-way
if ACKs sent before the FIN may count, the cut capture shows 10 bytes instead of 1000 if sizes come
from the captured length, and so on.
"""

from __future__ import annotations

from pathlib import Path

from chunked import chunked_equivalence  # noqa: F401 - every capture here is also read in tiny chunks
from pcapbuild import Conversation, write_pcap

from netbed.trace import Connection, read_trace

GIB = 1 << 30
SEGMENT = 65_000  # about what segmentation offload hands to a capture point on loopback
ACK_EVERY = 16


def only(tmp_path: Path, c: Conversation, name: str = "c.pcap", **kwargs: object) -> Connection:
    (conn,) = read_trace(write_pcap(tmp_path / name, c.packets, **kwargs)).connections
    return conn


def big_transfer_then_three_way_close(total: int) -> Conversation:
    """The client sends ``total`` bytes (a headers-only capture, as tcpdump -s 54 writes it), the
    server acknowledges every 16th segment, then the client closes and the server's FIN carries the
    first ACK of that FIN: three segments."""
    c = Conversation(headers_only=True, step=1e-6).handshake()
    for i in range(total // SEGMENT):
        c.client(".", SEGMENT)
        if i % ACK_EVERY == ACK_EVERY - 1:
            c.server(".")
    c.client("F.")
    c.server("F.")
    c.client(".")
    return c


def test_three_way_close_after_more_than_2_gib_is_not_reported_four_way(tmp_path: Path) -> None:
    # Before the FIN, the server's ACKs acknowledge numbers more than 2^31 below the FIN's end: read
    # modulo 2^32 they looked *past* it, and the first of them was taken as the ACK of the FIN.
    total = 2 * GIB + GIB // 2
    trace = read_trace(write_pcap(tmp_path / "big.pcap", big_transfer_then_three_way_close(total).packets, snaplen=54))
    (conn,) = trace.connections
    assert (conn.close_kind, conn.close_initiator) == ("three-way", "client")
    assert conn.bytes_client == total // SEGMENT * SEGMENT > 2 * GIB and conn.half_close_bytes == 0


def test_three_way_close_after_4_gib_where_sequence_numbers_wrap(tmp_path: Path) -> None:
    total = 4 * GIB + GIB // 2
    conn = only(tmp_path, big_transfer_then_three_way_close(total), snaplen=54)
    assert (conn.close_kind, conn.close_initiator) == ("three-way", "client")
    assert conn.bytes_client == total // SEGMENT * SEGMENT > 4 * GIB


def test_a_capture_cut_to_its_headers_keeps_true_sizes_and_says_frames_are_cut(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 1000)
    c.server("P.", 3000)
    c.client("F.")
    c.server("P.", 500)  # half-close: the server still sends after the client's FIN
    c.server("F.")
    c.client(".")
    trace = read_trace(write_pcap(tmp_path / "cut.pcap", c.packets, snaplen=64))
    (conn,) = trace.connections
    assert (conn.bytes_client, conn.bytes_server, conn.half_close_bytes) == (1000, 3500, 500)
    assert any("cut short by the capture's snap length" in w for w in trace.warnings)
    # The same capture uncut has no such warning.
    assert not read_trace(write_pcap(tmp_path / "full.pcap", c.packets)).warnings


def test_tcp_fast_open_data_in_the_syn_counts_and_the_handshake_completes(tmp_path: Path) -> None:
    c = Conversation(isn_client=100)
    c.client("S", 120)  # data in the SYN; the server accepts it: its SYN-ACK acknowledges x+1+120
    syn_ack = c.server("S.")
    c.client(".")
    c.server("P.", 300)
    c.four_way_close()
    conn = only(tmp_path, c)
    assert (conn.handshake, conn.bytes_client, conn.bytes_server) == ("complete", 120, 300)
    assert conn.isn["client"] == 100
    assert syn_ack is c.packets[1]


def test_tcp_fast_open_refused_data_is_sent_again_and_counted_once(tmp_path: Path) -> None:
    c = Conversation(isn_client=100)
    c.client("S", 120)
    c.server("S.", ack=101)  # the server took the SYN but not its data
    c.client(".", ack=None)
    c.client("P.", 120, seq=101)
    c.four_way_close()
    conn = only(tmp_path, c)
    assert (conn.handshake, conn.bytes_client) == ("complete", 120)


def test_a_syn_ack_acknowledging_neither_the_syn_nor_its_data_leaves_the_handshake_incomplete(
        tmp_path: Path) -> None:
    c = Conversation(isn_client=100)
    c.client("S", 120)
    c.server("S.", ack=100 + 1 + 120 + 1)
    c.client(".")
    assert only(tmp_path, c).handshake == "incomplete"


def test_an_rst_the_receiver_ignores_is_not_the_end_a_normal_close_follows(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 100)
    c.server("R", seq=c.next_seq["server"] + 3_000_000)  # blind RST outside the window (RFC 5961)
    c.client(".")  # the client answers with a challenge ACK: it kept the connection
    c.four_way_close()
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("four-way", "client")


def test_an_rst_whose_receiver_never_speaks_again_is_a_reset(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 100)
    c.server("R")
    c.server("R")  # more RSTs from the same side do not revive anything
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("reset", "server")


def test_a_capture_that_starts_after_the_first_fin_reports_open_and_names_the_fin_it_saw(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 100)
    c.four_way_close("client")
    c.packets[:] = c.packets[-3:]  # the capture begins just after the client's FIN
    conn = only(tmp_path, c)
    assert conn.handshake == "none"
    assert (conn.close_kind, conn.close_initiator) == ("open", "server")


def test_a_fin_without_ack_is_dropped_by_its_receiver_and_does_not_count(tmp_path: Path) -> None:
    c = Conversation().handshake()
    fin_seq = c.next_seq["client"]
    c.client("F")  # no ACK flag: RFC 9293 says drop it, Linux does
    c.next_seq["client"] = fin_seq
    c.server("F.", ack=fin_seq)
    c.client(".")
    c.client("F.")
    c.server(".")
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("four-way", "server")


def test_an_rst_after_both_fins_leaves_the_close_judged_by_its_fins(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("F.")
    c.server("F.")
    c.client("R")  # instead of the last ACK
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("three-way", "client")


def test_a_pure_ack_lost_before_the_capture_point_is_judged_as_seen_there(tmp_path: Path) -> None:
    at_server = Conversation().handshake()
    at_server.client("P.", 100)
    at_server.four_way_close("client")
    conn = only(tmp_path, at_server, "server.pcap")
    assert conn.close_kind == "four-way"
    at_client = Conversation(packets=list(at_server.packets))
    del at_client.packets[-3]  # the server's pure ACK of the FIN never reached the client's side
    assert only(tmp_path, at_client, "client.pcap").close_kind == "three-way"
