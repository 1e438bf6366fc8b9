"""Link rate, queue, delay, jitter and loss.

Rate and queue (`--bw MBIT`, `--queue PACKETS`) shape every interface of every host and router, as
Mininet's TCLink shapes both ends of each link: an HTB class at the rate, and under it a packet FIFO
of that many packets (where the kernel has netem, netem is that child, with the same limit). A queue
forms where a faster link meets a slower one; what does not fit is dropped, as in a router.

Delay and jitter need the kernel's netem queueing discipline (sch_netem), which some kernels lack —
this project's CI kernel among them; the Vagrant VM has it. Loss works everywhere: with netem where
the kernel has it, otherwise with iptables' `statistic` match inside each host's own namespace.
Whether netem exists is found by trying it in a scratch namespace, before the network is built.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from netbed.errors import NetbedError


@dataclass(frozen=True)
class LinkShape:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    bw_mbit: float = 0.0  # 0: no rate limit
    queue_pkts: int = 0  # 0: DEFAULT_QUEUE under a rate limit

    @property
    def needs_netem(self) -> bool:
        return self.delay_ms > 0 or self.jitter_ms > 0

    def __bool__(self) -> bool:
        return self.needs_netem or self.loss_pct > 0 or self.bw_mbit > 0


DEFAULT_QUEUE = 1000  # packets: Linux's txqueuelen for veth and Ethernet, what a FIFO would get unasked
MAX_BW_MBIT = 100_000
MAX_QUEUE = 1_000_000


def parse_shape(delay: object = None, jitter: object = None, loss: object = None, bw: object = None,
                queue: object = None) -> LinkShape:
    """Validate user input; raise NetbedError with one line for anything wrong."""
    def number(flag: str, value: object, high: float) -> float:
        if value is None:
            return 0.0
        try:
            number = float(str(value))
        except ValueError:
            raise NetbedError(f"{flag} must be a number, not {value!r}") from None
        if not 0 <= number <= high:
            raise NetbedError(f"{flag} must be between 0 and {high:g}, not {number:g}")
        return number

    queue_pkts = number("--queue (packets)", queue, MAX_QUEUE)
    if queue is not None and (queue_pkts != int(queue_pkts) or queue_pkts < 1):
        raise NetbedError(f"--queue (packets) must be a whole number of at least 1, not {queue}")
    shape = LinkShape(number("--delay (ms)", delay, 10_000), number("--jitter (ms)", jitter, 10_000),
                      number("--loss (%)", loss, 100), number("--bw (Mbit/s)", bw, MAX_BW_MBIT), int(queue_pkts))
    if bw is not None and shape.bw_mbit <= 0:
        raise NetbedError(f"--bw (Mbit/s) must be above 0, not {bw}")
    if shape.queue_pkts and not shape.bw_mbit:
        raise NetbedError("--queue needs a --bw: a queue forms behind a rate limit")
    if shape.jitter_ms > 0 and shape.delay_ms == 0:
        raise NetbedError("--jitter needs a --delay to vary around")
    if shape.needs_netem and not netem_available():
        raise NetbedError("link delay and jitter need the kernel module sch_netem, which this kernel does not "
                          "have (try `modprobe sch_netem`); --loss works without it")
    return shape


@lru_cache(maxsize=1)
def netem_available() -> bool:
    """Try a netem qdisc on the loopback of a scratch namespace (the kernel loads the module if it can)."""
    from netbed.network import rtnl

    try:
        (fd,) = rtnl.new_namespaces(1)
    except OSError:
        return False
    try:
        res = subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", "tc", "qdisc", "add", "dev", "lo",
                              "root", "netem", "delay", "1ms"], capture_output=True, pass_fds=(fd,), timeout=10)
        return res.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        os.close(fd)


def apply(tb, shape: LinkShape) -> None:
    """Shape every host's egress (so each host-to-host path gets the delay twice, one per direction);
    a rate limit goes on every interface of every host and router."""
    if not shape:
        return
    if shape.bw_mbit:
        for node in [*tb.topology.hosts, *tb.topology.routers]:
            for intf in node.interfaces:
                limit_rate(tb, node.name, intf.name, shape.bw_mbit, shape.queue_pkts or DEFAULT_QUEUE, shape)
        if not shape.loss_pct or netem_available():
            return  # delay and loss went into the netem child of each rate limit
    use_netem = shape.needs_netem or netem_available()
    for host in tb.topology.hosts:
        for intf in host.interfaces:
            if use_netem:
                argv = ["tc", "qdisc", "add", "dev", intf.name, "root", "netem"]
                if shape.delay_ms:
                    argv += ["delay", f"{shape.delay_ms:g}ms"] + ([f"{shape.jitter_ms:g}ms"] if shape.jitter_ms else [])
                if shape.loss_pct:
                    argv += ["loss", f"{shape.loss_pct:g}%"]
                tb.run(host.name, argv)
            else:
                tb.run(host.name, ["iptables", "-w", "-A", "OUTPUT", "-o", intf.name, "-m", "statistic", "--mode",
                                   "random", "--probability", f"{shape.loss_pct / 100:.6f}", "-j", "DROP"])


def limit_rate(tb, node: str, intf: str, mbit: float, queue: int, shape: LinkShape | None = None) -> None:
    """An HTB rate limit on `intf`'s egress with a FIFO of `queue` packets under it (netem, with the
    shape's delay and loss, where the kernel has it)."""
    rate = f"{mbit:g}mbit"
    # a new limit replaces the old one whole (HTB cannot be "changed" into HTB)
    tb.run(node, ["tc", "qdisc", "del", "dev", intf, "root"], check=False)
    tb.run(node, ["tc", "qdisc", "add", "dev", intf, "root", "handle", "1:", "htb", "default", "1"])
    tb.run(node, ["tc", "class", "add", "dev", intf, "parent", "1:", "classid", "1:1", "htb", "rate", rate,
                  "ceil", rate])
    child = ["tc", "qdisc", "add", "dev", intf, "parent", "1:1", "handle", "10:"]
    if shape is not None and (shape.needs_netem or (shape.loss_pct and netem_available())):
        argv = child + ["netem", "limit", str(queue)]
        if shape.delay_ms:
            argv += ["delay", f"{shape.delay_ms:g}ms"] + ([f"{shape.jitter_ms:g}ms"] if shape.jitter_ms else [])
        if shape.loss_pct:
            argv += ["loss", f"{shape.loss_pct:g}%"]
        tb.run(node, argv)
    else:
        tb.run(node, child + ["pfifo", "limit", str(queue)])
