"""Connection classification by docs/design.md's definitions, one hand-made capture per behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chunked import chunked_equivalence  # noqa: F401 - every capture here is also read in tiny chunks
from pcapbuild import Conversation, Packet, interleave, write_pcap, write_pcapng

from netbed.trace import Connection, Endpoint, Segment, classify_segments, format_table, read_trace
from netbed.trace.model import flag_text


def classify(tmp_path: Path, *conversations: Conversation, **kwargs: object) -> list[Connection]:
    path = write_pcap(tmp_path / "c.pcap", interleave(*conversations), **kwargs)
    trace = read_trace(path)
    assert trace.warnings == []
    return trace.connections


def only(tmp_path: Path, conversation: Conversation, **kwargs: object) -> Connection:
    (conn,) = classify(tmp_path, conversation, **kwargs)
    return conn


def test_complete_handshake_records_both_isns_checked_by_x_plus_1_and_y_plus_1(tmp_path: Path) -> None:
    c = Conversation(isn_client=111, isn_server=999).handshake()
    conn = only(tmp_path, c)
    assert conn.handshake == "complete"
    assert conn.isn == {"client": 111, "server": 999}
    assert conn.client == Endpoint("10.0.0.1", 40000) and conn.server == Endpoint("10.0.0.2", 80)
    assert conn.close_kind == "open" and conn.close_initiator is None


def test_a_syn_ack_that_does_not_acknowledge_x_plus_1_leaves_the_handshake_incomplete(tmp_path: Path) -> None:
    c = Conversation(isn_client=111)
    c.client("S")
    c.server("S.", ack=500)
    c.client(".")
    assert only(tmp_path, c).handshake == "incomplete"


def test_a_syn_alone_is_an_incomplete_handshake(tmp_path: Path) -> None:
    c = Conversation()
    c.client("S")
    c.client("S", seq=1000)  # the retransmitted SYN stays in the same connection
    conn = only(tmp_path, c)
    assert conn.handshake == "incomplete" and conn.retransmissions == {"client": 1, "server": 0}


def test_four_way_close_by_the_client(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 100)
    c.server("P.", 300)
    conn = only(tmp_path, c.four_way_close())
    assert (conn.close_kind, conn.close_initiator) == ("four-way", "client")
    assert (conn.bytes_client, conn.bytes_server, conn.half_close_bytes) == (100, 300, 0)
    assert conn.segment_count == len(conn.segments) == 9


def test_four_way_close_by_the_server_names_the_server(tmp_path: Path) -> None:
    conn = only(tmp_path, Conversation().handshake().four_way_close("server"))
    assert (conn.close_kind, conn.close_initiator, conn.half_close_bytes) == ("four-way", "server", 0)


def test_three_way_close_when_the_passive_fin_carries_the_first_ack(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.server("F.")
    c.client("F.")
    c.server(".")
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("three-way", "server")


def test_simultaneous_close_when_each_fin_leaves_before_the_other_arrives(tmp_path: Path) -> None:
    c = Conversation().handshake()
    before_client_fin = c.next_seq["client"]
    c.client("F.")
    c.server("F.", ack=before_client_fin)  # sent before the client's FIN arrived
    c.client(".")
    c.server(".")
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("simultaneous", "both")


def test_reset_after_data_names_the_side_that_sent_the_rst(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 50)
    c.server(".")
    c.server("R.")
    conn = only(tmp_path, c)
    assert (conn.handshake, conn.close_kind, conn.close_initiator) == ("complete", "reset", "server")
    assert conn.bytes_client == 50


def test_refused_connection_is_a_syn_answered_by_rst(tmp_path: Path) -> None:
    c = Conversation(isn_client=7)
    c.client("S")
    c.server("R.", seq=0, ack=8)
    conn = only(tmp_path, c)
    assert (conn.handshake, conn.close_kind, conn.close_initiator) == ("refused", "reset", "server")
    assert conn.isn == {"client": 7, "server": None}


def test_half_close_counts_what_the_passive_side_sends_after_the_initiators_fin(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("P.", 20)
    c.server("P.", 5)  # before the client's FIN: not half-close data
    c.client("F.")
    c.server("P.", 700)
    c.server("P.", 300)
    c.server("P.", 300, seq=c.next_seq["server"] - 300)  # retransmitted: counted once
    c.client(".")
    c.server("F.")
    c.client(".")
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("four-way", "client")
    assert conn.half_close_bytes == 1000
    assert conn.bytes_server == 1005
    assert conn.retransmissions == {"client": 0, "server": 1}


def test_only_one_fin_seen_is_open_but_names_the_initiator(tmp_path: Path) -> None:
    c = Conversation().handshake()
    c.client("F.")
    c.server(".")
    conn = only(tmp_path, c)
    assert (conn.close_kind, conn.close_initiator) == ("open", "client")


def test_capture_that_starts_mid_connection_has_no_handshake_and_the_higher_port_is_the_client(
        tmp_path: Path) -> None:
    c = Conversation(client_addr=("10.0.0.1", 80), server_addr=("10.0.0.2", 51000)).handshake()
    c.packets.clear()  # the capture missed the handshake
    c.client("P.", 10)  # sent by port 80: the server side, really
    c.server(".")
    conn = only(tmp_path, c)
    assert conn.handshake == "none" and conn.isn == {"client": None, "server": None}
    assert conn.client == Endpoint("10.0.0.2", 51000)
    assert conn.bytes_server == 10


def test_mid_connection_with_equal_ports_takes_the_first_sender_as_client(tmp_path: Path) -> None:
    c = Conversation(client_addr=("10.0.0.9", 5000), server_addr=("10.0.0.2", 5000))
    c.client(".", 1)
    c.server(".")
    assert only(tmp_path, c).client == Endpoint("10.0.0.9", 5000)


def test_ipv4_options_do_not_change_the_classification(tmp_path: Path) -> None:
    c = Conversation(ip_options=b"\x01\x01\x01\x01" * 2).handshake()
    c.client("P.", 64)
    conn = only(tmp_path, c.four_way_close())
    assert (conn.handshake, conn.close_kind, conn.bytes_client) == ("complete", "four-way", 64)


def test_ipv6_connection_with_extension_headers(tmp_path: Path) -> None:
    c = Conversation(client_addr=("2001:db8::1", 40000), server_addr=("2001:db8::2", 443),
                     ipv6_extensions=[(0, b"\x01\x04\0\0\0\0")]).handshake()
    c.server("P.", 12)
    conn = only(tmp_path, c.four_way_close())
    assert str(conn.client) == "[2001:db8::1]:40000" and str(conn.server) == "[2001:db8::2]:443"
    assert (conn.handshake, conn.close_kind, conn.bytes_server) == ("complete", "four-way", 12)


def test_retransmitted_data_is_counted_once_and_as_a_retransmission(tmp_path: Path) -> None:
    c = Conversation().handshake()
    first = c.next_seq["client"]
    c.client("P.", 100)
    c.client("P.", 100)
    c.client("P.", 100, seq=first)  # lost at the receiver, sent again
    c.client("P.", 150, seq=first + 100)  # repacketized: the last 50 bytes are new
    c.server(".")
    conn = only(tmp_path, c.four_way_close())
    assert conn.bytes_client == 250
    assert conn.retransmissions == {"client": 2, "server": 0}


def test_sequence_numbers_that_wrap_past_2_to_the_32_classify_normally(tmp_path: Path) -> None:
    c = Conversation(isn_client=2**32 - 60, isn_server=2**32 - 1).handshake()
    c.client("P.", 100)  # crosses 2^32
    c.server("P.", 200)
    c.client("P.", 100, seq=2**32 - 59)  # a retransmission across the wrap
    c.server("F.")
    c.client("F.")
    c.server(".")
    conn = only(tmp_path, c)
    assert conn.handshake == "complete"
    assert (conn.close_kind, conn.close_initiator) == ("three-way", "server")
    assert (conn.bytes_client, conn.bytes_server) == (100, 200)
    assert conn.retransmissions["client"] == 1
    assert [conn.relative_seq(s) for s in conn.segments[:4]] == [0, 0, 1, 1]


def test_port_reuse_after_a_finished_connection_gives_two_connections(tmp_path: Path) -> None:
    first = Conversation(isn_client=100).handshake().four_way_close()
    second = Conversation(isn_client=100, start=first.time + 1).handshake()  # same 4-tuple, even same ISN
    second.server("R.")
    conns = classify(tmp_path, first, second)
    assert [(c.handshake, c.close_kind, c.segment_count) for c in conns] == [
        ("complete", "four-way", 7), ("complete", "reset", 4)]
    assert conns[0].end < conns[1].start


def test_a_new_isn_on_a_4_tuple_still_open_starts_a_new_connection(tmp_path: Path) -> None:
    first = Conversation(isn_client=100).handshake()
    second = Conversation(isn_client=90000, start=first.time + 1).handshake()
    conns = classify(tmp_path, first, second)
    assert [c.isn["client"] for c in conns] == [100, 90000]


def test_interleaved_connections_are_reported_in_order_of_their_first_segment(tmp_path: Path) -> None:
    convs = [Conversation(client_addr=("10.0.0.1", 40000 + i), start=1000.0 + i * 0.0003).handshake()
             for i in range(5)]
    for conv in convs:
        conv.four_way_close()
    conns = classify(tmp_path, *reversed(convs))
    assert [c.client.port for c in conns] == [40000 + i for i in range(5)]
    assert all(c.close_kind == "four-way" for c in conns)


def test_pcapng_and_linux_cooked_captures_classify_the_same(tmp_path: Path) -> None:
    c = Conversation().handshake().four_way_close()
    expected = only(tmp_path, c).to_json()
    for name, path in [("ng", write_pcapng(tmp_path / "c.pcapng", c.packets)),
                       ("sll", write_pcap(tmp_path / "sll.pcap", c.packets, linktype=113)),
                       ("sll2", write_pcap(tmp_path / "sll2.pcap", c.packets, linktype=276))]:
        (conn,) = read_trace(path).connections
        assert conn.to_json() == expected, name


def test_to_json_has_exactly_the_documented_shape(tmp_path: Path) -> None:
    c = Conversation(isn_client=1, isn_server=2).handshake()
    c.client("P.", 3)
    conn = only(tmp_path, c.four_way_close())
    got = conn.to_json()
    assert got == {
        "client": "10.0.0.1:40000", "server": "10.0.0.2:80", "handshake": "complete",
        "isn": {"client": 1, "server": 2}, "close": {"kind": "four-way", "initiator": "client"},
        "bytes": {"client": 3, "server": 0}, "half_close_bytes": 0, "segments": 8,
        "retransmissions": {"client": 0, "server": 0}, "start": got["start"], "end": got["end"],
    }
    assert got["start"] == pytest.approx(c.start) and got["end"] > got["start"]
    json.dumps(got)  # plain JSON types only


def test_trace_to_json_and_table_list_every_connection_and_warning(tmp_path: Path) -> None:
    c = Conversation().handshake().four_way_close()
    path = write_pcap(tmp_path / "c.pcap", c.packets)
    path.write_bytes(path.read_bytes() + b"\0\0\0")
    trace = read_trace(path)
    doc = trace.to_json()
    assert set(doc) == {"connections", "warnings"} and len(doc["connections"]) == 1
    assert doc["warnings"] and "truncated" in doc["warnings"][0]
    table = format_table(trace)
    header, rule, row, *rest = table.splitlines()
    assert header.split()[:5] == ["client", "server", "handshake", "close", "initiator"]
    assert row.split() == ["10.0.0.1:40000", "10.0.0.2:80", "complete", "four-way", "client", "0", "0", "0", "7"]
    assert rest[0].startswith("1 TCP connection,") and rest[1].startswith("warning: truncated")


def test_segments_carry_addresses_macs_and_relative_numbers_for_the_ladder(tmp_path: Path) -> None:
    c = Conversation(isn_client=10_000, isn_server=77).handshake()
    c.client("P.", 5)
    conn = only(tmp_path, c)
    syn, syn_ack, ack, data = conn.segments
    assert (syn.flag_text, syn_ack.flag_text, ack.flag_text, data.flag_text) == ("S", "S.", ".", "P.")
    assert syn.syn and not syn.has_ack and syn_ack.syn and syn_ack.has_ack and not data.fin
    assert syn.src_mac == "02:00:00:00:00:01" and syn.dst_mac == "02:00:00:00:00:02"
    assert conn.side(syn_ack) == "server"
    assert (conn.relative_seq(data), conn.relative_ack(data)) == (1, 1)
    assert conn.relative_ack(syn) is None
    assert conn.ladder() == ["> S 0:0(0)", "< S. 0:0(0) ack 1", "> . 1:1(0) ack 1", "> P. 1:6(5) ack 1"]


def test_flag_text_follows_tcpdump() -> None:
    assert [flag_text(f) for f in (2, 18, 16, 17, 20, 24, 25, 0)] == ["S", "S.", ".", "F.", "R.", "P.", "FP.", "none"]


def test_hand_made_segments_classify_like_a_capture() -> None:
    a, b = Endpoint("192.168.1.2", 50000), Endpoint("192.168.1.1", 22)

    def seg(i: int, src: Endpoint, flags: int, seq: int, ack: int, n: int = 0) -> Segment:
        return Segment(i, float(i), src, b if src == a else a, seq, ack, flags, n)

    segments = [seg(1, a, 2, 0, 0), seg(2, b, 18, 500, 1), seg(3, a, 16, 1, 501), seg(4, a, 17, 1, 501),
                seg(5, b, 17, 501, 2), seg(6, a, 16, 2, 502)]
    (conn,) = classify_segments(segments)
    assert (conn.client, conn.handshake, conn.close_kind, conn.close_initiator) == (a, "complete", "three-way",
                                                                                     "client")
    assert conn.segments == segments


def test_non_tcp_traffic_makes_no_connections(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "e.pcap", [Packet(1.0, b"\x45" + bytes(19))])
    assert read_trace(path).connections == []
    assert classify_segments([]) == []


def test_json_text_is_the_same_document_one_connection_per_line(tmp_path: Path) -> None:
    convs = [Conversation(client_addr=("10.0.0.1", 40000 + i)).handshake().four_way_close() for i in range(3)]
    path = write_pcap(tmp_path / "c.pcap", interleave(*convs))
    path.write_bytes(path.read_bytes() + b"\0")
    trace = read_trace(path)
    text = trace.to_json_text()
    assert json.loads(text) == trace.to_json()
    lines = text.splitlines()
    assert len(lines) == 8 and lines[2].startswith('  {"client": "10.0.0.1:40000"')  # { connections: [ 3 ], warnings }
    empty = write_pcap(tmp_path / "e.pcap", [])
    assert json.loads(read_trace(empty).to_json_text()) == {"connections": [], "warnings": []}
