"""b/s架构本质上也是c/s架构 — a browser-like client and a web server: one connection, several requests."""
from __future__ import annotations

import sys

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.programs import HTTPD

NAME = "browser-server"
ORDER = 5
CLAIM = "b/s架构(browser/server); b:浏览器; s:服务器; b/s架构本质上也是c/s架构"
GLOSS = ("B/S is C/S: curl, like a browser, fetches three pages over one HTTP/1.1 keep-alive connection from a "
         "web server: one handshake, three requests, one close.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
PORT = 5000  # the lecture: flask默认端口:5000
PAGES = {"index.html": 1200, "style.css": 300, "app.js": 2500}
WRITE_OUT = "netbed-local %{local_ip} %{local_port} %{remote_ip} %{remote_port}\nhttp %{http_code} %{size_download} %{num_connects}\n"


def run(lab: Lab) -> None:
    www = lab.out / "www"
    www.mkdir(exist_ok=True)
    for name, size in PAGES.items():
        (www / name).write_text("x" * size)
    ip = lab.ip(lab.server_host)
    lab.start("server", [sys.executable, HTTPD, str(PORT), "--bind", ip, "--directory", str(www),
                         "--protocol", "HTTP/1.1"], host=lab.server_host, port=PORT, daemon=True)
    urls = [f"http://{ip}:{PORT}/{name}" for name in PAGES]
    client = lab.start("client", ["curl", "-s", "--http1.1", "-w", WRITE_OUT, *[a for u in urls for a in ("-o", "/dev/null", u)]],
                       host=lab.client_host)
    lab.wait(client)


def http_requests(ev: Evidence, conn) -> list[str]:
    """The path of each "GET " request line in the bytes the browser sent (server-side capture, each byte once)."""
    if conn is None:
        return []
    segments = {s.seq: s for s in conn.segments if conn.side(s) == "client" and s.payload_len > 0}
    payloads = ev.payloads("server", list(segments.values()))
    stream = b"".join(payloads.get(s.frame, b"") for s in sorted(segments.values(), key=conn.relative_seq))
    return [line.split(b" ")[1].decode(errors="replace") for line in stream.split(b"\r\n")
            if line.startswith(b"GET ") and len(line.split(b" ")) >= 3]


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    answers = [line.split()[1:] for line in client["stdout"].splitlines() if line.startswith("http ")]
    expect.equal("three pages, each 200 OK with its size; only the first opened a connection",
                 [["200", str(size), "1" if i == 0 else "0"] for i, size in enumerate(PAGES.values())], answers)
    conns = [c for c in ev.trace("client").connections if c.server.port == PORT]
    if not expect.equal("one TCP connection carries them all", 1, len(conns)):
        return
    conn = conns[0]
    expect.equal("one handshake", "complete", conn.handshake)
    expect.equal("one SYN from the browser", 1, sum(1 for s in conn.segments if s.syn and not s.has_ack))
    sent = [s for s in conn.segments if conn.side(s) == "client" and s.payload_len > 0]
    requests = http_requests(ev, ev.connection("server"))
    expect.equal("three HTTP requests from the browser on it (\"GET \" lines in the server-side capture)",
                 [f"/{name}" for name in PAGES], requests)
    expect.that("the server sent the pages (headers + bodies)", conn.bytes_server > sum(PAGES.values()),
                f"{conn.bytes_server} bytes from the server for {sum(PAGES.values())} bytes of pages; "
                f"{conn.bytes_client} bytes from the browser in {len(sent)} segments")
    expect.that("one close, by the browser when it is done", conn.close_initiator == "client"
                and conn.close_kind in ("four-way", "three-way"), f"{conn.close_kind}, initiator {conn.close_initiator}")
