"""The SVG ladder: standalone XML, one arrow element per (folded) arrow, marks and states in place."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from pcapbuild import Conversation, write_pcap

from netbed.report.ladder import Ladder, build_ladder
from netbed.report.svg import COLORS, X_LEFT, X_RIGHT, render_svg
from netbed.trace import read_trace

NS = {"svg": "http://www.w3.org/2000/svg"}
MSS = 1448


def eventful_ladder(tmp_path: Path, client_host: str = "h1") -> Ladder:
    """Handshake, a long transfer with one retransmission, a close, an RST, and states on both sides."""
    c = Conversation(client_addr=("10.0.1.1", 45000), server_addr=("10.0.2.2", 9000))
    c.handshake()
    for _ in range(20):
        c.client(".", MSS)
        c.server(".")
    c.client(".", MSS, seq=c.isn_client + 1)  # the first data segment again
    c.client("F.")
    c.server(".")
    c.server("R.")
    conn = read_trace(write_pcap(tmp_path / "c.pcap", c.packets)).connections[0]
    t = [s.time for s in conn.segments]
    states = {"client": [{"time": t[0] - 0.0001, "state": "SYN_SENT"}, {"time": t[1], "state": "ESTABLISHED"}],
              "server": [{"time": t[2] + 0.0001, "state": "ESTABLISHED"}]}
    return build_ladder(conn, states, client_host=client_host, server_host="h4",
                        captured_at="client side (h1-eth0)")


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode())


def groups(root: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{{{NS['svg']}}}g") if kind in g.get("class", "").split()]


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{{{NS['svg']}}}text")]


def test_svg_is_standalone_xml_with_one_arrow_element_per_arrow(tmp_path):
    ladder = eventful_ladder(tmp_path)
    root = parse(render_svg(ladder))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    arrows = groups(root, "arrow")
    assert len(arrows) == len(ladder.arrows)
    assert sum("folded" in g.get("class") for g in arrows) == 2
    labels = texts(root)
    assert all(a.label in labels for a in ladder.arrows)


def test_svg_names_the_capture_point_and_labels_both_lifelines(tmp_path):
    labels = texts(parse(render_svg(eventful_ladder(tmp_path))))
    assert "captured at: client side (h1-eth0)" in labels
    assert {"client h1", "10.0.1.1:45000", "server h4", "10.0.2.2:9000"} <= set(labels)


def test_resets_are_red_and_retransmissions_dashed(tmp_path):
    root = parse(render_svg(eventful_ladder(tmp_path)))
    (reset,) = groups(root, "reset")
    assert reset.find("svg:line", NS).get("stroke") == COLORS["reset"]
    (again,) = groups(root, "retransmission")
    assert again.find("svg:line", NS).get("stroke-dasharray")
    plain = [g for g in groups(root, "arrow") if g not in (reset, again)]
    assert not any(g.find("svg:line", NS).get("stroke-dasharray") for g in plain)


def test_state_boxes_sit_outside_their_lifeline_between_the_arrows_around_them(tmp_path):
    root = parse(render_svg(eventful_ladder(tmp_path)))
    arrow_y = [float(g.find("svg:line", NS).get("y1")) for g in groups(root, "arrow")]
    boxes = {}
    for g in groups(root, "state"):
        rect = g.find("svg:rect", NS)
        x, w = float(rect.get("x")), float(rect.get("width"))
        side = "client" if "client" in g.get("class").split() else "server"
        assert x + w <= X_LEFT if side == "client" else x >= X_RIGHT
        boxes[(side, g.find("svg:text", NS).text)] = float(rect.get("y"))
    assert set(boxes) == {("client", "SYN_SENT"), ("client", "ESTABLISHED"), ("server", "ESTABLISHED")}
    assert boxes["client", "SYN_SENT"] < arrow_y[0]  # before the SYN
    assert arrow_y[1] < boxes["client", "ESTABLISHED"] < arrow_y[2]  # between the SYN-ACK and the ACK
    assert arrow_y[2] < boxes["server", "ESTABLISHED"] < arrow_y[3]  # after the ACK reached the server


def test_text_from_users_is_escaped(tmp_path):
    root = parse(render_svg(eventful_ladder(tmp_path, client_host='h1 <&> "quoted"')))
    assert 'client h1 <&> "quoted"' in texts(root)


def test_a_run_without_a_connection_still_gives_a_valid_picture():
    root = parse(render_svg(None, message="(no TCP connection in the client-side capture)"))
    assert texts(root) == ["(no TCP connection in the client-side capture)"]
