"""Per-link rate and queue in a user's Mininet topology (`addLink(..., bw=, max_queue_size=)`), measured on the wire
and read back from the kernel; delay/jitter/loss refused in one line where the kernel has no sch_netem."""
from __future__ import annotations

import re
import textwrap

import pytest
from conftest import netbed

BW = 10  # Mbit/s on the bottleneck
QUEUE = 20  # packets in its FIFO
DATA = 2_500_000  # bytes: 2 s at BW
PORT = 9000

# A user's file: h1 — s1 — h2, the switch's end of the link to h2 the bottleneck (params1), or the whole link
# shaped through Mininet's own TCLink class (both ends), as Mininet's examples write it.
BOTTLENECK = """\
from mininet.link import TCIntf, TCLink
from mininet.topo import Topo

class Bottleneck(Topo):
    def build(self, bw=None, queue=None):
        s1 = self.addSwitch("s1")
        self.addLink(self.addHost("h1"), s1)
        self.addLink(s1, self.addHost("h2"), params1={"bw": bw, "max_queue_size": queue})

class WholeLink(Topo):
    def build(self, bw=None, queue=None):
        s1 = self.addSwitch("s1")
        self.addLink(self.addHost("h1"), s1)
        self.addLink(s1, self.addHost("h2"), cls=TCLink, bw=bw, max_queue_size=queue)

class Delayed(Topo):
    def build(self):
        s1 = self.addSwitch("s1")
        self.addLink(self.addHost("h1"), s1)
        self.addLink(s1, self.addHost("h2"), bw=10, delay="20ms", max_queue_size=50)

class BadQueue(Topo):
    def build(self):
        self.addLink(self.addHost("h1"), self.addSwitch("s1"), bw=10, max_queue_size=2.5)

class TooFast(Topo):
    def build(self):
        self.addLink(self.addHost("h1"), self.addSwitch("s1"), bw=5000)

class StockIntf(TCIntf):
    "Mininet's TCIntf as it is (netbed leaves a user's own interface class alone)"

class Stock(Topo):
    def build(self):
        s1 = self.addSwitch("s1")
        self.addLink(self.addHost("h1"), s1)
        self.addLink(s1, self.addHost("h2"), cls1=StockIntf, cls2=StockIntf, bw=10, max_queue_size=20)

topos = {"bottleneck": Bottleneck, "wholelink": WholeLink, "delayed": Delayed, "badqueue": BadQueue,
         "toofast": TooFast, "stock": Stock}
"""
SINK = f"import socket; s = socket.create_server(('', {PORT})); c, _ = s.accept()\nwhile c.recv(65536): pass"
SEND = textwrap.dedent(f"""\
    import socket, sys
    c = socket.create_connection((sys.argv[1], {PORT}))
    c.sendall(b'x' * {DATA}); c.shutdown(socket.SHUT_WR); c.recv(1)""")
FIFO = re.compile(r"qdisc pfifo 10: (?:root|parent 5:1) .*?limit (\d+)p.*?\n\s*"
                  r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", re.S)


@pytest.fixture()
def topo_file(tmp_path):
    path = tmp_path / "bottleneck.py"
    path.write_text(BOTTLENECK)
    return path


def wire_mbit(pcap) -> float:
    """Mbit/s of TCP payload towards the sink, first data segment to last, from h2's own capture."""
    from netbed.trace import read_trace

    (conn,) = [c for c in read_trace(str(pcap)).connections if c.server.port == PORT]
    data = [s for s in conn.segments if conn.side(s) == "client" and s.payload_len]
    return sum(s.payload_len for s in data) * 8 / (data[-1].time - data[0].time) / 1e6


def transfer(tb, tmp_path) -> tuple[float, str, str]:
    """DATA bytes h1 -> h2 with reno (it fills a FIFO; the machine's bbr paces below it), captured at h2.

    Returns the rate on the wire and what the kernel says of s1's egress towards h2 afterwards:
    `tc -s qdisc show` and `tc class show`."""
    from netbed.capture.tcpdump import Capture, capture_all

    tb.run("h1", ["sysctl", "-qw", "net.ipv4.tcp_congestion_control=reno"])
    cap = Capture("server", "h2", "h2-eth0", tmp_path / "h2.pcap")
    with capture_all(tb, [cap]):
        sink = tb.popen("h2", ["python3", "-c", SINK])
        tb.wait_listening("h2", PORT, proc=sink)
        tb.run("h1", ["python3", "-c", SEND, tb.spec("h2").ip], timeout=90)
        sink.wait(timeout=10)
    qdiscs = tb.run("s1", ["tc", "-s", "qdisc", "show", "dev", "s1-eth2"]).stdout
    classes = tb.run("s1", ["tc", "class", "show", "dev", "s1-eth2"]).stdout
    return wire_mbit(cap.path), qdiscs, classes


@pytest.mark.netbed
@pytest.mark.parametrize("topo", ["bottleneck", "wholelink"])
@pytest.mark.parametrize("queue", [QUEUE, None])  # None: the sabotage, no max_queue_size on the link
def test_bw_and_max_queue_size_on_a_custom_link(topo_file, tmp_path, topo, queue):
    from netbed.network.custom import custom_topology

    arg = f"{topo},bw={BW}" + (f",queue={queue}" if queue else "")
    with custom_topology(arg, [topo_file]).testbed() as tb:
        mbit, qdiscs, classes = transfer(tb, tmp_path)
    # HTB is exact on average; the first burst and the last segments' timing leave a few per cent
    assert 0.85 * BW <= mbit <= 1.05 * BW, f"{mbit:.2f} Mbit/s on the wire through a {BW} Mbit/s link"
    assert f"rate {BW}Mbit" in classes, classes
    fifo = FIFO.search(qdiscs)
    if queue is None:
        assert fifo is None, qdiscs  # no FIFO of ours: the limit below is read from the kernel, not the file
        return
    assert fifo is not None, qdiscs
    limit, sent, _, dropped = (int(x) for x in fifo.groups())
    assert limit == QUEUE, qdiscs
    assert sent >= DATA, qdiscs  # the transfer went through this FIFO
    assert dropped > 0, qdiscs  # reno overflowed a FIFO this short: the queue is what drops


@pytest.mark.netbed
def test_beside_stock_mininets_tcintf_on_the_same_machine(topo_file):
    """Mininet's own TCIntf hands max_queue_size to netem: on a kernel without it, tc fails, Mininet logs the error
    and the link has its rate but no queue limit. netbed's QueueIntf (the same link, `bottleneck`) has both."""
    from netbed.network.custom import custom_topology
    from netbed.network.shaping import netem_available

    with custom_topology("stock", [topo_file]).testbed() as tb:
        stock = tb.run("s1", ["tc", "qdisc", "show", "dev", "s1-eth2"]).stdout
    with custom_topology(f"bottleneck,bw={BW},queue={QUEUE}", [topo_file]).testbed() as tb:
        ours = tb.run("s1", ["tc", "qdisc", "show", "dev", "s1-eth2"]).stdout
    assert "htb 5:" in stock and "htb 5:" in ours
    assert "limit 20" in stock if netem_available() else "limit" not in stock, stock
    assert f"pfifo 10: parent 5:1 limit {QUEUE}p" in ours or (netem_available() and "netem 10:" in ours), ours


@pytest.mark.netbed
def test_sabotage_an_unshaped_custom_link_is_far_faster(topo_file, tmp_path):
    from netbed.network.custom import custom_topology

    with custom_topology("bottleneck", [topo_file]).testbed() as tb:
        mbit, qdiscs, classes = transfer(tb, tmp_path)
    assert mbit > 3 * BW, mbit  # the measurement above can tell a limit from none
    assert "htb" not in qdiscs and not classes.strip()


@pytest.mark.netbed  # whether sch_netem exists is found in a scratch namespace
def test_delay_on_a_custom_link_is_netems_or_one_line(topo_file):
    from netbed.network.shaping import netem_available

    res = netbed("topo", "--custom", str(topo_file), "--topo", "delayed", "--test", "ping-ends")
    if netem_available():  # handed to Mininet, which puts netem (delay, limit) under the HTB class
        assert res.returncode == 0, res.stdout + res.stderr
    else:
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.strip().splitlines() == [
            "netbed: link s1-h2 asks for delay=20ms, which needs the kernel's sch_netem (netem) — this kernel does not "
            "have it; bw= and max_queue_size= work without it"], res.stderr


@pytest.mark.parametrize("topo, message", [
    ("badqueue", "link h1-s1: max_queue_size=2.5 must be a whole number of packets, at least 1"),
    ("toofast", "link h1-s1: bw=5000 must be a number of Mbit/s above 0 and at most 1000 (Mininet's TCIntf ignores "
                "any other)"),
    ("bottleneck,bw=fast", "link s1-h2: bw='fast' must be a number of Mbit/s"),
])
def test_a_rate_or_queue_mininet_would_ignore_is_one_line(topo_file, topo, message):
    res = netbed("topo", "--custom", str(topo_file), "--topo", topo)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
