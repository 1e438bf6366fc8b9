"""0~1024这些都是操作系统默认使用的端口号 — an ordinary program may not bind them; 8000 and up it may."""
from __future__ import annotations

import json
import sys

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.programs import UNPRIVILEGED

NAME = "privileged-ports"
ORDER = 85
CLAIM = "端口号的范围:0~65535; 注意:0~1024这些都是操作系统默认使用的端口号; 建议:使用8000之后的端口"
NETBED = ("An unprivileged process (user nobody: no root, no capabilities, as the kernel reports in "
          "/proc/self/status) cannot bind ports below the kernel's threshold net.ipv4.ip_unprivileged_port_start "
          "(read in the server's host; 1024 by default, so 0-1023 — the lecture's \"0~1024\" includes one port "
          "too many): bind() fails with EACCES. From the threshold on it may, and the same unprivileged process "
          "serves a client on port 8000. root binds port 80 in the same host.")
GLOSS = ("Ports below 1024 are reserved to the system: an unprivileged bind() gets EACCES (the threshold is the "
         "kernel's ip_unprivileged_port_start), while port 8000 works for anybody.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
USER = "nobody"
TRIED = (21, 80, 1023, 1024)  # FTP, HTTP, the last reserved port, the first free one (with the default threshold)
SERVER_PORT = 8000  # the lecture: django默认端口:8000


def unprivileged(lab: Lab, name: str, peer_args: list[str], port: int | None = None, user: str = USER):
    return lab.start(name, [sys.executable, UNPRIVILEGED, user, "--", *peer_args], host=lab.server_host, port=port)


def run(lab: Lab) -> None:
    bind_as(lab, USER)


def bind_as(lab: Lab, user: str) -> None:
    lab.facts["ip_unprivileged_port_start"] = int(lab.read_sysctl(lab.server_host,
                                                                  "net.ipv4.ip_unprivileged_port_start"))
    for port in TRIED:
        lab.wait(unprivileged(lab, f"bind-{port}", ["bind", "0.0.0.0", str(port)], user=user))
    server = unprivileged(lab, "server", ["server", str(SERVER_PORT), "--", "recv-eof", "close"], port=SERVER_PORT,
                          user=user)
    lab.wait(lab.client(None, ["send:100", "close"], to=(lab.ip(lab.server_host), SERVER_PORT)), server)
    lab.try_bind("root-bind-80", lab.server_host, "0.0.0.0", 80)


def reports(program: dict) -> tuple[dict, dict]:
    """The wrapper's identity line and peer.py's report, from the program's output."""
    lines = [json.loads(line) for line in program["stdout"].splitlines() if line.startswith("{")]
    ident = next((x["identity"] for x in lines if "identity" in x), {})
    report = next((x for x in reversed(lines) if "role" in x), {})
    return ident, report


def is_unprivileged(ident: dict) -> bool:
    """Real, effective, saved and filesystem uid all non-zero, and no effective capability."""
    return bool(ident) and "0" not in ident["uid"] and int(ident["cap_eff"], 16) == 0


def check(ev: Evidence, expect: Expect) -> None:
    threshold = ev.facts["ip_unprivileged_port_start"]
    for port in TRIED:
        ident, report = reports(ev.program(f"bind-{port}"))
        expect.that(f"bind to {port} ran unprivileged (no uid 0, no effective capability)", is_unprivileged(ident),
                    json.dumps(ident))
        want = "EACCES" if port < threshold else None
        verdict = "fails with EACCES" if want else "succeeds"
        expect.equal(f"unprivileged bind to port {port} {verdict} (kernel threshold {threshold})", want,
                     report.get("error", "no report"))
    ident, report = reports(ev.program("server"))
    expect.that(f"the server on port {SERVER_PORT} ran unprivileged", is_unprivileged(ident), json.dumps(ident))
    client = ev.program("client")
    expect.equal(f"an unprivileged server on port {SERVER_PORT} serves a client (bytes and SHA-256)",
                 (100, client["sent_sha256"]), (report.get("received"), report.get("received_sha256")))
    conn = ev.found(expect, "server")
    if conn is not None:
        expect.equal(f"the capture shows the connection to port {SERVER_PORT}, handshake complete",
                     (SERVER_PORT, "complete"), (conn.server.port, conn.handshake))
    expect.equal("root may bind port 80 in the same host", None, ev.program("root-bind-80")["error"])
