#!/usr/bin/env python3
"""Stock Mininet vs. netbed on the same topologies, side by side in one run.

    sudo .venv/bin/python bench/topo_bench.py [--quick | --big]

--big: netbed's 4,096-host LAN (a stack of five bridges) beside stock Mininet at 1,023 hosts, the
largest LAN stock Mininet can build: its one LinuxBridge takes 1,023 ports (the kernel's BR_MAX_PORTS
is 1,024, port 0 reserved); beyond, `brctl addif` fails, Mininet does not check, and the hosts past
the 1,023rd are cut off (ping-ends fails). Stock builds 1,023 hosts well within ten minutes.

For each case both build the network, ping from the first host to the last, and tear it down; each
engine runs in its own process so their memory is measured apart. Stock Mininet uses LinuxBridge
with no controller (its switches in the root namespace, as `mn --switch lxbr` does), Linux routers as
in examples/linuxrouter.py, and `ip route` in the routers; netbed uses its default build.
Peak memory is the machine's MemTotal - MemAvailable during the run, minus before: what the
emulated network costs, kernel included.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CASES = [
    ("lan", {"hosts": 100}),
    ("lan", {"hosts": 500}),
    ("lan", {"hosts": 1000}),
    ("multi-lan", {"lans": 10, "hosts": 50}),
    ("wan", {"routers": 20, "hosts": 2}),
]
STOCK_LARGEST_LAN = 1023  # see the docstring
BIG = [("lan", {"hosts": STOCK_LARGEST_LAN}, ("mininet", "netbed")), ("lan", {"hosts": 4096}, ("netbed",))]


def used_memory() -> int:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kb = lambda key: int(info[key].split()[0])  # noqa: E731
    return (kb("MemTotal") - kb("MemAvailable")) * 1024


def run_netbed(topo) -> dict:
    from netbed.network import Testbed

    t0 = time.monotonic()
    tb = Testbed(topo).start()
    t1 = time.monotonic()
    ok = tb.ping(topo.hosts[0].name, topo.hosts[-1].ip, wait=2)
    t2 = time.monotonic()
    tb.stop()
    t3 = time.monotonic()
    return {"build": t1 - t0, "test": t2 - t1, "teardown": t3 - t2, "ok": ok}


def run_stock(topo) -> dict:
    """The same topology with stock Mininet classes, built the way Mininet users build it."""
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import Node
    from mininet.nodelib import LinuxBridge

    class LinuxRouter(Node):  # examples/linuxrouter.py
        def config(self, **params):
            super().config(**params)
            self.cmd("sysctl net.ipv4.ip_forward=1")

    setLogLevel("error")
    t0 = time.monotonic()
    net = Mininet(topo=None, switch=LinuxBridge, controller=None, build=False, autoSetMacs=False)
    for seg in topo.switches:
        net.addSwitch(seg.name)
    for node in topo.nodes:
        if node.kind == "router":
            net.addHost(node.name, cls=LinuxRouter, ip=None)
        else:
            net.addHost(node.name, ip=None, defaultRoute=f"via {node.gateway}" if node.gateway else None)
    for seg in topo.segments:
        members = topo.members(seg.name)
        if seg.switched:
            for node, intf in members:
                net.addLink(node.name, seg.name, intfName1=intf.name, params1={"ip": str(intf.address)})
        else:
            (a, ia), (b, ib) = members
            net.addLink(a.name, b.name, intfName1=ia.name, intfName2=ib.name,
                        params1={"ip": str(ia.address)}, params2={"ip": str(ib.address)})
    net.build()
    net.start()
    for node in topo.routers:
        for route in node.routes:
            net.get(node.name).cmd(f"ip route add {route.destination} via {route.via}")
    t1 = time.monotonic()
    out = net.get(topo.hosts[0].name).cmd(f"ping -c1 -W2 {topo.hosts[-1].ip}")
    t2 = time.monotonic()
    net.stop()
    t3 = time.monotonic()
    return {"build": t1 - t0, "test": t2 - t1, "teardown": t3 - t2, "ok": " 0% packet loss" in out}


def child(engine: str, name: str, params: dict) -> None:
    from netbed import topologies

    topo = topologies.build(name, **params)
    before = used_memory()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], used_memory())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = (run_stock if engine == "mininet" else run_netbed)(topo)
    done.set()
    sampler.join()
    result.update(peak_mb=(peak[0] - before) / 2**20, nodes=len(topo.nodes) + len(topo.switches),
                  hosts=len(topo.hosts))
    print(json.dumps(result))


def measure(engine: str, name: str, params: dict) -> dict:
    # stock Mininet's switches live in the root namespace: give it a private one (no clash with other runs)
    python = ["unshare", "-n", "/usr/bin/python3"] if engine == "mininet" else [sys.executable]
    out = subprocess.run([*python, __file__, "--child", engine, name, json.dumps(params)],
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{engine} {name} {params} failed:\n{out.stderr[-2000:]}")
    time.sleep(1.0)  # let the kernel finish destroying the previous namespaces
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the 100-host LAN and the small wan")
    parser.add_argument("--big", action="store_true", help="4,096 hosts beside stock Mininet's largest LAN")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, name, params = args.child
        child(engine, name, json.loads(params))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (sudo)")
    cases = [(name, params, ("mininet", "netbed")) for name, params in CASES]
    cases = cases[:1] + cases[-1:] if args.quick else BIG if args.big else cases
    header = (f"{'topology':<28} {'engine':<8} {'build':>7} {'test':>6} {'teardown':>8} {'total':>7} "
              f"{'peak MB':>8} {'KB/host':>8} {'speed-up':>8}")
    print(header)
    print("-" * len(header))
    stock_big = None
    for name, params, engines in cases:
        label = name + " " + " ".join(f"{k}={v}" for k, v in params.items())
        rows = {engine: measure(engine, name, params) for engine in engines}
        stock_big = rows.get("mininet", stock_big)
        for engine, r in rows.items():
            total = r["build"] + r["test"] + r["teardown"]
            ratio = ""
            if engine == "netbed" and "mininet" not in rows:  # vs stock's largest: per host
                per_stock = sum(stock_big[k] for k in ("build", "test", "teardown")) / stock_big["hosts"]
                ratio = f"{per_stock / (total / r['hosts']):6.1f}x/h"
            elif engine == "netbed":
                stock = rows["mininet"]
                ratio = f"{(stock['build'] + stock['test'] + stock['teardown']) / total:7.1f}x"
            print(f"{label:<28} {engine:<8} {r['build']:7.2f} {r['test']:6.2f} {r['teardown']:8.2f} {total:7.2f} "
                  f"{r['peak_mb']:8.1f} {r['peak_mb'] * 1024 / r['hosts']:8.0f} {ratio:>8}"
                  + ("" if r["ok"] else "  (ping FAILED)"))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
