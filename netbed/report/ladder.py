"""Ladder diagrams (Wireshark's Flow Graph, the lecture's two columns with arrows) in plain text."""
from __future__ import annotations

WIDTH = 46  # characters between the two columns


def render_text(conn, client_name: str = "client", server_name: str = "server", point: str = "") -> str:
    """Two columns (client left, server right), one arrow per segment, relative seq/ack numbers."""
    left = f"{client_name} {conn.client}"
    right = f"{server_name} {conn.server}"
    lines = [f"captured at: {point}"] if point else []
    lines.append(f"{'time':>8}  {left:<{WIDTH + 2}}{right}")
    t0 = conn.segments[0].time if conn.segments else 0.0
    for seg in conn.segments:
        label = f" {seg.flag_text} seq={conn.relative_seq(seg)}"
        ack = conn.relative_ack(seg)
        if ack is not None:
            label += f" ack={ack}"
        if seg.payload_len:
            label += f" len={seg.payload_len}"
        body = (label + " ").center(WIDTH - 1, "-")
        arrow = f"|{body}>|" if conn.side(seg) == "client" else f"|<{body}|"
        lines.append(f"{seg.time - t0:8.3f}  {arrow}")
    lines.append(f"handshake: {conn.handshake}; close: {conn.close_kind} (initiator: {conn.close_initiator})")
    return "\n".join(lines)
