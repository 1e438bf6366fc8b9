"""wan — two LANs joined by a chain of R routers with static routes (广域网与路由器).

    h1..hN ── s1 ── r1 ── r2 ── … ── rR ── s2 ── h(N+1)..h(2N)

LAN A is 10.0.1.0/24, LAN B 10.0.2.0/24; router i and i+1 share 10.254.i.0/30. Every router
hop decrements the IP TTL, which the `cross-lan` experiment measures.

    python topologies/wan.py --routers 3 --test ping-ends
"""
from __future__ import annotations

import sys

try:
    from netbed.spec import MAX_HOSTS, MAX_ROUTERS, Topology, TopologyBuilder, check_count
except ModuleNotFoundError:  # a Python without netbed installed (make setup installs it in .venv)
    print("netbed is not installed for this Python: run .venv/bin/python topologies/wan.py", file=sys.stderr)
    raise SystemExit(2) from None

NAME = "wan"
SUMMARY = "two LANs (s1, s2) joined by a chain of R routers r1..rR with static routes"


def build(routers: int = 2, hosts: int = 2) -> Topology:
    routers = check_count("--routers", routers, 1, MAX_ROUTERS)
    hosts = check_count("--hosts", hosts, 1, MAX_HOSTS // 2)
    lan_subnet = "10.0.{}.0/24" if hosts <= 250 else "10.{}.0.0/16"
    net = TopologyBuilder(NAME, routers=routers, hosts=hosts)
    lan_a = net.lan("s1", lan_subnet.format(1))
    lan_b = net.lan("s2", lan_subnet.format(2))
    chain = [f"r{i}" for i in range(1, routers + 1)]
    net.router(chain[0], lan_a)
    for name in chain[1:]:
        net.router(name)
    for i, (a, b) in enumerate(zip(chain, chain[1:]), start=1):
        net.link(a, b, f"10.254.{i}.0/30")
    net.attach(chain[-1], lan_b)
    for i in range(1, 2 * hosts + 1):
        net.host(f"h{i}", lan_a if i <= hosts else lan_b)
    return net.build()


if __name__ == "__main__":
    from netbed.topo_cli import script_main

    raise SystemExit(script_main(NAME))
