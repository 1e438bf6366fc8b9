"""IP地址是动态分配的 — a host with no address gets one from a DHCP server on its LAN."""
from __future__ import annotations

import json

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.programs import UDHCPC_SCRIPT
from netbed.trace.layers import bootp, read_packets

NAME = "dhcp"
ORDER = 155
CLAIM = "规定了只要是接入互联网的计算机都必须有一个ip地址; IP地址是动态分配的"
NETBED = ("Two hosts of the LAN lose their address, then ask for one with a real DHCP client (busybox udhcpc) "
          "from a real DHCP server on the LAN (dnsmasq, started in the server host only; its lease and pid files "
          "live in the run folder). The capture shows each client's DISCOVER (from 0.0.0.0, broadcast), the "
          "server's OFFER, the client's REQUEST and the server's ACK; the address offered is the one the kernel "
          "then has on the host's interface and the one dnsmasq's lease file lists; the second client gets another "
          "address.")
GLOSS = ("Dynamic addresses: DHCP's DISCOVER, OFFER, REQUEST, ACK give a host with no address one from the LAN's "
         "DHCP server; the next host gets another one.")
TOPOLOGIES = ("lan",)
POOL = (100, 199)  # host numbers the server hands out, inside the LAN's subnet
LEASE = "1h"
UDHCPC = ["busybox", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1"]  # foreground, quit once leased, 5 tries 1 s apart


def clients(lab: Lab) -> list[str]:
    """The hosts that ask: the client host and the next one."""
    hosts = [h.name for h in lab.tb.topology.hosts]
    return [hosts[0], hosts[1]]


def addresses(lab: Lab, host: str) -> list[str]:
    intf = lab.tb.spec(host).interfaces[0].name
    shown = json.loads(lab.run(host, ["ip", "-j", "-4", "addr", "show", "dev", intf]).stdout)
    return [f"{a['local']}/{a['prefixlen']}" for entry in shown for a in entry.get("addr_info", [])]


def mac_of(lab: Lab, host: str) -> str:
    """The MAC of the host's interface, as its kernel has it."""
    intf = lab.tb.spec(host).interfaces[0].name
    return json.loads(lab.run(host, ["ip", "-j", "link", "show", "dev", intf]).stdout)[0]["address"]


def start_server(lab: Lab, pool: tuple[int, int] = POOL) -> None:
    spec = lab.tb.spec(lab.server_host)
    subnet = spec.interfaces[0].address.network
    first, last = subnet.network_address + pool[0], subnet.network_address + pool[1]
    prog = lab.start("dhcp-server", [
        "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--no-hosts", "--no-resolv",
        f"--interface={spec.interfaces[0].name}", "--bind-interfaces", "--no-ping", "--log-dhcp",
        "--log-facility=-", f"--dhcp-range={first},{last},{subnet.netmask},{LEASE}",
        f"--dhcp-leasefile={lab.out / 'dnsmasq.leases'}", f"--pid-file={lab.out / 'dnsmasq.pid'}",
    ], host=lab.server_host, daemon=True)
    lab.tb.wait_listening(lab.server_host, 67, proto="udp", proc=prog.proc)


def run(lab: Lab) -> None:
    ask_for_addresses(lab)


def ask_for_addresses(lab: Lab, serve: bool = True) -> None:
    hosts = clients(lab)
    for host in hosts:
        intf = lab.tb.spec(host).interfaces[0].name
        lab.facts.setdefault("macs", {})[host] = mac_of(lab, host)
        lab.run(host, ["ip", "-4", "addr", "flush", "dev", intf])
        lab.facts.setdefault("addresses_before", {})[host] = addresses(lab, host)
    lab.facts["server_mac"] = mac_of(lab, lab.server_host)
    if serve:
        start_server(lab)
    for host in hosts:
        intf = lab.tb.spec(host).interfaces[0].name
        lab.wait(lab.start(f"dhcp-{host}", [*UDHCPC, "-i", intf, "-s", UDHCPC_SCRIPT], host=host), timeout=60)
        lab.facts.setdefault("addresses_after", {})[host] = addresses(lab, host)


def check(ev: Evidence, expect: Expect) -> None:
    macs = ev.facts["macs"]
    messages = [(p, m) for p in read_packets(ev.directory / "server.pcap") if p.dport in (67, 68) and p.protocol == 17
                for m in [bootp(p.payload)] if m is not None]
    leases_file = ev.directory / "dnsmasq.leases"
    lines = leases_file.read_text().splitlines() if leases_file.is_file() else []
    leases = {w[1]: w[2] for w in (line.split() for line in lines) if len(w) >= 3}  # MAC: address
    given = {}
    for host, mac in macs.items():
        expect.equal(f"{host} starts with no IPv4 address (kernel)", [], ev.facts["addresses_before"][host])
        mine = [(p, m) for p, m in messages if m.chaddr == mac]
        kinds = [m.message_type for _, m in mine]
        expect.equal(f"{host}: DISCOVER, OFFER, REQUEST, ACK", ["DISCOVER", "OFFER", "REQUEST", "ACK"], kinds[:4])
        if len(mine) < 4:
            continue
        (discover, _), (offer_pkt, offer), _, (_, ack) = mine[:4]
        expect.equal(f"{host}: the DISCOVER comes from no address, to everyone (0.0.0.0:68 → 255.255.255.255:67)",
                     ("0.0.0.0", 68, "255.255.255.255", 67), (discover.src_ip, discover.sport, discover.dst_ip, discover.dport))
        expect.equal(f"{host}: one transaction (the same xid in all four)", 1, len({m.xid for _, m in mine[:4]}))
        expect.equal(f"{host}: the ACK confirms the address offered", offer.yiaddr, ack.yiaddr)
        after = [a.split("/")[0] for a in ev.facts["addresses_after"][host]]
        expect.equal(f"{host}: the kernel now has the leased address on the interface", [ack.yiaddr], after)
        expect.equal(f"{host}: the DHCP server's lease file lists it for this MAC", ack.yiaddr, leases.get(mac))
        expect.equal(f"{host}: the OFFER comes from the DHCP server host's MAC (kernel)", ev.facts["server_mac"],
                     offer_pkt.src_mac)
        given[host] = ack.yiaddr
    if len(given) == len(macs):
        expect.that("the second client gets another address", len(set(given.values())) == len(given), json.dumps(given))
    for host in macs:
        expect.equal(f"{host}: the DHCP client succeeded", 0, ev.program(f"dhcp-{host}")["exit"])
