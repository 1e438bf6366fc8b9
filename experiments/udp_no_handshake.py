"""TCP/UDP都是基于端口工作的协议 — UDP sends datagrams on ports with no handshake, no close, no connection."""
from __future__ import annotations

import time

from netbed.errors import NetbedError
from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "udp-no-handshake"
ORDER = 130
CLAIM = "TCP/UDP都是基于端口工作的协议; 基于TCP协议通信,必须建立双向通道"
NETBED = ("UDP, in contrast, builds no channel: a datagram is sent to a port with no handshake and no close, and "
          "the kernel keeps each UDP socket unconnected (ss: UNCONN).")
GLOSS = ("UDP datagrams are exchanged on ports with no SYN and no FIN on the wire, and both UDP sockets are "
         "UNCONN in the kernel's socket table (ss -uan) while they talk.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
SIZE = 512


def udp_sockets(lab: Lab, host: str) -> list[str]:
    return lab.run(host, ["ss", "-uanH"]).stdout.splitlines()


def run(lab: Lab) -> None:
    go = lab.signal_path("close")
    server = lab.server([f"recv:{SIZE}", f"send:{SIZE}", f"wait-file:{go}"], udp=True)
    client = lab.client(server, [f"send:{SIZE}", f"recv:{SIZE}", f"wait-file:{go}", "close"], udp=True)
    # both sockets stay open until the signal: read the kernel's socket table of each host meanwhile
    deadline = time.monotonic() + 10
    while not udp_sockets(lab, lab.client_host):  # the client's socket exists from its first sendto
        if time.monotonic() > deadline:
            raise NetbedError(f"{lab.client_host}: the client's UDP socket never appeared in ss -uan")
        time.sleep(0.005)
    lab.facts["udp_sockets"] = {side: udp_sockets(lab, host)
                                for side, host in (("client", lab.client_host), ("server", lab.server_host))}
    lab.signal("close")
    lab.wait(client, server)


def ss_state(lines: list[str], port: int) -> list[str]:
    """The states `ss -uanH` gives the sockets whose local port is `port`."""
    return [cols[0] for cols in (line.split() for line in lines)
            if len(cols) >= 5 and cols[3].rpartition(":")[2] == str(port)]


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    expect.equal("the datagram arrives intact", client["sent_sha256"], server["received_sha256"])
    expect.equal("the answer arrives intact", server["sent_sha256"], client["received_sha256"])
    trace = ev.trace("client")
    port = server["local"][1]
    datagrams = [d for d in trace.udp_datagrams() if port in (d.src.port, d.dst.port)]
    expect.equal("two datagrams on the wire, one each way, each carrying the payload",
                 [("client", SIZE), ("server", SIZE)],
                 [("client" if d.dst.port == port else "server", d.length) for d in datagrams])
    expect.equal("no TCP segment at all: no SYN, no FIN", 0, len(trace.connections))
    sockets = ev.facts.get("udp_sockets", {})
    # each side's port as the capture shows it (the client's is whatever the kernel gave its first sendto)
    ports = {"client": datagrams[0].src.port if datagrams else None, "server": port}
    for side in ("client", "server"):
        expect.equal(f"the {side}'s UDP socket is unconnected: ss -uan lists it UNCONN", ["UNCONN"],
                     ss_state(sockets.get(side, []), ports[side]))
