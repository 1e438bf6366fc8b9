"""The ladder model and its text form: arrows in order, relative numbers, folding, marks, states."""
from __future__ import annotations

from pathlib import Path

from pcapbuild import Conversation, write_pcap

from netbed.report.ladder import FOLD_AFTER, TEXT_WIDTH, Arrow, Column, Ladder, StateMark, build_ladder, render_text
from netbed.trace import Connection, Endpoint, read_trace

CLIENT, SERVER = ("10.0.1.1", 45000), ("10.0.2.2", 9000)
MSS = 1448


def conversation() -> Conversation:
    return Conversation(client_addr=CLIENT, server_addr=SERVER, isn_client=3_000_000_000, isn_server=77)


def connection(conv: Conversation, tmp_path: Path) -> Connection:
    """The conversation as netbed reads it back from a pcap file."""
    return read_trace(write_pcap(tmp_path / "c.pcap", conv.packets)).connections[0]


def four_way(conv: Conversation) -> Conversation:
    conv.client("F.")
    conv.server(".")
    conv.server("F.")
    conv.client(".")
    return conv


def arrow_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if ">|" in line or "|<" in line]


def test_arrows_follow_capture_order_and_point_from_sender_to_receiver(tmp_path):
    c = conversation().handshake()
    c.client("P.", 100)
    c.server(".")
    ladder = build_ladder(connection(four_way(c), tmp_path))
    assert [(a.sender, a.flags) for a in ladder.arrows] == [
        ("client", "S"), ("server", "S."), ("client", "."), ("client", "P."), ("server", "."),
        ("client", "F."), ("server", "."), ("server", "F."), ("client", ".")]
    lines = arrow_lines(render_text(ladder))
    assert len(lines) == 9
    assert [">|" in line for line in lines] == [a.sender == "client" for a in ladder.arrows]
    assert " S seq=0 len=0 " in lines[0] and lines[0].rstrip().endswith("->|")
    assert "|<-" in lines[1]


def test_numbers_are_relative_to_each_sides_initial_sequence_number(tmp_path):
    c = conversation().handshake()
    c.client("P.", 100)
    c.server(".")
    labels = [a.label for a in build_ladder(connection(c, tmp_path)).arrows]
    assert labels == ["S seq=0 len=0", "S. seq=0 ack=1 len=0", ". seq=1 ack=1 len=0",
                      "P. seq=1 ack=1 len=100", ". seq=1 ack=101 len=0"]


def test_long_data_phase_folds_into_one_arrow_per_direction_with_segment_and_byte_counts(tmp_path):
    c = conversation().handshake()
    c.client("F.")
    c.server(".")
    for i in range(150):  # a 217 KB half-close: the server keeps sending after the client's FIN
        c.server(".", MSS)
        if i % 2:
            c.client(".")
    c.server("F.")
    c.client(".")
    ladder = build_ladder(connection(c, tmp_path))
    folded = [a for a in ladder.arrows if a.folded]
    assert [(a.sender, a.segments, a.length) for a in folded] == [("server", 150, 150 * MSS), ("client", 75, 0)]
    assert folded[0].label == f"150 segments, {150 * MSS} bytes, seq=1..{150 * MSS + 1}"
    text = render_text(ladder)
    assert sum("150 segments" in line for line in text.splitlines()) == 1
    assert len(text.splitlines()) < 25  # fits a screen
    assert [a.flags for a in ladder.arrows if not a.folded] == ["S", "S.", ".", "F.", ".", "F.", "."]


def test_a_short_data_phase_keeps_one_arrow_per_segment(tmp_path):
    c = conversation().handshake()
    for _ in range(FOLD_AFTER // 2):
        c.client("P.", 10)
        c.server(".")
    ladder = build_ladder(connection(c, tmp_path))
    assert not any(a.folded for a in ladder.arrows)
    assert len(ladder.arrows) == 3 + FOLD_AFTER


def test_handshake_and_close_acknowledgements_are_never_folded(tmp_path):
    c = conversation().handshake()
    for _ in range(10):
        c.client(".", MSS)
    c.client("F.")
    c.server(".")  # acknowledges the FIN: the close, not data
    for _ in range(10):
        c.server(".", MSS)
    ladder = build_ladder(connection(c, tmp_path))
    plain = [(a.sender, a.label) for a in ladder.arrows if not a.folded]
    assert ("client", ". seq=1 ack=1 len=0") in plain  # the handshake's third segment
    assert ("server", f". seq=1 ack={10 * MSS + 2} len=0") in plain
    assert [a.segments for a in ladder.arrows if a.folded] == [10, 10]


def test_retransmission_is_marked_kept_visible_and_drawn_dashed(tmp_path):
    c = conversation().handshake()
    for _ in range(12):
        c.client(".", MSS)
    c.client(".", MSS, seq=c.isn_client + 1 + 3 * MSS)  # the fourth segment again
    for _ in range(12):
        c.client(".", MSS)
    ladder = build_ladder(connection(c, tmp_path))
    again = [a for a in ladder.arrows if a.retransmission]
    assert len(again) == 1 and again[0].seq == 1 + 3 * MSS and not again[0].folded
    assert [a.segments for a in ladder.arrows if a.folded] == [12, 12]
    line = next(line for line in arrow_lines(render_text(ladder)) if "[retransmission]" in line)
    assert "- - " in line


def test_reset_is_marked(tmp_path):
    c = conversation().handshake()
    c.client("R.")
    ladder = build_ladder(connection(c, tmp_path))
    last = ladder.arrows[-1]
    assert last.reset and last.label == "R. seq=1 ack=1 len=0 [RST]"
    assert "==" in arrow_lines(render_text(ladder))[-1]


def test_states_sit_beside_their_own_column_in_time_order(tmp_path):
    c = conversation().handshake()
    t0 = c.start
    states = {"client": [{"time": t0 - 0.0001, "state": "SYN_SENT"}, {"time": t0 + 0.0015, "state": "ESTABLISHED"}],
              "server": [{"time": t0 + 0.0025, "state": "SYN_RECEIVED"}]}
    ladder = build_ladder(connection(c, tmp_path), states)
    order = [r.state if isinstance(r, StateMark) else r.flags for r in ladder.rows]
    assert order == ["SYN_SENT", "S", "S.", "ESTABLISHED", ".", "SYN_RECEIVED"]
    lines = render_text(ladder).splitlines()
    syn_sent = next(line for line in lines if "SYN_SENT" in line)
    syn_received = next(line for line in lines if "SYN_RECEIVED" in line)
    left_lifeline = syn_sent.index("|")
    assert syn_sent.index("SYN_SENT") < left_lifeline
    assert syn_received.index("SYN_RECEIVED") > syn_received.rindex("|")


def test_a_state_stamped_when_a_segment_arrives_follows_that_segment(tmp_path):
    c = conversation().handshake()
    four_way(c)
    conn = connection(c, tmp_path)
    fin = conn.segments[-2].time  # the server's FIN reaches the client, which enters TIME_WAIT
    ladder = build_ladder(conn, {"client": [{"time": fin, "state": "TIME_WAIT", "via": "ss"}]})
    order = [r.state if isinstance(r, StateMark) else r.flags for r in ladder.rows]
    assert order[-3:] == ["F.", "TIME_WAIT", "."]
    assert "TIME_WAIT*" in render_text(ladder)
    assert "not traced" in render_text(ladder)


def test_a_state_change_breaks_a_run_so_folding_never_moves_it(tmp_path):
    c = conversation().handshake()
    for _ in range(20):
        c.client(".", MSS)
    middle = c.packets[3 + 10].time - c.step / 2
    ladder = build_ladder(connection(c, tmp_path), {"server": [{"time": middle, "state": "CLOSE_WAIT"}]})
    kinds = [f"{r.segments}" if isinstance(r, Arrow) and r.folded else type(r).__name__ for r in ladder.rows[3:]]
    assert kinds == ["10", "StateMark", "10"]


def test_header_names_the_capture_point_and_both_endpoints(tmp_path):
    c = conversation().handshake()
    ladder = build_ladder(connection(c, tmp_path), client_host="h1", server_host="h4",
                          captured_at="client side (h1-eth0)", also_captured=["router r1 (r1-eth0)"])
    lines = render_text(ladder).splitlines()
    assert lines[0] == "captured at: client side (h1-eth0)"
    assert "client h1" in lines[1] and "server h4" in lines[1]
    assert "10.0.1.1:45000" in lines[2] and "10.0.2.2:9000" in lines[2]
    assert any("router r1 (r1-eth0)" in line for line in lines)


def test_every_line_fits_the_width_even_with_ipv6_and_huge_numbers():
    big = 4_294_967_295
    arrows = [Arrow(1.0, "server", "FPRU.", big, big, 65535, (1,), retransmission=True, reset=True),
              Arrow(2.0, "client", "", 1, big, big, tuple(range(99999)), segments=99999, seq_end=big, ack_last=big)]
    ladder = Ladder(Column("client", "a-very-long-host-name-indeed", Endpoint("2001:db8:ffff:ffff::1", 65535)),
                    Column("server", "another-very-long-host-name", Endpoint("2001:db8:eeee:eeee::2", 65535)),
                    "router r1-with-a-long-name (r1-eth0)", [StateMark(0.5, "server", "SYN_RECEIVED", "ss"), *arrows],
                    summary=["also captured at: " + ", ".join(f"router r{i} (r{i}-eth0)" for i in range(30))])
    text = render_text(ladder)
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH
    assert "[RST] [retx]" in text
    assert "time" in text.splitlines()[1]
