"""IPV4和IPV6 — the same handshake and four-way close, over IPv6 addresses."""
from __future__ import annotations

import ipaddress

from netbed.expect import FOUR_WAY_CLOSE, THREE_WAY_HANDSHAKE, Expect, closing_segments
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "ipv6-handshake"
ORDER = 150
CLAIM = "ip地址目前有两个版本:IPV4和 IPV6(由于IPV4已经不够表示目前存在的计算机了,所以推出了IPV6版本)"
FORCING = ("the server sets TCP_QUICKACK and waits 0.2 s before its close(), so the close is four segments "
           "on every run.")
GLOSS = ("IPv6 changes the addresses (128 bits), not TCP: the same three-way handshake and four-way close, "
         "IPv6 on the wire at both ends. Forced: the server acknowledges at once and pauses 0.2 s before it closes.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
IPV6 = True  # the testbed gives every interface its IPv6 twin (fd00:…) with gateways and routes


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"], bind="::")
    client = lab.client(server, ["send:1000", "close"], to=(lab.ip6(lab.server_host), DEFAULT_PORT))
    lab.wait(client, server)


def ip_versions(ev: Evidence, point: str, conn) -> list[int]:
    """The IP version of each of the connection's frames, as decoded from the capture at `point`."""
    frames = ev.trace(point).frames
    mine = {s.frame for s in conn.segments}
    return sorted({int(v) for f, v in zip(frames.frame.tolist(), frames.ip_version.tolist()) if f in mine})


def plain_ipv6(address: str) -> bool:
    """An IPv6 address that is not an IPv4 address in IPv6 clothing (::ffff:a.b.c.d)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 6 and ip.ipv4_mapped is None


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    expect.equal("the data arrives intact", client["sent_sha256"], server["received_sha256"])
    port = client["local"][1]
    for point in ("client", "server"):
        # found by the client's port alone: the program's own idea of its address is not evidence
        conn = next((c for c in ev.trace(point).connections if c.client.port == port), None)
        if not expect.that(f"the connection is in the {point}-side capture", conn is not None,
                           f"client port {port}; {len(ev.trace(point).connections)} TCP connections captured"):
            continue
        expect.equal(f"every frame of the connection is IPv6 ({point}-side capture)", [6],
                     ip_versions(ev, point, conn))
        expect.that(f"its addresses are IPv6, not IPv4-mapped ({point}-side capture)",
                    plain_ipv6(conn.client.ip) and plain_ipv6(conn.server.ip), f"{conn.client} > {conn.server}")
        expect.ladder(f"three segments open it ({point} side)", conn, conn.segments[:3], THREE_WAY_HANDSHAKE)
        expect.ladder(f"four segments close it ({point} side)", conn, closing_segments(conn), FOUR_WAY_CLOSE)
