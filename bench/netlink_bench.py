#!/usr/bin/env python3
"""The fast build's netlink, two ways: netbed's rtnl.py against pyroute2 used well, whole builds.

    sudo .venv/bin/python bench/netlink_bench.py [--sizes 500,4096] [--rounds 3]

Both apply the same node plan to the same fresh namespaces and end with the same Mininet view, so
the whole build is compared (namespaces, sysctls, bridges, veths, addresses, routes, Mininet
objects). pyroute2 is used as its documentation suggests for bulk work: one IPRoute socket per
namespace, opened from inside the namespace (no NetNS helper process, no NDB), and every request of a
namespace compiled by IPBatch and sent in large chunks, the acknowledgements read back through the
same IPRoute and checked for errors. Each round runs the variants in a rotated order; the median is reported.
"""
from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netbed import topologies  # noqa: E402
from netbed.network import rtnl  # noqa: E402
from netbed.network.fast import FastNetwork, mininet_view  # noqa: E402
from netbed.network.plan import make_plan  # noqa: E402

FIRST_PEER_INDEX = 2  # the first index the kernel gives in a fresh namespace (lo is 1)
CHUNK = 32 * 1024  # bytes of compiled requests per send (well under the socket buffers)


class Pyroute2Build(FastNetwork):
    """FastNetwork with every netlink request made by pyroute2 instead of rtnl.Rtnl."""

    plain_socket = False  # True: IPBatch compiles, a plain netlink socket sends (pyroute2's marshalling alone)

    def build(self):
        from pyroute2 import IPBatch, IPRoute

        plan, topo = self.plan, self.topology
        names = [s.name for s in topo.switches] + [n.name for n in topo.nodes]
        self.fds = dict(zip(names, rtnl.new_namespaces(len(names))))
        for node in plan.nodes.values():
            if node.sysctls:
                rtnl.write_sysctls(self.fds[node.name], node.sysctls)
        batch = IPBatch()
        bridge_index = {b.name: b.index for b in plan.bridges}
        index = {(e.node, e.name): e.index for link in plan.links for e in (link.end1, link.end2)}
        for node in topo.nodes:
            if len(node.interfaces) != 1:
                raise SystemExit("netlink_bench builds LANs of one-interface hosts only")
            index[(node.name, node.interfaces[0].name)] = FIRST_PEER_INDEX

        def send(fd: int, compose) -> None:
            batch.reset()
            compose(batch)
            data = bytes(batch.batch)
            if self.plain_socket:
                sock = rtnl.Rtnl(fd)
                try:
                    _send_plain(sock.sock, data)
                finally:
                    sock.close()
                return
            with rtnl.inside(fd):
                ipr = IPRoute()
            try:
                start = 0
                while start < len(data):
                    end = _message_boundary(data, start, start + CHUNK)
                    ipr.sendto(data[start:end], (0, 0))
                    acked, expected = 0, _count(data[start:end])
                    while acked < expected:
                        for msg in ipr.get():
                            if msg["header"]["type"] == 2:  # NLMSG_ERROR: an acknowledgement
                                acked += 1
                                if msg["header"]["error"] is not None:
                                    raise msg["header"]["error"]
                    start = end
            finally:
                ipr.close()

        for switch in plan.switches:
            def compose(b, switch=switch):
                b.link("set", index=1, state="up")
                for bridge in plan.bridges:
                    if bridge.switch == switch.name:
                        b.link("add", ifname=bridge.name, index=bridge.index, kind="bridge", state="up",
                               br_nf_call_iptables=0, br_nf_call_ip6tables=0, br_nf_call_arptables=0)
                for link in plan.links:
                    if link.end2.node != switch.name or link.trunk:
                        continue
                    a, e = link.end1, link.end2
                    # pyroute2's veth request puts only attributes in the peer message, so the peer's
                    # index cannot be chosen: in a fresh one-interface host it is 2 (lo is 1), which
                    # still differs from the switch end's planned index (no linkwatch delay)
                    peer = {"ifname": a.name, "net_ns_fd": self.fds[a.node]}
                    if a.mac:
                        peer["address"] = a.mac
                    kw = {"address": e.mac} if e.mac else {}
                    b.link("add", ifname=e.name, index=e.index, kind="veth", peer=peer,
                           master=bridge_index[link.bridge2], state="up", **kw)
            send(self.fds[switch.name], compose)
            self._trunks(switch.name, bridge_index)
        for link in plan.links:
            if not link.bridge2:
                a, e = link.end1, link.end2
                send(self.fds[a.node], lambda b, a=a, e=e: b.link(
                    "add", ifname=a.name, index=a.index, address=a.mac, kind="veth",
                    peer={"ifname": e.name, "index": e.index, "address": e.mac,
                          "net_ns_fd": self.fds[e.node]}))
        for node in topo.nodes:
            node_plan = plan.nodes[node.name]

            def compose(b, node=node, node_plan=node_plan):
                b.link("set", index=1, state="up")
                for intf in node.interfaces:
                    b.link("set", index=index[(node.name, intf.name)], state="up")
                for intf, address in node_plan.addresses:
                    kw = {"broadcast": str(address.network.broadcast_address)} if address.version == 4 else {}
                    b.addr("add", index=index[(node.name, intf)], address=str(address.ip),
                           prefixlen=address.network.prefixlen, **kw)
                for destination, gateway in node_plan.routes:
                    b.route("add", dst=str(destination) if destination else "default", gateway=gateway)
            send(self.fds[node.name], compose)
        self.net = mininet_view(topo, plan, self.fds)
        return self.net

    def _trunks(self, switch: str, bridge_index: dict[str, int]) -> None:
        """A stack's trunks (both ends in the switch's namespace): the kernel picks the peer's index, so
        it is looked up by name before joining the first bridge (a few per 4,096 hosts: plain calls)."""
        from pyroute2 import IPRoute

        trunks = [link for link in self.plan.links if link.trunk and link.end2.node == switch]
        if not trunks:
            return
        with rtnl.inside(self.fds[switch]):
            ipr = IPRoute()
        try:
            for link in trunks:
                a, e = link.end1, link.end2
                ipr.link("add", ifname=e.name, index=e.index, kind="veth", peer={"ifname": a.name},
                         master=bridge_index[link.bridge2], state="up")
                (peer,) = ipr.link_lookup(ifname=a.name)
                ipr.link("set", index=peer, master=bridge_index[link.bridge1], state="up")
        finally:
            ipr.close()


class IPBatchPlainSocket(Pyroute2Build):
    plain_socket = True


def _send_plain(sock, data: bytes) -> None:
    """Send compiled requests in chunks over a plain socket; read every acknowledgement, raise on error."""
    start = 0
    while start < len(data):
        end = _message_boundary(data, start, start + CHUNK)
        sock.send(data[start:end])
        acked, expected = 0, _count(data[start:end])
        while acked < expected:
            reply = sock.recv(1 << 16)
            offset = 0
            while offset < len(reply):
                length, kind = struct.unpack_from("IH", reply, offset)
                if kind == rtnl.NLMSG_ERROR:
                    acked += 1
                    (code,) = struct.unpack_from("i", reply, offset + 16)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                offset += (length + 3) & ~3
        start = end




def _count(data: bytes) -> int:
    n = offset = 0
    while offset < len(data):
        n += 1
        offset += (int.from_bytes(data[offset:offset + 4], sys.byteorder) + 3) & ~3
    return n


def _message_boundary(data: bytes, offset: int, limit: int) -> int:
    """The end of the last whole netlink message from `offset` at or before `limit` (at least one)."""
    first = offset
    while offset < len(data):
        step = (int.from_bytes(data[offset:offset + 4], sys.byteorder) + 3) & ~3
        if offset + step > limit and offset > first:
            return offset
        offset += step
    return len(data)


def one(kind: str, hosts: int) -> float:
    topo = topologies.build("lan", hosts=hosts)
    cls = {"rtnl": FastNetwork, "pyroute2": Pyroute2Build, "ipbatch+socket": IPBatchPlainSocket}[kind]
    began = time.monotonic()
    built = cls(topo, make_plan(topo))
    net = built.build()
    elapsed = time.monotonic() - began
    h1, last = net.get(topo.hosts[0].name), net.get(topo.hosts[-1].name)
    ok = "1 received" in h1.cmd(f"ping -c1 -W2 {last.IP()}")
    built.stop()
    time.sleep(2.0)  # let the kernel destroy the namespaces before the next round
    if not ok:
        raise SystemExit(f"{kind} {hosts}: the built network does not answer a ping")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,4096")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (sudo)")
    from pyroute2 import IPBatch  # imported and warmed up outside the timings (once per process)

    IPBatch().link("set", index=1, state="up")
    print(f"{'hosts':>6} {'rtnl.py s':>10} {'pyroute2 s':>11} {'ratio':>6} {'IPBatch+socket s':>17} {'ratio':>6}"
          f"   (median of {args.rounds}, whole build)")
    for hosts in (int(s) for s in args.sizes.split(",")):
        times: dict[str, list[float]] = {"rtnl": [], "pyroute2": [], "ipbatch+socket": []}
        kinds = list(times)
        for round_number in range(args.rounds):
            # the order rotates every round, so a machine getting busier or quieter favours no one
            for kind in kinds[round_number % len(kinds):] + kinds[:round_number % len(kinds)]:
                times[kind].append(one(kind, hosts))
        a, b, c = (statistics.median(times[k]) for k in times)
        print(f"{hosts:>6} {a:10.2f} {b:11.2f} {b / a:5.2f}x {c:17.2f} {c / a:5.2f}x   "
              + "  ".join(f"{k} {[round(t, 2) for t in v]}" for k, v in times.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
