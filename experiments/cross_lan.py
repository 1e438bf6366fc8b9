"""局域网…不可以跨局域网通信 — between LANs a router is needed: IPs stay, MACs change per hop, TTL drops."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "cross-lan"
ORDER = 120
CLAIM = ("以上两点合称为“以太网协议”,基于以太网协议通信,属于局域网通信,不可以跨局域网通信; "
         "早期的联机->以太网:局域网与交换机->广域网与路由器")
NETBED = ("Ethernet reaches only its own LAN: told that the server is on its own wire (an on-link route), the "
          "client asks by ARP, nobody on its LAN answers, nothing reaches the other LAN and connect() fails with "
          "EHOSTUNREACH. Through the router the IP addresses stay the same end to end, the MACs are rewritten per "
          "LAN and the TTL drops by one per router.")
FORCING = ("the client is given an on-link route to the server (as if the other LAN were on its own wire) for the "
           "first attempt; the routed connection uses the default gateway.")
GLOSS = ("Ethernet stops at the LAN: with an on-link route to the server the client's ARP goes unanswered, nothing "
         "reaches the other LAN, connect() fails (No route to host). Through the router it works: the IP addresses "
         "stay the same end to end, the MACs are rewritten per LAN, TTL drops by one per router. Forced: the first "
         "attempt is given an on-link route on purpose.")
TOPOLOGIES = ("multi-lan", "wan")
PORT = 9000


def run(lab: Lab) -> None:
    server_ip = lab.ip(lab.server_host)
    route = [f"{server_ip}/32", "dev", lab.tb.spec(lab.client_host).interfaces[0].name]
    # "the server is on this wire": the kernel ARPs for it on the client's LAN instead of using the gateway
    lab.run(lab.client_host, ["ip", "route", "add", *route])
    lab.wait(lab.client(None, ["send:10"], to=(server_ip, PORT), name="on-link"))
    lab.run(lab.client_host, ["ip", "route", "del", *route])
    server = lab.server(["recv-eof", "close"], port=PORT)
    client = lab.client(server, ["send:100", "close"])
    lab.wait(client, server)


def interface(ev: Evidence, node: str, segment: str | None = None) -> dict:
    spec = next(n for n in ev.topology["nodes"] if n["name"] == node)
    return next(i for i in spec["interfaces"] if segment is None or i["segment"] == segment)


def check(ev: Evidence, expect: Expect) -> None:
    expect.equal("with an on-link route to the server, connect() fails: No route to host", "EHOSTUNREACH",
                 ev.program("on-link")["error"])
    client_host, server_host = ev.facts["client_host"], ev.facts["server_host"]
    main = ev.connection("client")
    before = main.segments[0].time if main is not None else float("inf")  # the attempt came before it
    client_ip, server_ip = ev.program("client")["local"][0], ev.program("client")["peer"][0]
    arp = [a for a in ev.trace("client").arp() if a.time < before]
    asked = [a for a in arp if a.is_request and a.sender_ip == client_ip and a.target_ip == server_ip]
    answers = [a for a in arp if a.is_reply and a.sender_ip == server_ip]
    expect.that("the client asks its own LAN for the server's MAC (ARP request, client-side capture)", bool(asked),
                f"{len(asked)} requests who-has {server_ip} tell {client_ip}")
    expect.equal("nobody on the client's LAN answers the ARP for the server", [],
                 [f"{a.sender_ip} is-at {a.sender_mac}" for a in answers])
    expect.equal("the attempt sent no TCP segment: one connection in the client-side capture",
                 1, len(ev.trace("client").connections))
    server_side = ev.trace("server")
    reached = [str(c.client) for c in server_side.connections if c.client.ip == client_ip and c.start < before]
    reached += [f"ARP {a.sender_ip} asks for {a.target_ip}" for a in server_side.arp() if a.sender_ip == client_ip]
    expect.equal("nothing of the attempt reaches the server's LAN (server-side capture)", [], reached)
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
    for point, syn in syns.items():
        if point == "client":
            continue
        # the name stays the same from run to run (the seq, a random ISN, is in the values): runs compare by name
        expect.equal(f"the client's SYN at {point}: the same seq and IP addresses as it left the client",
                     (sent.seq, str(sent.src), str(sent.dst)), (syn.seq, str(syn.src), str(syn.dst)))
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
