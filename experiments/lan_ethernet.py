"""以太网协议 — on one LAN: ARP finds the MAC, frames carry each host's own 48-bit MAC, no router touches TTL."""
from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address
from pathlib import Path

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "lan-ethernet"
ORDER = 110
CLAIM = ("每一块网卡上面都刻有世界上独一无二的编号,这个编号叫做mac地址,它是12位16进制数,前6位是厂商编号,后6位是流水线编号; "
         "基于以太网协议通信,属于局域网通信")
NETBED = ("emulated NICs carry locally administered addresses (U/L bit set, 02:…): their first 6 hex digits are "
          "netbed's choice, not a vendor's number. Only a real NIC with a universally administered address "
          "(U/L bit 0) has a vendor prefix (OUI); the run reports the host machine's NICs for comparison.")
GLOSS = ("On one LAN, an ARP request/reply resolves the peer's MAC before the first IP packet; the frames carry "
         "the hosts' 48-bit MACs (6 bytes, one per host on the LAN); TTL arrives unchanged. The emulated NICs' "
         "MACs are locally administered, so their first 24 bits name no vendor.")
TOPOLOGIES = ("lan",)
IG_BIT, UL_BIT = 0x01, 0x02  # in the first byte of a MAC: group (multicast) address; locally administered
SYSFS_NET = Path("/sys/class/net")


def run(lab: Lab) -> None:
    lab.facts["host_nics"] = host_nics()
    server = lab.server(["recv-eof", "close"])
    client = lab.client(server, ["send:100", "close"])
    lab.wait(client, server)


def host_nics() -> dict[str, str]:
    """The MACs of the machine's own hardware NICs (those with a device behind them), for comparison."""
    nics = {}
    if SYSFS_NET.is_dir():
        for intf in sorted(SYSFS_NET.iterdir()):
            if (intf / "device").exists() and (intf / "address").is_file():
                nics[intf.name] = (intf / "address").read_text().strip()
    return nics


def bits(mac: str) -> str:
    first = int(mac.split(":")[0], 16)
    ul = "locally administered" if first & UL_BIT else f"universal, vendor prefix (OUI) {mac[:8]}"
    return f"{mac}: U/L={int(bool(first & UL_BIT))} ({ul}), I/G={first & IG_BIT}"


def owners(ev: Evidence, point: str) -> dict[str, set[str]]:
    """Each source MAC seen in the capture, with the IPv4 addresses it sent from (ARP sender or IP source)."""
    f = ev.trace(point).frames
    seen: dict[str, set[str]] = defaultdict(set)
    for mac, arp, arp_ip, ip, version, ip4 in zip(f.src_mac.tolist(), f.has_arp.tolist(), f.arp_sender_ip.tolist(),
                                                  f.has_ip.tolist(), f.ip_version.tolist(), f.src_ip4.tolist()):
        if mac and (arp or (ip and version == 4)):
            seen[":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))].add(str(IPv4Address(arp_ip if arp else ip4)))
    return seen


def check(ev: Evidence, expect: Expect) -> None:
    expect.equal("no router on the path", [], [n["name"] for n in ev.topology["nodes"] if n["kind"] == "router"])
    trace = ev.trace("server")
    macs = owners(ev, "server")
    shared = {mac: sorted(ips) for mac, ips in macs.items() if len(ips) > 1}
    by_ip: dict[str, set[str]] = defaultdict(set)
    for mac, ips in macs.items():
        for ip in ips:
            by_ip[ip].add(mac)
    expect.that("each MAC on the LAN belongs to one host, each host has one MAC (server-side capture)",
                bool(macs) and not shared and all(len(m) == 1 for m in by_ip.values()),
                "; ".join(f"{mac} from {', '.join(sorted(ips))}" for mac, ips in sorted(macs.items())) or "no frames")
    conn = ev.found(expect, "server")
    if conn is None:
        return
    syn = conn.segments[0]
    synack = next((s for s in conn.segments if conn.side(s) == "server"), None)
    client_mac, server_mac = syn.src_mac, synack.src_mac if synack else None
    for who, mac in (("client", client_mac), ("server", server_mac)):
        digits = (mac or "").replace(":", "")
        expect.that(f"the {who}'s MAC, read from its frames, is 6 bytes (12 hex digits) and an individual address",
                    len(digits) == 12 and int(digits, 16) != 0 and not int(digits[:2], 16) & IG_BIT,
                    bits(mac) if mac else "no MAC in the frame")
    expect.that("the client and the server have different MACs", client_mac != server_mac,
                f"client {client_mac}, server {server_mac}")
    host = ev.facts.get("host_nics", {})
    expect.that("the emulated NICs' MACs are locally administered: their first 24 bits are no vendor's prefix",
                all(mac and int(mac[:2], 16) & UL_BIT for mac in (client_mac, server_mac)),
                f"client {bits(client_mac) if client_mac else '-'}; server {bits(server_mac) if server_mac else '-'}; "
                "for comparison, this machine's NICs: "
                + ("; ".join(f"{name} {bits(mac)}" for name, mac in host.items()) or "none with a device"))
    client_ip, server_ip = conn.client.ip, conn.server.ip
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
