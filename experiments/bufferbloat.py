"""Bufferbloat — a long TCP flow fills a deep bottleneck queue: every packet behind it waits queue ÷ rate."""
from __future__ import annotations

import re
import statistics
import time

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.network.shaping import limit_rate

NAME = "bufferbloat"
ORDER = 300  # after the lecture's experiments: the claim is netbed's own
CLAIM = "TCP协议传输数据之所以可靠地原因在于反馈机制"
NETBED = ("Bufferbloat (netbed's own claim; the lecture has no line on it, and Mininet-HiFi's best-known "
          "reproduction is this one): TCP's feedback fills whatever queue sits at the bottleneck, so with a deep "
          "queue every packet behind the flow, a ping included, waits about queue size ÷ rate; with a shallow "
          "queue the wait stays small. The kernel's own record shows why: cwnd grows until the queue overflows, "
          "a loss halves it (reno), and it grows again — a sawtooth.")
FORCING = ("the sender uses reno, a loss-based congestion control (sysctl in its own namespace), and no "
           "segmentation offload on the path, so a queue place is one packet; a 10 Mbit/s HTB rate limit with a FIFO of 100 packets (then 10) on the last router's interface towards "
           "the server; a 12 MB transfer per queue size and a ping every 50 ms from a second host on the client's "
           "LAN, beside it. Timing assertions need a machine that kept up (the run's fidelity).")
GLOSS = ("One long TCP flow through a 10 Mbit/s bottleneck: with a 100-packet queue, the ping beside it and the "
         "kernel's srtt rise to about 100 × 1514 B ÷ 10 Mbit/s = 121 ms; with a 10-packet queue they stay near "
         "12 ms. The sender's cwnd (tcp:tcp_probe) shows the sawtooth of losses and regrowth. Forced: the sender "
         "uses reno (loss-based) and the path no segmentation offload.")
TOPOLOGIES = ("wan",)
ALONE = True  # `run --all --jobs N` runs it with nothing beside it: its queueing delays are timing assertions

RATE_MBIT = 10
CONGESTION_CONTROL = "reno"  # allowed in every namespace (tcp_allowed_congestion_control); halves on loss
QUEUES = {"deep": 100, "shallow": 10}  # packets
DATA = 12_000_000  # bytes per queue size: about 10 s at 10 Mbit/s
PING_INTERVAL = 0.05  # s (below 0.2 s needs root, which netbed has)
PING_SECONDS = 11
PORTS = {"deep": 9000, "shallow": 9001}
CLIENTS = {"deep": "client", "shallow": "client-shallow"}
# tolerance of the deep queue's delay, around queue ÷ rate: the sawtooth drains the queue after each
# loss (reno halves cwnd; the queue refills within a few RTTs) and a loaded machine adds scheduling delay on top
DEEP_LOW, DEEP_HIGH = 0.6, 1.3
SHALLOW_HIGH_MS = 40  # shallow queue: 12 ms of queue + scheduling noise stays well below this
STEADY_FROM = 0.3  # the first 30 % of a transfer is slow start filling the queue: not counted
TOOTH_DROP = 0.8  # a cwnd reduction to 80 % of the peak or lower is a loss response (reno: 50 %)
LOSS_NEAR = 1.0  # s: a retransmission this close to the ssthresh change is its loss
TOOTH_REGROW = 1.15  # after it, cwnd must grow again by 15 % for the next tooth
DEEP_PING = "deep queue: the ping beside the flow waits about queue ÷ rate (median RTT, ms)"
BLOAT = "the deep queue makes the ping beside the flow wait far longer than the shallow one"
BLOAT_FACTOR = 3  # queue ÷ rate differs × 10 between the two queues; × 3 leaves room for the sawtooth and noise
PING_LINE = re.compile(r"^\[(\d+\.\d+)\] .* time=([\d.]+) ms")


def bottleneck(lab: Lab) -> tuple[str, str]:
    """The last router before the server and its interface on the server's LAN."""
    topo = lab.tb.topology
    path = topo.path(lab.client_host, lab.server_host)
    router = topo.node(path[-2])
    server_segments = {i.segment for i in topo.node(lab.server_host).interfaces}
    return router.name, next(i.name for i in router.interfaces if i.segment in server_segments)


def run(lab: Lab) -> None:
    router, intf = bottleneck(lab)
    pinger = next(h.name for h in lab.tb.topology.hosts if h.name not in (lab.client_host, lab.server_host))
    lab.facts["bottleneck"] = {"node": router, "interface": intf, "pinger": pinger}
    # one packet on the wire is one packet in the queue: no segmentation offload on the flow's path
    # (a 64 KB GSO super-packet would take one of the FIFO's places)
    # a loss-based congestion control, in the sender's namespace only (this machine's default may be
    # bbr, which paces at the bottleneck rate and keeps queues short: see the sabotage)
    lab.run(lab.client_host, ["sysctl", "-q", "-w", f"net.ipv4.tcp_congestion_control={CONGESTION_CONTROL}"])
    for node in lab.tb.topology.path(lab.client_host, lab.server_host)[:-1]:
        for i in lab.tb.topology.node(node).interfaces:
            lab.run(node, ["ethtool", "-K", i.name, "tso", "off", "gso", "off", "gro", "off"], check=False)
    for phase, queue in QUEUES.items():
        limit_rate(lab.tb, router, intf, RATE_MBIT, queue)
        log = lab.out / f"ping-{phase}.txt"
        ping = lab.start(f"ping-{phase}", ["sh", "-c", 'exec ping -D -n -i "$1" -w "$2" "$3" > "$0"', str(log),
                                           str(PING_INTERVAL), str(PING_SECONDS), lab.ip(lab.server_host)],
                         host=pinger)
        server = lab.server(["recv-eof", "close"], port=PORTS[phase], name=f"server-{phase}")
        client = lab.client(server, [f"send:{DATA}", "close"], name=CLIENTS[phase])
        lab.facts[f"cc_{phase}"] = congestion_control_in_use(lab, PORTS[phase])
        lab.wait(client, server, timeout=120)
        lab.wait(ping, timeout=PING_SECONDS + 10)
        # the kernel's own view of the bottleneck: its rate, its queue limit, what it dropped
        lab.facts[f"qdisc_{phase}"] = lab.run(router, ["tc", "-s", "qdisc", "show", "dev", intf]).stdout
        lab.facts[f"class_{phase}"] = lab.run(router, ["tc", "-s", "class", "show", "dev", intf]).stdout


def congestion_control_in_use(lab: Lab, port: int) -> str:
    """The congestion control of the sender's socket as the kernel reports it (`ss -ti`), mid-transfer."""
    for _ in range(50):
        info = lab.run(lab.client_host, ["ss", "-tinH", "dst", f":{port}"], check=False).stdout
        found = re.search(r"\b(cubic|reno|bbr\d?|dctcp|vegas|htcp|bic)\b", info)
        if found:
            return found[1]
        time.sleep(0.02)
    return "unknown"


def pings(ev: Evidence, phase: str) -> list[tuple[float, float]]:
    """(time, RTT in ms) of each ping answered, from ping's own output (-D: Unix time)."""
    path = ev.directory / f"ping-{phase}.txt"
    if not path.exists():
        return []
    return [(float(m[1]), float(m[2])) for line in path.read_text().splitlines() if (m := PING_LINE.match(line))]


def kernel_queue(ev: Evidence, phase: str) -> tuple[int | None, float | None, int | None]:
    """(queue limit in packets, rate in bit/s, packets dropped) as `tc -s` printed them after the phase."""
    qdisc, klass = ev.facts.get(f"qdisc_{phase}", ""), ev.facts.get(f"class_{phase}", "")
    limit = re.search(r"pfifo 10:.*?limit (\d+)p", qdisc, re.S)
    dropped = re.search(r"pfifo 10:.*?dropped (\d+)", qdisc, re.S)
    rate = re.search(r"rate (\d+(?:\.\d+)?)([KMG]?)bit", klass)
    bits = float(rate[1]) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[rate[2]] if rate else None
    return (int(limit[1]) if limit else None, bits, int(dropped[1]) if dropped else None)


def window(ev: Evidence, phase: str) -> tuple[float, float] | None:
    """The steady part of the phase's transfer, from the server-side capture: after slow start, until its end."""
    conn = ev.connection("server", CLIENTS[phase])
    if conn is None:
        return None
    data = [s.time for s in conn.segments if conn.side(s) == "client" and s.payload_len]
    if not data:
        return None
    return data[0] + STEADY_FROM * (data[-1] - data[0]), data[-1]


def teeth(probes: list, retransmits: list) -> int:
    """Teeth of the cwnd sawtooth in the kernel's record: a loss (a retransmission, and ssthresh set anew
    at or below TOOTH_DROP of the cwnd peak), cwnd cut to that ssthresh or below, then cwnd growing
    past TOOTH_REGROW × its low point. A recovery the kernel undoes (cwnd back up at once) is no tooth."""
    losses = [r.time for r in retransmits]
    count, peak, cut, low, previous = 0, 0, None, 0, None
    for p in probes:
        if cut is None:
            peak = max(peak, p.cwnd)
            if previous is not None and p.ssthresh != previous and p.ssthresh <= TOOTH_DROP * peak \
                    and any(abs(t - p.time) <= LOSS_NEAR for t in losses):
                cut, low = p.ssthresh, p.cwnd
        else:
            low = min(low, p.cwnd)
            if p.ssthresh > cut:  # undone: the kernel found the loss spurious
                cut, peak = None, p.cwnd
            elif low <= cut and p.cwnd >= TOOTH_REGROW * max(low, 1) and p.cwnd > low + 1:
                count, cut, peak = count + 1, None, p.cwnd
        previous = p.ssthresh
    return count


def queue_delay_ms(packets: int, rate_bits: float, frame: int) -> float:
    return packets * frame * 8 / rate_bits * 1000


def check(ev: Evidence, expect: Expect) -> None:
    expected: dict[str, float] = {}
    medians: dict[str, float] = {}
    for phase in QUEUES:
        expect.equal(f"{phase} queue: the flow's congestion control (ss -ti, mid-transfer)", CONGESTION_CONTROL,
                     ev.facts.get(f"cc_{phase}"))
        limit, rate, dropped = kernel_queue(ev, phase)
        if not expect.that(f"{phase} queue: the kernel reports the bottleneck's FIFO limit and rate",
                           limit is not None and rate is not None, f"limit {limit} packets, rate {rate} bit/s"):
            return
        frame = full_frame(ev, phase)
        expected[phase] = queue_delay_ms(limit, rate, frame)
        span = window(ev, phase)
        if not expect.that(f"{phase} queue: the transfer is in the server-side capture", span is not None,
                           f"connection of {CLIENTS[phase]}"):
            return
        lo, hi = span
        rtts = [rtt for t, rtt in pings(ev, phase) if lo <= t <= hi]
        srtts = [p.srtt_us / 1000 for p in ev.probes("client", CLIENTS[phase]) if lo <= p.time <= hi]
        if not expect.that(f"{phase} queue: pings and kernel srtt samples during the transfer",
                           len(rtts) >= 20 and len(srtts) >= 20, f"{len(rtts)} pings, {len(srtts)} srtt samples"):
            return
        ping_ms, srtt_ms = statistics.median(rtts), statistics.median(srtts)
        medians[phase] = ping_ms
        detail = (f"median ping {ping_ms:.1f} ms, median srtt {srtt_ms:.1f} ms; queue ÷ rate = {limit} × {frame} B "
                  f"÷ {rate / 1e6:g} Mbit/s = {expected[phase]:.1f} ms; {dropped} packets dropped at the bottleneck")
        with expect.timing():  # delays measured on a machine that kept up, or refused
            if phase == "deep":
                low, high = DEEP_LOW * expected[phase], DEEP_HIGH * expected[phase]
                expect.within(DEEP_PING,
                              round(ping_ms, 1), round(low, 1), round(high, 1))
                expect.within("deep queue: the kernel's srtt of the flow is about queue ÷ rate (median, ms)",
                              round(srtt_ms, 1), round(low, 1), round(high, 1))
            else:
                bound = min(SHALLOW_HIGH_MS, 0.3 * expected["deep"])
                expect.within("shallow queue: the ping's wait stays small (median RTT, ms)", round(ping_ms, 1), 0.0,
                              round(bound, 1))
                expect.within("shallow queue: the flow's srtt stays small (median, ms)", round(srtt_ms, 1), 0.0,
                              round(bound, 1))
        expect.that(f"{phase} queue: the bottleneck's FIFO overflowed (the kernel's drop count)",
                    bool(dropped), detail)
        probes = ev.probes("client", CLIENTS[phase])
        retrans = ev.retransmits("client", CLIENTS[phase])
        n = teeth(probes, retrans)
        expect.that(f"{phase} queue: cwnd shows a sawtooth in the kernel's record (losses, cuts, regrowth)",
                    n >= 2 and len(retrans) >= 2,
                    f"{n} losses (ssthresh set to ≤ {TOOTH_DROP:.0%} of the cwnd peak) each followed by regrowth; "
                    f"{len(retrans)} retransmissions (tcp_retransmit_skb); cwnd {min(p.cwnd for p in probes)}.."
                    f"{max(p.cwnd for p in probes)} segments" if probes else "no tcp_probe records")
    if len(medians) == len(QUEUES):
        with expect.timing():
            expect.that(BLOAT, medians["deep"] >= BLOAT_FACTOR * max(medians["shallow"], 0.1),
                        f"median ping {medians['deep']:.1f} ms with the deep queue, {medians['shallow']:.1f} ms with "
                        f"the shallow one (at least × {BLOAT_FACTOR:g} asked)")


def full_frame(ev: Evidence, phase: str) -> int:
    """The largest data frame of the transfer on the wire at the server side (bytes, Ethernet header included)."""
    conn = ev.connection("server", CLIENTS[phase])
    payload = max((s.payload_len for s in conn.segments if conn.side(s) == "client"), default=1448) if conn else 1448
    headers = 14 + (40 if ":" in conn.client.ip else 20) + 32 if conn else 66  # Ethernet, IP, TCP + timestamps
    return payload + headers


def figure(ev: Evidence) -> dict:
    """RTT over time for both queue sizes (the report's figure): the pings and the kernel's srtt."""
    series = {}
    for phase, queue in QUEUES.items():
        span = window(ev, phase)
        start = (span[0] - STEADY_FROM * (span[1] - span[0]) / (1 - STEADY_FROM)) if span else 0.0
        series[f"ping, {queue}-packet queue"] = [(t - start, rtt) for t, rtt in pings(ev, phase)]
        series[f"kernel srtt, {queue}-packet queue"] = [(p.time - start, p.srtt_us / 1000)
                                                        for p in ev.probes("client", CLIENTS[phase])]
    return {"title": f"RTT through a {RATE_MBIT} Mbit/s bottleneck, two queue sizes", "xlabel":
            "time since the transfer's first data segment (s)", "ylabel": "RTT (ms)", "series": series}
