"""Per-link rate, queue, delay and loss in a user's Mininet topology (`addLink(..., bw=10, max_queue_size=100)`).

Mininet's TCLink hands each end's parameters to `TCIntf.config`: `bw` becomes an HTB class
(`htb default 1`, `rate BWMbit`), and delay, jitter, loss and `max_queue_size` become one sch_netem
child under it (`netem delay … loss … limit N`). This kernel has no sch_netem, so Mininet's way
would lose the queue size with the rest — `tc` fails, Mininet logs it and builds an unshaped link.
netbed keeps Mininet's way where netem exists and, where it does not:

- `max_queue_size` becomes a packet FIFO of that many packets under the HTB class (`pfifo limit N`,
  the queue a router's interface has), or at the root without `bw`;
- delay, jitter and loss are refused before anything is built, in one line naming the link;
- any `tc` command Mininet or netbed ran that failed stops the build (Mininet only logs it);
- a `bw` Mininet would ignore (outside its 0…1000 Mbit/s) is refused, not silently dropped.

`mn` applies link parameters only with `--link tc`; a topology's own `bw=` means the user wants it, so
netbed gives such links TCIntf ends whatever link class the file names (Link, TCLink).
"""
from __future__ import annotations

import itertools

from mininet.link import Intf, Link, TCIntf, TCLink

from netbed.errors import NetbedError
from netbed.network.nodes import VethLink
from netbed.network.plan import FIRST_INDEX
from netbed.network.shaping import netem_available

NETEM_PARAMS = ("delay", "jitter", "loss")  # what only sch_netem can do
TC_PARAMS = ("bw", "max_queue_size", *NETEM_PARAMS)
QUEUE_HANDLE = "10:"  # the handle Mininet gives its netem child: the FIFO takes its place


def shaping_asked(params: dict) -> bool:
    """Does a link (or one end's params) ask for anything tc does?"""
    return any(params.get(k) is not None for k in TC_PARAMS)


def check_link_shaping(src: str, dst: str, info: dict) -> None:
    """One line, before the build, for what a link asks that this kernel or Mininet would not do."""
    asked: dict = {}
    for params in (info.get("params1") or {}, info.get("params2") or {}, info):  # the link's own win, as in Link
        asked.update({k: params[k] for k in TC_PARAMS if params.get(k) is not None})
    link = f"link {src}-{dst}"
    bw = asked.get("bw")
    if bw is not None and (isinstance(bw, bool) or not isinstance(bw, (int, float)) or not 0 < bw <= TCIntf.bwParamMax):
        raise NetbedError(f"{link}: bw={bw!r} must be a number of Mbit/s above 0 and at most {TCIntf.bwParamMax} "
                          "(Mininet's TCIntf ignores any other)")
    queue = asked.get("max_queue_size")
    if queue is not None and (isinstance(queue, bool) or not isinstance(queue, int) or queue < 1):
        raise NetbedError(f"{link}: max_queue_size={queue!r} must be a whole number of packets, at least 1")
    netem = {k: v for k, v in asked.items() if k in NETEM_PARAMS and v not in (0, "0", "0ms")}
    if netem and not netem_available():
        wanted = ", ".join(f"{k}={v}" for k, v in netem.items())
        raise NetbedError(f"{link} asks for {wanted}, which needs the kernel's sch_netem (netem) — this kernel does "
                          "not have it; bw= and max_queue_size= work without it")


def queue_asked(topo) -> bool:
    """Does any link of the topology ask for a queue size (on the link or on one of its ends)?"""
    return any(params.get("max_queue_size") is not None for _s, _d, info in topo.links(withInfo=True)
               for params in (info, info.get("params1") or {}, info.get("params2") or {}))


def one_frame_per_place(net) -> None:
    """Segmentation offload off on every interface of every host and router, so that a place in a FIFO is one
    frame. With it on, a sender's stack hands 64 KB super-packets down the veth pair and through the bridges
    intact, and a queue of 20 packets held 20 of them (1.3 MB; measured: 136 KB in 2 packets, RTT 100 ms at
    10 Mbit/s, never a drop) — not the queue the file asked for. Mininet-HiFi's experiments turn it off too."""
    for node in net.hosts:
        for intf in node.intfList():
            if intf.name != "lo":
                node.cmd("ethtool", "-K", intf.name, "tso", "off", "gso", "off")


def adopt_links(topo) -> None:
    """Links the file builds with Mininet's own Link or TCLink are built as netbed's CustomLink (the same
    parameters, TCIntf ends where shaping is asked), so that max_queue_size works without netem."""
    for _src, _dst, info in topo.links(withInfo=True):
        if info.get("cls") in (Link, TCLink):
            if info["cls"] is TCLink:  # TCLink's ends are TCIntf even unshaped (it turns GRO off)
                info.setdefault("cls1", QueueIntf)
                info.setdefault("cls2", QueueIntf)
            info["cls"] = CustomLink


class QueueIntf(TCIntf):
    """Mininet's TCIntf, with `max_queue_size` kept where sch_netem is missing (a pfifo where netem would
    be), and a failed `tc` command a failed build instead of a log line."""

    def config(self, max_queue_size: int | None = None, **params):  # noqa: D102 — TCIntf.config's parameters
        if max_queue_size is None or netem_available():
            result = super().config(max_queue_size=max_queue_size, **params)
            outputs = list((result or {}).get("tcoutputs", []))
        else:
            result = super().config(**params)
            parent = result["parent"] if result else " root "
            outputs = list((result or {}).get("tcoutputs", []))
            fifo = f"handle {QUEUE_HANDLE} pfifo limit {max_queue_size}"
            outputs.append(self.tc("%s qdisc add dev %s" + parent + fifo))
        failed = [out.strip() for out in outputs if out.strip()]
        if failed:
            raise NetbedError(f"tc could not shape {self.node.name}'s {self.name}: {failed[0].splitlines()[0]}")
        return result


class CustomLink(VethLink):
    """netbed's veth pair, its two ends given distinct interface indexes (see VethLink); an end with tc
    parameters (on the link or in its params1/params2) is a QueueIntf, as TCLink would make it a TCIntf —
    `mn` without `--link tc` would silently ignore them."""

    _indexes = itertools.count(FIRST_INDEX)

    def __init__(self, node1, node2, **params) -> None:
        both = shaping_asked(params)
        for end in (1, 2):
            if (both or shaping_asked(params.get(f"params{end}") or {})) and params.get(f"cls{end}") in (None, Intf,
                                                                                                        TCIntf):
                params[f"cls{end}"] = QueueIntf
        super().__init__(node1, node2, index1=next(self._indexes), index2=next(self._indexes), **params)
