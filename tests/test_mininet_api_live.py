"""Mininet's Python API on `tb.net`, on the fast build and on the classic build (Mininet's own, LinuxBridge).

Open vSwitch (`--switch ovs`, the classic build's other switch) has no kernel module here; the classic
build with Linux bridges is Mininet's own node-by-node build, so the API runs on both builds.

On the fast build a node's shell starts on first use: each node method is called on a host nobody
has touched yet, so the method itself must start the shell. Every effect is read back from the
kernel (`ip`, /sys), never from what the method was given.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from netbed import topologies
from netbed.network import Testbed

pytestmark = pytest.mark.netbed

BUILDS = {"fast": {}, "classic": {"classic": True}}


def _kernel(tb: Testbed, node: str, argv: list[str]) -> str:
    return tb.run(node, argv).stdout


def _link(tb: Testbed, node: str, name: str) -> str:
    """`ip -o link show NAME` in the node (/sys shows the root namespace's view: not used)."""
    return _kernel(tb, node, ["ip", "-o", "link", "show", "dev", name])


def _link_names(tb: Testbed, node: str) -> list[str]:
    return [line.split(":")[1].strip().split("@")[0] for line in _kernel(tb, node, ["ip", "-o", "link"]).splitlines()]


def node_checks(tb: Testbed):
    """(method, host, check) — check(host_node) asserts the method's effect as the kernel sees it."""
    net = tb.net

    def cmd(h):
        assert h.cmd("echo", "hi").strip() == "hi"

    def send_cmd(h):
        h.sendCmd("echo sent")
        assert h.waiting
        assert "sent" in h.waitOutput()

    def wait_output(h):
        h.sendCmd("sleep 0.2; echo done")
        assert h.waitOutput().strip().endswith("done")

    def monitor(h):
        h.sendCmd("echo monitored")
        seen = ""
        while "monitored" not in seen:
            seen += h.monitor(timeoutms=5000)
        h.waitOutput()

    def popen(h):
        proc = h.popen(["ip", "-o", "-4", "addr", "show", "dev", h.defaultIntf().name], stdout=subprocess.PIPE)
        out, _ = proc.communicate(timeout=10)
        assert h.IP() in out.decode()

    def pexec(h):
        out, err, code = h.pexec("cat", "/proc/net/dev")
        assert code == 0 and h.defaultIntf().name in out

    def ip(h):
        assert re.search(rf"inet {re.escape(h.IP())}/", _kernel(tb, h.name, ["ip", "-4", "addr"]))

    def mac(h):
        assert f"link/ether {h.MAC()} " in _link(tb, h.name, h.defaultIntf().name)

    def intf(h):
        assert h.intf().name == h.defaultIntf().name == f"{h.name}-eth0"

    def intf_list(h):
        names = [i.name for i in h.intfList()]
        assert names and all(n in _link_names(tb, h.name) for n in names)

    def set_ip(h):
        h.setIP("10.0.0.200", 24)
        assert "inet 10.0.0.200/24" in _kernel(tb, h.name, ["ip", "-4", "addr", "show", "dev", f"{h.name}-eth0"])
        assert h.IP() == "10.0.0.200"

    def set_mac(h):
        h.setMAC("02:00:00:00:00:c8")
        assert "link/ether 02:00:00:00:00:c8 " in _link(tb, h.name, f"{h.name}-eth0")

    def default_intf(h):
        assert h.defaultIntf().name in _link_names(tb, h.name)

    def connections_to(h):
        ((mine, theirs),) = h.connectionsTo(net.get("s1"))
        assert (mine.name, theirs.name, theirs.node.name) == (f"{h.name}-eth0", f"s1-eth{h.name[1:]}", "s1")
        assert " master s1 " in _link(tb, "s1", theirs.name)

    return [("cmd", cmd), ("sendCmd", send_cmd), ("waitOutput", wait_output), ("monitor", monitor),
            ("popen", popen), ("pexec", pexec), ("IP", ip), ("MAC", mac), ("intf", intf), ("intfList", intf_list),
            ("setIP", set_ip), ("setMAC", set_mac), ("defaultIntf", default_intf), ("connectionsTo", connections_to)]


def net_checks(tb: Testbed):
    net = tb.net
    h1, h2 = net.get("h1", "h2")

    def ping_all(_):
        assert net.pingAll(timeout=2) == 0.0

    def ping_full(_):
        ((src, dst, (sent, received, *_rtt)), *_rest) = net.pingFull([h1, h2], timeout=2)
        assert (src, dst, sent, received) == (h1, h2, 1, 1)

    def ping(_):
        assert net.ping([h1, h2], timeout=2) == 0.0

    def iperf(_):
        server, client = net.iperf([h1, h2], seconds=1)
        assert re.match(r"[\d.]+ [KMG]?bits/sec", server) and re.match(r"[\d.]+ [KMG]?bits/sec", client)

    def config_link_status(_):
        net.configLinkStatus("s1", "h1", "down")
        assert "state DOWN" in _kernel(tb, "h1", ["ip", "link", "show", "h1-eth0"])
        assert net.ping([h1, h2], timeout=1) == 100.0
        net.configLinkStatus("s1", "h1", "up")
        assert net.ping([h1, h2], timeout=2) == 0.0

    def lookups(_):
        assert net.get("h2") is net.getNodeByName("h2") is net.nameToNode["h2"] is net["h2"]
        assert [h.name for h in net.hosts][:2] == ["h1", "h2"] and [s.name for s in net.switches] == ["s1"]
        assert len(net.links) == len(net.hosts)
        assert {str(link) for link in net.links} >= {"h1-eth0<->s1-eth1", "h2-eth0<->s1-eth2"}

    return [("pingAll", ping_all), ("pingFull", ping_full), ("ping", ping), ("iperf", iperf),
            ("configLinkStatus", config_link_status),
            ("get/getNodeByName/nameToNode/hosts/switches/links", lookups)]


def test_mininet_api_on_both_builds():
    """Every method on both builds, one test (so the method x build table is whole on any worker)."""
    table: dict[tuple[str, str], str] = {}
    for build, options in BUILDS.items():
        topo = topologies.build("lan", hosts=16)
        with Testbed(topo, **options) as tb:
            for number, (method, check) in enumerate(node_checks(tb), start=3):  # h1, h2: the net checks
                host = tb.net.get(f"h{number}")
                if build == "fast":
                    assert not host.shell_started(), f"h{number} was touched before {method}"
                check(host)
                table[(method, build)] = "ok"
            for method, check in net_checks(tb):
                check(None)
                table[(method, build)] = "ok"
    methods = list(dict.fromkeys(m for m, _ in table))
    print("\nmethod".ljust(52) + "".join(b.ljust(10) for b in BUILDS))
    for method in methods:
        print(method.ljust(51) + "".join(table.get((method, b), "-").ljust(10) for b in BUILDS))
    assert len(methods) == 20 and all(table.get((m, b)) == "ok" for m in methods for b in BUILDS)


def test_deferred_shell_starts_on_pid():
    """Sabotage guard: reading `pid` (what `dump` prints) must start the shell, not return None."""
    topo = topologies.build("lan", hosts=2)
    with Testbed(topo) as tb:
        h1 = tb.net.get("h1")
        assert not h1.shell_started()
        pid = h1.pid
        assert isinstance(pid, int) and h1.shell_started()
        assert open(f"/proc/{pid}/comm").read().strip() == "bash"


def test_iperf_that_carries_nothing_says_why(monkeypatch):
    """Stock Mininet prints `Results: ['', '']` and nothing else when iperf moved no data; here each
    empty result comes with the reason, read from what the client and server did (the link is down:
    the client's connect goes unanswered, the server reports no transfer)."""
    import mininet.net

    from netbed.network import mnnet

    monkeypatch.setattr(mnnet, "IPERF_GRACE", 1.0)
    said: list[str] = []
    monkeypatch.setattr(mnnet, "error", lambda text: said.append(text))
    monkeypatch.setattr(mininet.net, "error", lambda text: said.append(text))  # Mininet's own _parseIperf
    topo = topologies.build("lan", hosts=2)
    with Testbed(topo) as tb:
        net = tb.net
        h1, h2 = net.get("h1", "h2")
        net.configLinkStatus("s1", "h1", "down")
        assert net.iperf([h1, h2], seconds=1) == ["", ""]
    text = "".join(said)
    assert re.search(r"iperf client on h1 (reported no transfer: |did not finish within [\d.]+ s and was stopped)",
                     text), text
    assert re.search(r"iperf server on h2 reported no transfer within [\d.]+ s of the client's end", text), text
