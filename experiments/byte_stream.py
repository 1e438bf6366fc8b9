"""流式协议 — TCP is a byte stream: three send() calls come back in one recv(); UDP keeps each datagram."""
from __future__ import annotations

import time

from netbed.errors import NetbedError
from netbed.expect import Expect
from netbed.experiment import DEFAULT_PORT, Evidence, Lab
from netbed.pace import budget_text, patience

NAME = "byte-stream"
ORDER = 135
CLAIM = "流式协议,可靠协议; TCP/UDP都是基于端口工作的协议"
NETBED = ("TCP keeps no message boundaries: the client makes three send() calls (100, 200 and 300 bytes), the "
          "server's kernel queues them as one run of 600 bytes (ss Recv-Q), and one recv() returns all 600. UDP "
          "keeps them: three sendto() calls are three datagrams on the wire, and three recvfrom() calls return "
          "100, 200 and 300 bytes, one datagram each.")
FORCING = ("The receivers read only once everything has arrived: the TCP server when its kernel queues 600 bytes "
           "(ss Recv-Q), the UDP server when its kernel counted three datagrams delivered (/proc/net/snmp "
           "Ip InDelivers: nothing else reaches that host meanwhile).")
GLOSS = ("A byte stream has no message boundaries: three TCP sends come back in one recv(), while three UDP "
         "datagrams come back as three. Forced: the receivers read only once everything has arrived.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
SENDS = (100, 200, 300)
UDP_PORT = DEFAULT_PORT + 1
BIG_READ = 65536
POLL = 0.005


def _until(what: str, ready, timeout: float = 10.0) -> str:
    """Poll the kernel until `ready()` returns a true value (the evidence text), or give up."""
    deadline = time.monotonic() + patience(timeout)
    while time.monotonic() < deadline:
        seen = ready()
        if seen:
            return seen
        time.sleep(POLL)
    raise NetbedError(f"{what} did not happen in {budget_text(timeout)}")


def ip_delivered(lab: Lab, host: str) -> int:
    """The kernel's count of IP packets `host` handed up to its transport protocols (Ip InDelivers).

    (Udp InDatagrams would name UDP alone, but Linux counts it when the program reads, not on arrival.)
    """
    lines = [line.split() for line in lab.run(host, ["cat", "/proc/net/snmp"]).stdout.splitlines()
             if line.startswith("Ip:")]
    header, values = lines[0], lines[1]
    return int(values[header.index("InDelivers")])


def run(lab: Lab) -> None:
    tcp_part(lab)
    udp_part(lab)


def tcp_part(lab: Lab) -> None:
    """Three sends; one read, once the server's kernel queues all of them."""
    sends = [f"send:{n}" for n in SENDS]
    go = lab.signal_path("read")
    server = lab.server([f"wait-file:{go}", f"read:{BIG_READ}", "recv-eof", "close"])
    client = lab.client(server, [*sends, f"wait-file:{go}", "close"])

    def queued() -> str:
        line = lab.run(lab.server_host, ["ss", "-tnH", "state", "established", f"sport = :{DEFAULT_PORT}"]).stdout
        words = line.split()
        return line.strip() if words and words[0] == str(sum(SENDS)) else ""

    lab.facts["tcp_queue_before_read"] = _until("600 bytes queued at the TCP server", queued)
    lab.signal("read")
    lab.wait(client, server)


def udp_part(lab: Lab) -> None:
    """Three datagrams; three reads, once the server's kernel has all of them."""
    sends = [f"send:{n}" for n in SENDS]
    before = ip_delivered(lab, lab.server_host)
    go_udp = lab.signal_path("read-udp")
    udp_server = lab.server([f"wait-file:{go_udp}", *[f"read:{BIG_READ}"] * len(SENDS)], port=UDP_PORT,
                            name="udp-server", udp=True)
    udp_client = lab.client(udp_server, sends, name="udp-client", udp=True)
    _until("three datagrams delivered", lambda: ip_delivered(lab, lab.server_host) - before >= len(SENDS))
    lab.facts["udp_datagrams_delivered_before_read"] = ip_delivered(lab, lab.server_host) - before
    lab.signal("read-udp")
    lab.wait(udp_client, udp_server)


def check(ev: Evidence, expect: Expect) -> None:
    total = sum(SENDS)
    client, server = ev.program("client"), ev.program("server")
    sent = [e["bytes"] for e in client["events"] if e["event"] == "send"]
    reads = [e["bytes"] for e in server["events"] if e["event"] == "read"]
    queue = ev.facts.get("tcp_queue_before_read", "").split()
    expect.equal("TCP: the client made three send() calls", list(SENDS), sent)
    expect.equal("TCP: the server's kernel queued them as one run of bytes (ss Recv-Q)", str(total),
                 queue[0] if queue else None)
    expect.equal("TCP: one recv() returns all three sends: no message boundaries", [total], reads)
    expect.equal("TCP: the bytes arrive in order, intact (SHA-256)", client["sent_sha256"], server["received_sha256"])
    conn = ev.found(expect, "server")
    if conn is not None:
        data = [s.payload_len for s in conn.segments if conn.side(s) == "client" and s.payload_len]
        expect.equal("TCP: on the wire, segments of a stream: their payloads add up to the 600 bytes", total, sum(data))
        expect.that("TCP: the one read spans what the wire carried", len(reads) == 1,
                    f"segment payloads {data} → {len(reads)} read(s) of {reads}")
    udp_client, udp_server = ev.program("udp-client"), ev.program("udp-server")
    expect.equal("UDP: three datagrams were delivered before the first read (Ip InDelivers)", len(SENDS),
                 ev.facts.get("udp_datagrams_delivered_before_read"))
    expect.equal("UDP: three recvfrom() calls return one datagram each, boundaries kept", list(SENDS),
                 [e["bytes"] for e in udp_server["events"] if e["event"] == "read"])
    expect.equal("UDP: the bytes arrive intact (SHA-256)", udp_client["sent_sha256"], udp_server["received_sha256"])
    port = udp_server["local"][1]
    wire = [d.length for d in ev.trace("server").udp_datagrams() if d.dst.port == port]
    expect.equal("UDP: on the wire, one datagram per sendto(), each its own size", list(SENDS), wire)
