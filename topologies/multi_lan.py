"""multi-lan — K LANs, each behind its own switch, joined by one Linux router (以太网不可以跨局域网通信).

LAN k is 10.0.k.0/24 behind switch sk; the router r1 owns 10.0.k.254 on each and forwards between
them; hosts use it as their default gateway.

    python topologies/multi_lan.py --lans 3 --hosts 2 --test pingall
"""
from __future__ import annotations

import sys

try:
    from netbed.spec import MAX_HOSTS, MAX_LANS, Topology, TopologyBuilder, check_count
except ModuleNotFoundError:  # a Python without netbed installed (make setup installs it in .venv)
    print("netbed is not installed for this Python: run .venv/bin/python topologies/multi_lan.py", file=sys.stderr)
    raise SystemExit(2) from None

NAME = "multi-lan"
SUMMARY = "K LANs (s1..sK, 10.0.k.0/24), N hosts each, one router r1 joining them"


def build(lans: int = 2, hosts: int = 2, subnets: list[str] | None = None) -> Topology:
    lans = check_count("--lans", lans, 2, MAX_LANS)
    hosts = check_count("--hosts", hosts, 1, MAX_HOSTS // lans)
    subnets = subnets or [f"10.0.{k}.0/24" if hosts <= 250 else f"10.{k}.0.0/16" for k in range(1, lans + 1)]
    net = TopologyBuilder(NAME, lans=lans, hosts=hosts)
    switches = [net.lan(f"s{k}", subnets[k - 1]) for k in range(1, lans + 1)]
    net.router("r1", *switches)
    number = 0
    for switch in switches:
        for _ in range(hosts):
            number += 1
            net.host(f"h{number}", switch)
    return net.build()


if __name__ == "__main__":
    from netbed.topo_cli import script_main

    raise SystemExit(script_main(NAME))
