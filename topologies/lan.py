"""lan — one switch, N hosts, one subnet: the lecture's 局域网与交换机 (a LAN and its switch).

    python topologies/lan.py --hosts 4 --test pingall
"""
from __future__ import annotations

import sys

try:
    from netbed.spec import MAX_HOSTS, Topology, TopologyBuilder, check_count
except ModuleNotFoundError:  # a Python without netbed installed (make setup installs it in .venv)
    print("netbed is not installed for this Python: run .venv/bin/python topologies/lan.py", file=sys.stderr)
    raise SystemExit(2) from None

NAME = "lan"
SUMMARY = "one switch (s1), N hosts (h1..hN), one subnet"


def build(hosts: int = 3, subnet: str | None = None) -> Topology:
    hosts = check_count("--hosts", hosts, 1, MAX_HOSTS)
    subnet = subnet or ("10.0.0.0/24" if hosts <= 250 else "10.0.0.0/16")
    net = TopologyBuilder(NAME, hosts=hosts, subnet=subnet)
    s1 = net.lan("s1", subnet)
    for i in range(1, hosts + 1):
        net.host(f"h{i}", s1)
    return net.build()


if __name__ == "__main__":
    from netbed.topo_cli import script_main

    raise SystemExit(script_main(NAME))
