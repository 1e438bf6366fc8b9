"""Link delay, jitter and loss on the hosts' interfaces.

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

    @property
    def needs_netem(self) -> bool:
        return self.delay_ms > 0 or self.jitter_ms > 0

    def __bool__(self) -> bool:
        return self.needs_netem or self.loss_pct > 0


def parse_shape(delay: object = None, jitter: object = None, loss: object = None) -> LinkShape:
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

    shape = LinkShape(number("--delay (ms)", delay, 10_000), number("--jitter (ms)", jitter, 10_000),
                      number("--loss (%)", loss, 100))
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
    """Shape every host's egress (so each host-to-host path gets the delay twice, one per direction)."""
    if not shape:
        return
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
