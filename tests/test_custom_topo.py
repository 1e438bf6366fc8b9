"""`--custom FILE --topo NAME[,ARGS]`: Mininet's own topologies (its examples as Debian ships them, its
built-ins) built by Mininet on netbed; what cannot work here is one line, before anything is built."""
from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import netbed

# A user's file, as `mn --custom` reads it: Mininet's shipped examples, imported as they are.
EXAMPLES = """\
from mininet.examples.linuxrouter import NetworkTopo
from mininet.examples.linearbandwidth import LinearTestTopo
from mininet.examples.multilink import simpleMultiLinkTopo
from mininet.node import Node
from mininet.topo import Topo

class NoForwarding(NetworkTopo):
    "linuxrouter.py's network with r0 as a plain Node: nothing forwards between the subnets"
    def build(self, **opts):
        super().build(**opts)
        self.nodeInfo("r0")["cls"] = Node

class Named(Topo):
    "interfaces named and addressed on the link, from either end"
    def build(self):
        s1 = self.addSwitch("s1")
        self.addLink(self.addHost("a", ip=None), s1, intfName1="a-lan", params1={"ip": "192.0.2.10/24"})
        self.addLink(s1, self.addHost("b", ip=None), intfName2="b-lan", params2={"ip": "192.0.2.20/24"})

topos = {"linuxrouter": NetworkTopo, "linearbw": LinearTestTopo, "multilink": simpleMultiLinkTopo,
         "noforward": NoForwarding, "named": Named}
"""

REFUSED = """\
from mininet.topo import Topo
from mininet.node import OVSKernelSwitch
from mininet.examples.natnet import InternetTopo
from mininet.examples.controlnet import ControlNetwork
from mininet.examples.simpleperf import SingleSwitchTopo as LossyTopo

class Ovs(Topo):
    def build(self):
        self.addLink(self.addHost("h1"), self.addSwitch("s1", cls=OVSKernelSwitch))

class LongName(Topo):
    def build(self):
        self.addLink(self.addHost("averylonghostname"), self.addSwitch("s1"))

topos = {"ovs": Ovs, "long": LongName, "nat": InternetTopo, "controlnet": lambda: ControlNetwork(n=2),
         "simpleperf": lambda: LossyTopo(n=2)}
"""


@pytest.fixture()
def examples(tmp_path) -> Path:
    path = tmp_path / "examples.py"
    path.write_text(EXAMPLES)
    return path


@pytest.fixture()
def refused(tmp_path) -> Path:
    path = tmp_path / "refused.py"
    path.write_text(REFUSED)
    return path


def one_line(res: subprocess.CompletedProcess, message: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


# --- refused before anything is built (no root needed for most: the check comes first) -----------

@pytest.mark.parametrize("topo, message", [
    ("ovs", "switch s1 asks for OVSSwitch: netbed builds custom topologies with Linux bridges"),
    ("long", "interface name 'averylonghostname-eth1' is longer than Linux's 15 characters"),
    ("nat", "node nat1 would live in the root namespace (NAT)"),
    ("controlnet", "node c0 would live in the root namespace (DataController)"),
    ("nothere", "unknown topology 'nothere' for --topo: choose one of minimal, linear, reversed, single, tree, "
                "torus, ovs"),
])
def test_what_cannot_be_built_here_is_one_line(refused, topo, message):
    one_line(netbed("topo", "--custom", str(refused), "--topo", topo), message)


@pytest.mark.netbed  # whether sch_netem exists is found in a scratch namespace
def test_delay_and_loss_without_netem_name_the_missing_module(refused):
    from netbed.network.shaping import netem_available

    res = netbed("topo", "--custom", str(refused), "--topo", "simpleperf")
    if netem_available():
        assert res.returncode == 0, res.stderr
    else:
        one_line(res, "link h1-s1 asks for delay=5ms, loss=10, which needs the kernel's sch_netem (netem)")


def test_a_file_without_topos_or_with_errors_is_one_line(tmp_path):
    no_topos = tmp_path / "mine.py"
    no_topos.write_text("from mininet.topo import Topo\nclass Mine(Topo):\n    def build(self):\n"
                        "        self.addHost('h1')\n")
    one_line(netbed("topo", "--custom", str(no_topos), "--topo", "mine"),
             "defines no `topos` dict (mn --custom reads topologies from it); it defines Mine")
    broken = tmp_path / "broken.py"
    broken.write_text("topos = {\n")
    one_line(netbed("topo", "--custom", str(broken), "--topo", "x"), "was never closed (line 1)")
    raising = tmp_path / "raising.py"
    raising.write_text("import os\n\nraise RuntimeError('boom')\n")
    one_line(netbed("topo", "--custom", str(raising), "--topo", "x"), "RuntimeError: boom (line 3)")
    one_line(netbed("topo", "--custom", str(tmp_path / "missing.py"), "--topo", "x"), "no such file")


@pytest.mark.parametrize("args, message", [
    (["topo", "--topo", "single,1100"], "switch s1 would have 1100 ports: a Linux bridge takes at most 1024"),
    (["topo", "--topo", "ring,3"], "unknown topology 'ring': choose one of lan, multi-lan, wan (netbed's), minimal"),
    (["topo", "--topo", "tree,depth=abc"], "--topo tree,depth=abc: depth must be a number, not 'abc'"),
    (["topo", "--topo", "linear,k"], "--topo linear,k: k must be a number, not 'k'"),
    (["topo", "--topo", "tree,dpth=2"], "--topo tree,dpth=2: tree has no parameter 'dpth' (it takes depth, fanout)"),
    (["topo", "--topo", "single,1,2,3"], "single takes at most 1 positional argument(s) (k), got 3"),
    (["topo", "--topo", "tree,2,depth=3"], "--topo tree,2,depth=3: depth is given twice"),
    (["topo", "--topo", "tree,depth=2", "--hosts", "3"], "--hosts is for netbed's own topologies"),
    (["topo", "lan", "--topo", "single,2"], "name one topology: lan or --topo single,2"),
    (["run", "lan-ethernet", "--topo", "single,2"], "experiment lan-ethernet does not run on a custom topology "
                                                    "(it is made for lan only)"),
    (["run", "ipv6-handshake", "--topo", "single,2"], "it needs the IPv6 addresses netbed gives its own"),
    (["run", "handshake", "--topo", "single,3", "--client", "h9"], "--client h9: topology single,3 has no such host"),
    (["run", "handshake", "--topo", "single,3", "--client", "h2", "--server", "h2"], "both h2"),
    (["run", "handshake", "--topo", "minimal", "--client", "s1"], "--client s1: topology minimal has no such host"),
    (["run", "handshake", "--topo", "lan", "--client", "h1"], "--client and --server choose hosts on a --custom"),
])
def test_bad_mininet_style_input_is_one_line(args, message):
    one_line(netbed(*args), message)


# --- built by Mininet, reachable ----------------------------------------------------------------

@pytest.mark.netbed
@pytest.mark.parametrize("topo, hosts", [
    ("linuxrouter", 3),  # mininet/examples/linuxrouter.py: LinuxRouter(Node) with config(), ip=, defaultRoute=
    ("linearbw,4", 4),  # mininet/examples/linearbandwidth.py: a chain of switches
    ("multilink,2", 2),  # mininet/examples/multilink.py: two links between each host and the switch
    ("tree,depth=2,fanout=2", 4),  # mininet.topolib.TreeTopo
    ("minimal", 2), ("single,3", 3), ("linear,3", 3), ("reversed,3", 3),  # mininet.topo's built-ins
])
def test_mininet_example_topologies_pass_pingall(examples, topo, hosts):
    res = netbed("topo", "--custom", str(examples), "--topo", topo, "--test", "pingall")
    assert res.returncode == 0, res.stdout + res.stderr
    pairs = hosts * (hosts - 1)
    assert f"test pingall: PASS (0% dropped ({pairs}/{pairs} received))" in res.stdout, res.stdout
    assert "built by Mininet" in res.stdout


@pytest.mark.netbed
def test_a_router_that_does_not_forward_fails_pingall(examples):
    """Sabotage of the test above: linuxrouter.py's network without its LinuxRouter class."""
    res = netbed("topo", "--custom", str(examples), "--topo", "noforward", "--test", "pingall")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "test pingall: FAIL" in res.stdout and "no answer: h1->172.16.0.100" in res.stdout


@pytest.mark.netbed
def test_a_torus_runs_with_spanning_tree_cutting_its_loops():
    """mininet.topolib.TorusTopo loops through its switches: STP blocks ports until the loops are cut."""
    res = netbed("topo", "--topo", "torus,3,3", "--test", "pingall", timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "spanning tree on: the switches form a loop" in res.stdout
    assert "test pingall: PASS (0% dropped (72/72 received))" in res.stdout


@pytest.mark.netbed
def test_torus_bridges_block_ports_in_the_kernel():
    from netbed.network.custom import CustomTestbed, make_topo

    with CustomTestbed(make_topo("torus,3,3"), "torus,3,3") as tb:
        states = [tb.run(s.name, ["brctl", "showstp", s.name]).stdout for s in tb.net.switches]
    # 9 switches joined by 18 links: a tree needs 8 of them, the other 10 are cut at one end
    assert sum(text.count("blocking") for text in states) == 10
    assert all("listening" not in text and "learning" not in text for text in states)


@pytest.mark.netbed
def test_user_parameters_reach_the_kernel(examples):
    """linuxrouter.py's ip=, defaultRoute=, intfName2=, params2= and LinuxRouter.config(), as the kernel has them."""
    from netbed.network.custom import custom_topology

    with custom_topology("linuxrouter", [examples]).testbed() as tb:
        assert "default via 192.168.1.1 dev h1-eth0" in tb.run("h1", ["ip", "-4", "route"]).stdout
        assert "inet 10.0.0.100/8" in tb.run("h3", ["ip", "-4", "addr", "show", "h3-eth0"]).stdout
        assert "inet 172.16.0.1/12" in tb.run("r0", ["ip", "-4", "addr", "show", "r0-eth2"]).stdout
        assert tb.run("r0", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
        assert tb.run("h1", ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
        assert [n.name for n in tb.topology.routers] == ["r0"]
        # nothing leads out of the emulation
        assert "default" not in tb.run("r0", ["ip", "-4", "route"]).stdout
    with custom_topology("named", [examples]).testbed() as tb:
        assert "inet 192.0.2.10/24" in tb.run("a", ["ip", "-4", "addr", "show", "a-lan"]).stdout
        assert "inet 192.0.2.20/24" in tb.run("b", ["ip", "-4", "addr", "show", "b-lan"]).stdout
        assert tb.ping("a", "192.0.2.20")


SHAPED = """\
from mininet.topo import Topo

class Shaped(Topo):
    def build(self, bw=None):
        s1 = self.addSwitch("s1")
        for name in ("h1", "h2"):
            self.addLink(self.addHost(name), s1, bw=bw)

topos = {"shaped": Shaped}
"""
SINK = "import socket; s = socket.create_server(('', 9000)); c, _ = s.accept()\nwhile c.recv(65536): pass"
SEND = textwrap.dedent("""\
    import socket, sys, time
    c = socket.create_connection((sys.argv[1], 9000))
    began = time.monotonic(); c.sendall(b'x' * 2_500_000); c.shutdown(socket.SHUT_WR); c.recv(1)
    print(time.monotonic() - began)""")


def transfer_seconds(tb) -> float:
    """20 Mbit from h1 to h2, timed by the sender until the receiver has closed."""
    sink = tb.popen("h2", ["python3", "-c", SINK])
    tb.wait_listening("h2", 9000, proc=sink)
    out = tb.run("h1", ["python3", "-c", SEND, tb.spec("h2").ip], timeout=60).stdout
    sink.wait(timeout=10)
    return float(out)


@pytest.mark.netbed
@pytest.mark.parametrize("bw, shaped", [(10, True), (None, False)])  # None: the sabotage, no shaping
def test_bw_on_a_link_limits_the_rate(tmp_path, bw, shaped):
    from netbed.network.custom import custom_topology

    path = tmp_path / "shaped.py"
    path.write_text(SHAPED)
    with custom_topology("shaped" + (f",bw={bw}" if bw else ""), [path]).testbed() as tb:
        classes = tb.run("h1", ["tc", "class", "show", "dev", "h1-eth0"]).stdout
        seconds = transfer_seconds(tb)
    if shaped:
        assert "rate 10Mbit" in classes, classes  # Mininet's TCIntf put an HTB class there
        assert seconds >= 1.5, f"20 Mbit in {seconds:.2f} s: faster than a 10 Mbit/s link allows"
    else:
        assert "htb" not in classes
        assert seconds < 1.5, f"20 Mbit took {seconds:.2f} s on an unshaped veth link"


# --- experiments on a user's topology -----------------------------------------------------------

def first_syn(pcap: Path) -> tuple[str, str]:
    """(source, destination) of the first SYN in a capture, read by tcpdump itself."""
    out = subprocess.run(["tcpdump", "-nr", str(pcap), "tcp[tcpflags] == tcp-syn"], capture_output=True,
                         text=True, check=True).stdout
    fields = out.splitlines()[0].split()
    return fields[2].rsplit(".", 1)[0], fields[4].rstrip(":").rsplit(".", 1)[0]


def ttls(pcap: Path, src: str) -> set[int]:
    out = subprocess.run(["tcpdump", "-vnr", str(pcap), f"tcp and src host {src}"], capture_output=True,
                         text=True, check=True).stdout
    return {int(part.split()[0].rstrip(",")) for part in out.split("ttl")[1:]}


@pytest.mark.netbed
def test_an_experiment_runs_across_linuxrouter(examples, tmp_path):
    out = tmp_path / "run"
    res = netbed("run", "handshake", "--custom", str(examples), "--topo", "linuxrouter", "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS  handshake on linuxrouter" in res.stdout
    for name in ("client.pcap", "server.pcap", "r0.pcap", "states.txt", "ladder.txt", "ladder.svg", "result.json"):
        assert (out / name).is_file(), name
    assert not (out / "INCOMPLETE").exists()
    # first host to last host, with the addresses linuxrouter.py gives them, across r0 (TTL 64 -> 63)
    assert first_syn(out / "client.pcap") == ("192.168.1.100", "10.0.0.100")
    assert ttls(out / "server.pcap", "192.168.1.100") == {63}
    assert ttls(out / "client.pcap", "192.168.1.100") == {64}
    again = netbed("check", str(out), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["passed"], again.stdout + again.stderr


@pytest.mark.netbed
@pytest.mark.parametrize("ends, expected", [
    ([], ("10.0.0.1", "10.0.0.4")),  # default: first and last host (Mininet numbers h1..h4 10.0.0.1..4)
    (["--client", "h2", "--server", "h3"], ("10.0.0.2", "10.0.0.3")),
])
def test_client_and_server_are_the_named_hosts(tmp_path, ends, expected):
    out = tmp_path / "run"
    res = netbed("run", "close-client", "--topo", "tree,depth=2,fanout=2", *ends, "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert first_syn(out / "client.pcap") == expected
    assert first_syn(out / "server.pcap") == expected
