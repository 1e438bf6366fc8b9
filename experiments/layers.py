"""osi七层 — one HTTP request frame, header by header; across routers only the link layer changes."""
from __future__ import annotations

import json
import sys

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.programs import HTTPD
from netbed.trace.constants import ETH_IPV4, ETHERNET_HEADER, IPV4_HEADER, TCP_HEADER
from netbed.trace.layers import read_packets

NAME = "layers"
ORDER = 8
CLAIM = ("osi七层协议; 应用层; HTTP协议; 传输层; TCP/UDP都是基于端口工作的协议; 网络层; ip协议; 数据链路层; "
         "以上两点合称为“以太网协议”,基于以太网协议通信,属于局域网通信,不可以跨局域网通信")
NETBED = ("curl's HTTP request, captured at every point of the path and taken apart header by header: the link "
          "layer (Ethernet: 14 bytes, destination and source MAC), the network layer (IPv4: 20 bytes, source and "
          "destination address, TTL), the transport layer (TCP: 20 bytes + options, source and destination port), "
          "the application layer (HTTP: the request line and headers); the four sizes add up to the frame. Hop by "
          "hop across the routers the Ethernet header is new on every link (the MACs of the two interfaces the "
          "link joins, as the kernel lists them), while the IP header keeps its addresses (only TTL and checksum "
          "change) and the TCP header and the request are the same bytes end to end.")
GLOSS = ("One request frame, layer by layer: Ethernet MACs, IP addresses, TCP ports, the HTTP request line, each "
         "header's size; routers rewrite the link layer on every hop, IP and TCP travel unchanged.")
TOPOLOGIES = ("multi-lan", "wan", "lan")  # routers first: the claim is about what they change
PORT = 8000  # the lecture: django默认端口:8000
PAGE = "index.html"
WRITE_OUT = "netbed-local %{local_ip} %{local_port} %{remote_ip} %{remote_port}\n"


def run(lab: Lab) -> None:
    fetch_page(lab)


def fetch_page(lab: Lab) -> None:
    www = lab.out / "www"
    www.mkdir(exist_ok=True)
    (www / PAGE).write_text("<p>layers</p>\n")
    server_ip = lab.ip(lab.server_host)
    lab.start("server", [sys.executable, HTTPD, str(PORT), "--bind", server_ip, "--directory", str(www)],
              host=lab.server_host, port=PORT, daemon=True)
    # the MACs as the kernel has them, in every node on the path
    path = lab.tb.topology.path(lab.client_host, lab.server_host)
    lab.facts["path"] = path
    lab.facts["macs"] = {node: [link["address"] for link in json.loads(lab.run(node, ["ip", "-j", "link", "show"]).stdout)
                                if link.get("link_type") == "ether"] for node in path}
    lab.wait(lab.start("client", ["curl", "-s", "-o", "/dev/null", "-w", WRITE_OUT, f"http://{server_ip}:{PORT}/{PAGE}"],
                       host=lab.client_host))


def hop_of(point: str, path: list[str], client_host: str, server_host: str) -> int:
    """Which link of the path a capture point sees: the client's own, a router's incoming one, the server's."""
    node = {"client": client_host, "server": server_host}.get(point, point)
    return 0 if node == client_host else path.index(node) - 1


def check(ev: Evidence, expect: Expect) -> None:
    client = ev.program("client")
    local_ip, local_port = client["local"]
    remote_ip, remote_port = client["peer"]
    path, macs = ev.facts["path"], ev.facts["macs"]
    points = sorted(ev.points(), key=lambda p: hop_of(p, path, ev.facts["client_host"], ev.facts["server_host"]))
    requests = {}
    for point in points:
        found = [p for p in read_packets(ev.directory / f"{point}.pcap") if p.payload.startswith(b"GET ")]
        if not expect.equal(f"{point}: one HTTP request frame captured", 1, len(found)):
            return
        requests[point] = found[0]
    first = requests[points[0]]
    request_line = first.payload.split(b"\r\n", 1)[0].decode("ascii", "replace")
    expect.equal("link layer: Ethernet header of 14 bytes, carrying IPv4 (EtherType 0x0800)", (ETHERNET_HEADER, ETH_IPV4),
                 (len(first.link), first.ethertype))
    expect.equal("network layer: IPv4 header of 20 bytes, from the client's address to the server's (as curl saw them)",
                 (IPV4_HEADER, local_ip, remote_ip), (len(first.network), first.src_ip, first.dst_ip))
    expect.that("transport layer: TCP header of 20 bytes + options, from curl's port to the server's",
                len(first.transport) >= TCP_HEADER and (first.sport, first.dport) == (local_port, remote_port),
                f"{len(first.transport)} bytes, ports {first.sport} → {first.dport} (curl: {local_port} → {remote_port})")
    expect.equal("application layer: the HTTP request line", f"GET /{PAGE} HTTP/1.1", request_line)
    expect.equal("the four layers' sizes add up to the frame",
                 len(first.frame), len(first.link) + len(first.network) + len(first.transport) + len(first.payload))
    ttl0 = first.ttl
    for point in points:
        pkt = requests[point]
        hop = hop_of(point, path, ev.facts["client_host"], ev.facts["server_host"])
        sender, receiver = path[hop], path[hop + 1]
        expect.that(f"{point}: the link layer is this hop's own: {sender}'s MAC → {receiver}'s MAC (kernel's lists)",
                    pkt.src_mac in macs[sender] and pkt.dst_mac in macs[receiver], f"{pkt.src_mac} → {pkt.dst_mac}")
        if point == points[0]:
            continue
        same_ip = pkt.network_without_hop_fields() == first.network_without_hop_fields()
        expect.that(f"{point}: the IP header is the client's but for TTL (−1 per router passed) and checksum",
                    same_ip and pkt.ttl == ttl0 - hop,
                    f"{pkt.src_ip} → {pkt.dst_ip}, TTL {pkt.ttl} (client {ttl0}, {hop} router(s) passed); "
                    f"other fields {'the same' if same_ip else 'CHANGED: ' + pkt.network.hex()}")
        same = pkt.transport + pkt.payload == first.transport + first.payload
        expect.that(f"{point}: the TCP header and the HTTP request are the client's bytes, unchanged", same,
                    f"{len(pkt.transport)} + {len(pkt.payload)} bytes"
                    + ("" if same else f", ports {pkt.sport} → {pkt.dport}, TCP header {pkt.transport.hex()} "
                                       f"(client: {first.transport.hex()})"))
    hops = {(requests[p].src_mac, requests[p].dst_mac) for p in points}
    expect.equal("a new link-layer header on every hop (one pair of MACs per link)", len(path) - 1, len(hops))
