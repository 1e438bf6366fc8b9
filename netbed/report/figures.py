"""Per-connection pictures: the time-sequence graph (wire) and the congestion state (kernel), as SVG.

The time-sequence graph is drawn as tcptrace and Wireshark draw it, from the sender's own capture:
each data segment a vertical bar from its first to its last sequence number at the time it left,
retransmissions in red, the peer's ACKs as a step line, the receive window it advertised as a second
step line above (ACK + window << scale), and the SACK blocks it reported as short purple bars. Beside
it, the kernel's view of the same socket (tcp_probe.csv): cwnd and ssthresh in segments, and srtt,
with the kernel's own retransmissions (tcp_retransmit.csv) marked. Times are seconds since the
connection's first segment, on the captures' clock. matplotlib with the Agg backend, SVG output.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen before pyplot loads)
from matplotlib.collections import LineCollection  # noqa: E402

from netbed.errors import NetbedError  # noqa: E402
from netbed.experiment import Evidence, get  # noqa: E402
from netbed.trace.options import tcp_options  # noqa: E402
from netbed.verdict import CWND_SVG, EXPERIMENT_SVG, TSEQ_SVG  # noqa: E402

SEQ_SPACE = 1 << 32
NO_SSTHRESH = 2_147_483_647  # the kernel's "not set yet" (TCP_INFINITE_SSTHRESH)
# no RDF block: its namespace URLs would be the only links out of a self-contained page
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
RASTER_ABOVE = 4000  # more marks than this go into the SVG as one bitmap layer, keeping the file small
SIZE = (7.0, 4.2)  # inches
COLORS = {"data": "#1f5fbf", "retransmission": "#d62728", "ack": "#2ca02c", "window": "#e6a100",
          "sack": "#9467bd", "cwnd": "#1f5fbf", "ssthresh": "#d62728", "srtt": "#555555"}


def sender_side(conn) -> str:
    """The side that sent more payload: the one whose sequence space the graph shows."""
    return "server" if conn.bytes_server > conn.bytes_client else "client"


def figure_files(evidence: Evidence) -> dict[str, str]:
    """File name -> SVG text of the main connection's pictures ({} without a main connection)."""
    if "client" not in evidence.programs:
        return {}
    main = evidence.connection("client")
    if main is None:
        return {}
    if not main.bytes_client and not main.bytes_server:
        return {}  # no data: nothing for a time-sequence graph to show
    side = sender_side(main)
    conn = evidence.connection(side) or main
    point = side if evidence.connection(side) is not None else "client"
    files = {TSEQ_SVG: time_sequence_svg(evidence, conn, side, point)}
    probes = evidence.probes(side, point=point)
    if probes:
        files[CWND_SVG] = congestion_svg(probes, evidence.retransmits(side, point=point), conn.start,
                                         f"{side}'s socket as the kernel saw it (tcp:tcp_probe)",
                                         f"{evidence.directory.name}-cwnd")
    return files


def experiment_figure(evidence: Evidence) -> str | None:
    """The experiment's own figure, when its module has `figure(evidence)`: series of (time, value) points."""
    try:
        module = get(evidence.experiment).module
    except NetbedError:
        return None
    if not hasattr(module, "figure"):
        return None
    spec = module.figure(evidence)
    fig, ax = plt.subplots(figsize=SIZE)
    for label, points in spec["series"].items():
        if points:
            style = {"linewidth": 0.9} if "srtt" in label else {"marker": ".", "markersize": 3, "linestyle": "none"}
            ax.plot(*zip(*points), label=label, **style)
    ax.set_xlabel(spec["xlabel"])
    ax.set_ylabel(spec["ylabel"])
    ax.set_title(spec["title"], fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _svg(fig, f"{evidence.directory.name}-experiment")


def write_figures(evidence: Evidence) -> list[str]:
    """Write the pictures into the run folder; the names written."""
    files = figure_files(evidence)
    own = experiment_figure(evidence)
    if own is not None:
        files[EXPERIMENT_SVG] = own
    for name, text in files.items():
        (evidence.directory / name).write_text(text)
    return list(files)


def time_sequence_svg(evidence: Evidence, conn, side: str, point: str) -> str:
    base = conn.isn.get(side)
    segs = conn.segments
    if base is None:
        base = min((s.seq for s in segs if conn.side(s) == side), default=0)
    t0 = conn.start
    cap = next(c for c in evidence.captures if c["point"] == point)
    options = tcp_options(evidence.directory / cap["file"], {s.frame for s in segs if s.syn or conn.side(s) != side})
    peer_syn = next((s for s in segs if s.syn and conn.side(s) != side), None)
    scale = options[peer_syn.frame].wscale if peer_syn is not None and peer_syn.frame in options else None
    shift = scale or 0

    def rel(n: int) -> int:
        return (n - base) % SEQ_SPACE

    data, retrans, acks, wins, sacks = [], [], [], [], []
    top = None
    for s in segs:
        t = s.time - t0
        if conn.side(s) == side:
            if s.payload_len:
                lo = rel(s.seq)
                bar = [(t, lo), (t, lo + s.payload_len)]
                (retrans if top is not None and lo < top else data).append(bar)
                top = max(top or 0, lo + s.payload_len)
        elif s.has_ack:
            ack = rel(s.ack)
            acks.append((t, ack))
            wins.append((t, ack + (s.window << shift if not s.syn else s.window)))
            found = options.get(s.frame)
            for left, right in found.sack if found is not None else []:
                sacks.append([(t, rel(left)), (t, rel(right))])
    fig, ax = plt.subplots(figsize=SIZE)
    many = len(data) + len(acks) > RASTER_ABOVE
    for bars, key, label in ((data, "data", "data segments"), (retrans, "retransmission", "retransmissions"),
                             (sacks, "sack", "SACK blocks")):
        if bars:
            ax.add_collection(LineCollection(bars, colors=COLORS[key], linewidths=1.6 if key != "data" else 1.0,
                                             label=f"{label} ({len(bars)})", rasterized=many))
    for points, key, label in ((acks, "ack", "ACK"), (wins, "window", "receive window (ACK + window)")):
        if points:
            ax.step(*zip(*points), where="post", color=COLORS[key], linewidth=1.0, label=label, rasterized=many)
    ax.autoscale()
    ax.set_xlabel("time since the connection's first segment (s)")
    ax.set_ylabel(f"{side}'s sequence number (relative, bytes)")
    ax.set_title(f"time-sequence graph, {side} → peer, captured at the {point} side", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _svg(fig, f"{evidence.directory.name}-tseq")


def congestion_svg(probes: list, retransmits: list, t0: float, title: str, salt: str) -> str:
    """cwnd and ssthresh (segments) above, srtt (ms) below, over time; kernel retransmissions marked."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=SIZE, sharex=True, height_ratios=(3, 2))
    times = [p.time - t0 for p in probes]
    top.step(times, [p.cwnd for p in probes], where="post", color=COLORS["cwnd"], label="cwnd")
    ss = [(t, p.ssthresh) for t, p in zip(times, probes) if p.ssthresh != NO_SSTHRESH]
    if ss:
        top.step(*zip(*ss), where="post", color=COLORS["ssthresh"], linestyle="--", label="ssthresh")
    for r in retransmits:
        top.axvline(r.time - t0, color=COLORS["retransmission"], alpha=0.25, linewidth=0.8)
    if retransmits:
        top.plot([], [], color=COLORS["retransmission"], alpha=0.5, label=f"retransmission ({len(retransmits)})")
    top.set_ylabel("segments")
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(times, [p.srtt_us / 1000 for p in probes], color=COLORS["srtt"], linewidth=1.0, label="srtt")
    bottom.set_ylabel("srtt (ms)")
    bottom.set_xlabel("time since the connection's first segment (s)")
    bottom.grid(alpha=0.3)
    return _svg(fig, salt)


def _svg(fig, salt: str) -> str:
    """The figure as SVG text; ids salted per figure, so several can sit in one HTML page."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.tight_layout()
        fig.savefig(buf, format="svg", metadata=NO_METADATA)
        if PNG_COPY_TO is not None:  # for looking at a figure outside a browser (see docs/research.md)
            fig.savefig(Path(PNG_COPY_TO) / f"{salt.replace('/', '_')}.png", format="png", dpi=100)
    plt.close(fig)
    # SVG 2's plain href (every current browser): the xlink namespace would be a link out of the page
    return buf.getvalue().replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "").replace("xlink:href=", "href=")


PNG_COPY_TO: str | None = os.environ.get("NETBED_FIGURES_PNG")  # a folder: also write PNGs there
