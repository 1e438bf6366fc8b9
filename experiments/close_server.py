"""HTTP/1.0却由服务器执行主动关闭 — a real web server closes first; it ends in TIME_WAIT."""
from __future__ import annotations

import sys

from netbed.expect import Expect, closing_segments, states_of
from netbed.experiment import Evidence, Lab
from netbed.programs import HTTPD

NAME = "close-server"
ORDER = 25
CLAIM = "无论是客户还是服务器,任何一端都可以执行主动关闭。通常情况是,客户执行主动关闭,但是某些协议,例如,HTTP/1.0却由服务器执行主动关闭"
GLOSS = ("HTTP/1.0: Python's http.server ends each response by closing the connection, so it closes first "
         "(curl --http1.0 is the client) and the server ends in TIME_WAIT.")
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


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    expect.that("curl fetched the page over HTTP/1.0", f"http 200 {PAGE}" in client["stdout"],
                client["stdout"].strip().splitlines()[-1] if client["stdout"].strip() else client["stderr"])
    conn = ev.found(expect, "client")
    if conn is None:
        return
    expect.equal("close initiator: the server", "server", conn.close_initiator)
    expect.ladder("the server's FIN comes first", conn, closing_segments(conn)[:1], ["server > F."])
    server_states = states_of(ev, "server")
    expect.equal("server states: active close, ends in TIME_WAIT", ["FIN_WAIT_1", "TIME_WAIT"],
                 [s for s in server_states if s in ("FIN_WAIT_1", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK")])
    expect.equal("client states: passive close through CLOSE_WAIT and LAST_ACK", ["CLOSE_WAIT", "LAST_ACK"],
                 [s for s in states_of(ev, "client") if s in ("FIN_WAIT_1", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK")])
    host = ev.facts["server_host"]
    expect.that("ss on the server lists the connection in TIME-WAIT",
                any(line.startswith("TIME-WAIT") and f":{PORT} " in line for line in ev.facts["sockets_after"][host]),
                "; ".join(ev.facts["sockets_after"][host]) or "(no sockets)")
