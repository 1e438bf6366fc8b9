"""HTTP/1.0却由服务器执行主动关闭 — a real web server closes first; it ends in TIME_WAIT."""
from __future__ import annotations

import sys

from netbed.expect import Expect, closing_segments, describe, states_of
from netbed.experiment import Evidence, Lab
from netbed.programs import HTTPD

NAME = "close-server"
ORDER = 25
CLAIM = "无论是客户还是服务器,任何一端都可以执行主动关闭。通常情况是,客户执行主动关闭,但是某些协议,例如,HTTP/1.0却由服务器执行主动关闭"
FORCING = ("the server leaves Content-Length out of its response, so the body ends only when the server closes "
           "the connection: the HTTP/1.0 server closes first whatever curl's timing.")
GLOSS = ("HTTP/1.0: Python's http.server ends the response by closing the connection, so it closes first "
         "(curl --http1.0 is the client): its FIN, curl's ACK and FIN, its last ACK, and the server ends in "
         "TIME_WAIT. Forced: Content-Length is left out, so the server's close is what ends the body.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
PORT = 8000  # the lecture: django默认端口:8000
PAGE = 5000
WRITE_OUT = "netbed-local %{local_ip} %{local_port} %{remote_ip} %{remote_port}\nhttp %{http_code} %{size_download}\n"


def run(lab: Lab) -> None:
    www = lab.out / "www"
    www.mkdir(exist_ok=True)
    (www / "page.html").write_text("<p>" + "x" * (PAGE - 8) + "</p>\n")
    server_ip = lab.ip(lab.server_host)
    # HTTP/1.0 with the body delimited by the server's close (no Content-Length): the server must
    # close first, on every run, whatever the client's timing
    lab.start("server", [sys.executable, HTTPD, str(PORT), "--bind", server_ip, "--directory", str(www),
                         "--protocol", "HTTP/1.0", "--close-delimited"],
              host=lab.server_host, port=PORT, daemon=True)
    client = lab.start("client", ["curl", "--http1.0", "-s", "-o", "/dev/null", "-w", WRITE_OUT,
                                  f"http://{server_ip}:{PORT}/page.html"], host=lab.client_host)
    lab.wait(client)


def covers(segment, fin) -> bool:
    """Does `segment` acknowledge `fin`, its payload and the FIN itself (seq + payload + 1)?"""
    return segment.has_ack and (segment.ack - (fin.seq + fin.payload_len + 1)) % 2**32 < 2**31


def close_problem(conn, initiator: str) -> str | None:
    """What keeps the close from being the whole orderly close `initiator` starts (None: nothing).

    The initiator's FIN first; the peer acknowledges it; the peer's FIN (alone or on that ACK);
    the initiator acknowledges it; no RST anywhere. The FIN may carry the last data.
    """
    closing = closing_segments(conn)
    peer = "client" if initiator == "server" else "server"
    if not closing or conn.side(closing[0]) != initiator or not closing[0].fin:
        return f"the first FIN/RST is not the {initiator}'s FIN"
    if any(s.rst for s in closing):
        return "a RST ends it"
    fin = closing[0]
    acked = next((s for s in closing if conn.side(s) == peer and covers(s, fin)), None)
    peer_fin = next((s for s in closing if conn.side(s) == peer and s.fin), None)
    if acked is None:
        return f"the {peer} never acknowledges the {initiator}'s FIN"
    if peer_fin is None:
        return f"the {peer} sends no FIN"
    if not any(conn.side(s) == initiator and covers(s, peer_fin) for s in closing):
        return f"the {initiator} never acknowledges the {peer}'s FIN"
    return None


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    stdout = client.get("stdout", "")
    expect.that("curl fetched the page over HTTP/1.0", f"http 200 {PAGE}" in stdout,
                stdout.strip().splitlines()[-1] if stdout.strip() else client.get("stderr", "") or "(no output)")
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.equal("close initiator: the server", "server", conn.close_initiator)
    problem = close_problem(conn, "server")
    expect.that("the whole close: server FIN, client ACK, client FIN, server ACK, no RST", problem is None,
                (f"{problem}: " if problem else "") + "; ".join(describe(conn, s) for s in closing_segments(conn)))
    expect.that("close kind: orderly (four-way or three-way)", conn.close_kind in ("four-way", "three-way"),
                conn.close_kind)
    server_states = states_of(ev, "server")
    expect.equal("server states: active close, ends in TIME_WAIT", ["FIN_WAIT_1", "TIME_WAIT"],
                 [s for s in server_states if s in ("FIN_WAIT_1", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK")])
    expect.equal("client states: passive close through CLOSE_WAIT and LAST_ACK", ["CLOSE_WAIT", "LAST_ACK"],
                 [s for s in states_of(ev, "client") if s in ("FIN_WAIT_1", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK")])
    host = ev.facts["server_host"]
    expect.that("ss on the server lists the connection in TIME-WAIT",
                any(line.startswith("TIME-WAIT") and f":{PORT} " in line for line in ev.facts["sockets_after"][host]),
                "; ".join(ev.facts["sockets_after"][host]) or "(no sockets)")
