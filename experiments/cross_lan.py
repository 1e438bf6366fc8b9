"""局域网…不可以跨局域网通信 — between LANs a router is needed: IPs stay, MACs change per hop, TTL drops."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "cross-lan"
ORDER = 120
CLAIM = ("以上两点合称为“以太网协议”,基于以太网协议通信,属于局域网通信,不可以跨局域网通信; "
         "早期的联机->以太网:局域网与交换机->广域网与路由器")
GLOSS = ("Without a gateway a host cannot reach another LAN (Network is unreachable); through the router it "
         "can: the IP addresses stay the same end to end, the MACs are rewritten per hop, TTL drops by one per router.")
TOPOLOGIES = ("multi-lan", "wan")
PORT = 9000


def run(lab: Lab) -> None:
    gateway = lab.tb.spec(lab.client_host).gateway
    server_ip = lab.ip(lab.server_host)
    lab.run(lab.client_host, ["ip", "route", "del", "default"])
    lab.wait(lab.client(None, ["send:10"], to=(server_ip, PORT), name="no-gateway"))
    lab.run(lab.client_host, ["ip", "route", "add", "default", "via", gateway])
    server = lab.server(["recv-eof", "close"], port=PORT)
    client = lab.client(server, ["send:100", "close"])
    lab.wait(client, server)


def interface(ev: Evidence, node: str, segment: str | None = None) -> dict:
    spec = next(n for n in ev.topology["nodes"] if n["name"] == node)
    return next(i for i in spec["interfaces"] if segment is None or i["segment"] == segment)


def check(ev: Evidence, expect: Expect) -> None:
    expect.equal("without a default gateway: Network is unreachable", "ENETUNREACH", ev.program("no-gateway")["error"])
    client_host, server_host = ev.facts["client_host"], ev.facts["server_host"]
    routers = ev.routers()  # the routers on the path, in order, each captured on its client-side interface
    client_if, server_if = interface(ev, client_host), interface(ev, server_host)
    hops = {"client": (client_if["mac"], interface(ev, routers[0], client_if["segment"])["mac"]),
            "server": (interface(ev, routers[-1], server_if["segment"])["mac"], server_if["mac"])}
    syns = {}
    for point in ev.points():
        conn = ev.found(expect, point)
        if conn is None:
            return
        syns[point] = conn.segments[0]
    sent = syns["client"]
    expect.equal("the attempt without a gateway sent nothing: one connection in the client-side capture",
                 1, len(ev.trace("client").connections))
    for point, syn in syns.items():
        expect.equal(f"IP addresses unchanged at {point}", (str(sent.src), str(sent.dst)), (str(syn.src), str(syn.dst)))
    for point, (src, dst) in hops.items():
        expect.equal(f"MACs on the {point}'s LAN: {point} side of the router hop", (src, dst),
                     (syns[point].src_mac, syns[point].dst_mac))
    expect.that("the MACs differ on the two LANs (rewritten by the router)",
                (syns["client"].src_mac, syns["client"].dst_mac) != (syns["server"].src_mac, syns["server"].dst_mac),
                f"client LAN {syns['client'].src_mac}>{syns['client'].dst_mac}, "
                f"server LAN {syns['server'].src_mac}>{syns['server'].dst_mac}")
    expect.equal(f"TTL drops by one per router ({len(routers)} on the path)",
                 [sent.ttl - i for i in range(len(routers))] + [sent.ttl - len(routers)],
                 [syns[r].ttl for r in routers] + [syns["server"].ttl])
