"""IPV4和IPV6 — the same handshake and four-way close, over IPv6 addresses."""
from __future__ import annotations

from netbed.expect import FOUR_WAY_CLOSE, THREE_WAY_HANDSHAKE, Expect, closing_segments
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "ipv6-handshake"
ORDER = 150
CLAIM = "ip地址目前有两个版本:IPV4和 IPV6(由于IPV4已经不够表示目前存在的计算机了,所以推出了IPV6版本)"
GLOSS = "IPv6 changes the addresses (128 bits), not TCP: the same three-way handshake and four-way close."
TOPOLOGIES = ("lan", "multi-lan", "wan")
IPV6 = True  # the testbed gives every interface its IPv6 twin (fd00:…) with gateways and routes


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"], bind="::")
    client = lab.client(server, ["send:1000", "close"], to=(lab.ip6(lab.server_host), DEFAULT_PORT))
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    expect.that("the client's address is IPv6 (128 bits)", ":" in client["local"][0], client["local"][0])
    expect.equal("the data arrives intact", client["sent_sha256"], server["received_sha256"])
    for point in ("client", "server"):
        conn = ev.found(expect, point)
        if conn is None:
            continue
        expect.ladder(f"three segments open it ({point} side)", conn, conn.segments[:3], THREE_WAY_HANDSHAKE)
        expect.ladder(f"four segments close it ({point} side)", conn, closing_segments(conn), FOUR_WAY_CLOSE)
