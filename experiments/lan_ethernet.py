"""以太网协议 — on one LAN: ARP finds the MAC, frames carry 48-bit MACs, no router touches TTL."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "lan-ethernet"
ORDER = 110
CLAIM = ("每一块网卡上面都刻有世界上独一无二的编号,这个编号叫做mac地址,它是12位16进制数,前6位是厂商编号,后6位是流水线编号; "
         "基于以太网协议通信,属于局域网通信")
GLOSS = ("On one LAN, an ARP request/reply resolves the peer's MAC before the first IP packet; frames carry "
         "the hosts' 48-bit MACs (12 hex digits, the first 24 bits a vendor prefix); TTL arrives unchanged.")
TOPOLOGIES = ("lan",)


def run(lab: Lab) -> None:
    server = lab.server(["recv-eof", "close"])
    client = lab.client(server, ["send:100", "close"])
    lab.wait(client, server)


def mac_of(ev: Evidence, host: str) -> str:
    node = next(n for n in ev.topology["nodes"] if n["name"] == host)
    return node["interfaces"][0]["mac"]


def check(ev: Evidence, expect: Expect) -> None:
    client_mac, server_mac = mac_of(ev, ev.facts["client_host"]), mac_of(ev, ev.facts["server_host"])
    for mac in (client_mac, server_mac):
        digits = mac.replace(":", "")
        expect.that(f"{mac} is 48 bits: 12 hex digits", len(digits) == 12 and int(digits, 16) >= 0, digits)
    expect.equal("both NICs share the first 24 bits (the vendor prefix)", client_mac[:8], server_mac[:8])
    expect.equal("no router on the path", [], [n["name"] for n in ev.topology["nodes"] if n["kind"] == "router"])
    trace = ev.trace("server")
    conn = ev.found(expect, "server")
    if conn is None:
        return
    syn = conn.segments[0]
    client_ip = conn.client.ip
    server_ip = conn.server.ip
    arp = trace.arp()
    request = next((a for a in arp if a.is_request and a.sender_ip == client_ip and a.target_ip == server_ip), None)
    reply = next((a for a in arp if a.is_reply and a.sender_ip == server_ip and a.target_ip == client_ip), None)
    if expect.that("ARP request: who has the server's IP, tell the client", request is not None,
                   f"{len(arp)} ARP packets"):
        expect.equal("the request comes from the client's MAC", client_mac, request.sender_mac)
        expect.that("ARP precedes the first IP packet", request.time <= syn.time,
                    f"ARP at {request.time:.6f}, SYN at {syn.time:.6f}")
    if expect.that("ARP reply: the server's IP is at the server's MAC", reply is not None, f"{len(arp)} ARP packets"):
        expect.equal("the reply carries the server's MAC", server_mac, reply.sender_mac)
    expect.equal("the SYN frame goes from the client's MAC to the server's MAC", (client_mac, server_mac),
                 (syn.src_mac, syn.dst_mac))
    sent_ttl = ev.connection("client").segments[0].ttl
    expect.equal("TTL arrives unchanged (no router decremented it)", sent_ttl, syn.ttl)
