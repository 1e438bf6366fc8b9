"""The ladder as a standalone SVG picture (``ladder.svg``): the lecture's drawing, from a real capture.

Hand-written SVG text rather than a plotting library: the picture is a few lines, polygons and
labels, it must open in any browser or slide, and netbed should not pull a graphics stack into a
teaching VM. Rows are the ones :func:`netbed.report.ladder.build_ladder` made, so the picture and
``ladder.txt`` always agree. Every text is escaped: host names and labels come from user input.
"""
from __future__ import annotations

import math
import textwrap
from xml.sax.saxutils import escape, quoteattr

from netbed.report.ladder import Arrow, Ladder, StateMark

WIDTH = 800
X_TIME = 58  # right edge of the time labels
X_LEFT, X_RIGHT = 236, 650  # the two lifelines
TOP = 112  # first row
ARROW_ROW, STATE_ROW = 36, 26
SANS = "DejaVu Sans, Verdana, Arial, sans-serif"
MONO = "DejaVu Sans Mono, Menlo, Consolas, monospace"
COLORS = {"client": "#1f5fa8", "server": "#2a7d3a", "reset": "#c62828", "retransmission": "#b35c00"}
STATE_FILL, STATE_STROKE = "#fff6dc", "#c9a227"
FOLD_BAND = "#f1f3f5"

_STYLE = f"""
text {{ font-family: {SANS}; font-size: 12px; fill: #222; }}
.title {{ font-size: 14px; font-weight: bold; }}
.host {{ font-size: 13px; font-weight: bold; text-anchor: middle; }}
.endpoint {{ font-family: {MONO}; text-anchor: middle; }}
.summary {{ fill: #333; }}
.legend {{ font-size: 11px; fill: #444; }}
.time {{ font-family: {MONO}; font-size: 11px; fill: #777; text-anchor: end; }}
.label {{ text-anchor: middle; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }}
.folded .label {{ font-style: italic; }}
.state text {{ font-family: {MONO}; font-size: 11px; text-anchor: middle; }}
"""


def _text(x: float, y: float, content: str, cls: str | None = None, color: str | None = None) -> str:
    """A text element; colour goes in ``style`` because the style sheet would override a ``fill``."""
    klass = f" class={quoteattr(cls)}" if cls else ""
    style = f' style="fill:{color}"' if color else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{klass}{style}>{escape(content)}</text>'


def _text_width(content: str, size: float, style: str = "sans") -> float:
    """A width estimate good enough to size boxes around text (no font metrics without a renderer).

    Average advance per em: DejaVu Sans Mono 0.6; DejaVu Sans about 0.55, bold about 0.65.
    """
    return len(content) * size * {"mono": 0.61, "sans": 0.55, "bold": 0.65}[style]


def _head(x: float, title: str, endpoint: str) -> str:
    """A column header: a box on the lifeline with the host name over ip:port."""
    w = max(_text_width(title, 13, "bold"), _text_width(endpoint, 12, "mono")) + 28
    return (f'<g class="head"><rect x="{x - w / 2:.1f}" y="40" width="{w:.1f}" height="44" rx="6" '
            f'fill="#eef2f7" stroke="#5b6b7f"/>'
            + _text(x, 58, title, "host")
            + _text(x, 76, endpoint, "endpoint")
            + "</g>")


def _arrow(arrow: Arrow, y: float) -> str:
    """One arrow element: a slanted line (the segment travels while time passes), its head and label."""
    if arrow.reset:
        color = COLORS["reset"]
    else:
        color = COLORS[arrow.sender]
    x0, x1 = (X_LEFT, X_RIGHT) if arrow.sender == "client" else (X_RIGHT, X_LEFT)
    y0, y1 = y + 17, y + 28
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy)
    ux, uy = dx / length, dy / length
    head, half = 11.0, 4.5
    bx, by = x1 - ux * head, y1 - uy * head  # base of the head
    points = f"{x1:.1f},{y1:.1f} {bx - uy * half:.1f},{by + ux * half:.1f} {bx + uy * half:.1f},{by - ux * half:.1f}"
    width = 3.5 if arrow.folded else 1.6
    dash = ' stroke-dasharray="7 5"' if arrow.retransmission else ""
    classes = ["arrow", arrow.sender] + [name for name, on in (
        ("folded", arrow.folded), ("reset", arrow.reset), ("retransmission", arrow.retransmission)) if on]
    frames = arrow.frames
    tip = f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}–{frames[-1]}"
    label_color = COLORS["retransmission"] if arrow.retransmission and not arrow.reset else color
    parts = [f'<g class="{" ".join(classes)}">', f"<title>{escape(tip)}</title>"]
    if arrow.folded:
        parts.append(f'<rect x="{X_LEFT}" y="{y + 1:.1f}" width="{X_RIGHT - X_LEFT}" height="{ARROW_ROW - 2}" '
                     f'fill="{FOLD_BAND}"/>')
    parts += [
        f'<line x1="{x0}" y1="{y0:.1f}" x2="{bx + ux:.1f}" y2="{by + uy:.1f}" stroke="{color}" '
        f'stroke-width="{width}"{dash}/>',
        f'<polygon points="{points}" fill="{color}"/>',
        _text((X_LEFT + X_RIGHT) / 2, y + 13, arrow.label, "label", label_color),
        "</g>",
    ]
    return "".join(parts)


def _state(mark: StateMark, y: float) -> str:
    """A state box beside its side's lifeline (outside the arrows), with a dot on the lifeline."""
    w = _text_width(mark.label, 11, "mono") + 16
    h = 18
    x_line = X_LEFT if mark.side == "client" else X_RIGHT
    x = x_line - 10 - w if mark.side == "client" else x_line + 10
    dash = ' stroke-dasharray="3 2"' if mark.via else ""
    tip = f"{mark.side}: {mark.state}" + (f" (seen by {mark.via} after the run)" if mark.via else "")
    return (f'<g class="state {mark.side}"><title>{escape(tip)}</title>'
            f'<circle cx="{x_line}" cy="{y:.1f}" r="3.5" fill="{STATE_STROKE}"/>'
            f'<rect x="{x:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" height="{h}" rx="4" fill="{STATE_FILL}" '
            f'stroke="{STATE_STROKE}"{dash}/>'
            + _text(x + w / 2, y + 4, mark.label)
            + "</g>")


def _legend(y: float) -> tuple[list[str], float]:
    """A key to the colours and strokes, wrapped to the picture's width; returns it and its last baseline."""
    line = '<line x1="{x:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}" stroke="{color}" stroke-width="{w}"{dash}/>'
    box = (f'<rect x="{{x:.1f}}" y="{{y:.1f}}" width="24" height="14" rx="3" fill="{STATE_FILL}" '
           f'stroke="{STATE_STROKE}"/>')
    items = [("client → server", line, COLORS["client"], 2, ""), ("server → client", line, COLORS["server"], 2, ""),
             ("retransmission", line, "#555", 2, ' stroke-dasharray="7 5"'),
             ("RST", line, COLORS["reset"], 2, ""), ("folded data phase", line, "#555", 3.5, ""),
             ("kernel TCP state", box, "", 0, "")]
    out, x = [], 20.0
    for text, sample, color, w, dash in items:
        need = 30 + _text_width(text, 11) + 14
        if x + need > WIDTH - 10:
            x, y = 20.0, y + 20
        out.append(sample.format(x=x, x2=x + 24, y=y - 4 if sample is line else y - 11, color=color, w=w,
                                 dash=dash))
        out.append(_text(x + 30, y, text, "legend"))
        x += need
    return out, y


def _document(height: float, body: list[str]) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}">\n'
            f"<style>{_STYLE}</style>\n"
            f'<rect width="{WIDTH}" height="{height:.0f}" fill="#fff"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def render_svg(ladder: Ladder | None, message: str = "") -> str:
    """The ladder as an SVG document; with no ladder, a small picture that says ``message``."""
    if ladder is None:
        return _document(60, [_text(20, 34, message or "(no TCP connection)")])
    body = [_text(20, 24, f"captured at: {ladder.captured_at}" if ladder.captured_at else "ladder diagram", "title"),
            _head(X_LEFT, ladder.client.title, str(ladder.client.endpoint)),
            _head(X_RIGHT, ladder.server.title, str(ladder.server.endpoint))]
    rows: list[str] = []
    y = TOP
    for line in ladder.lines():
        first = line[0]
        if isinstance(first, Arrow):
            rows.append(_text(X_TIME, y + 26, ladder.clock(first), "time"))
            rows.append(_arrow(first, y))
            y += ARROW_ROW
        else:
            rows.append(_text(X_TIME, y + STATE_ROW / 2 + 4, ladder.clock(first), "time"))
            rows += [_state(m, y + STATE_ROW / 2) for m in line if isinstance(m, StateMark)]
            y += STATE_ROW
    end = y + 10
    lifelines = [f'<line x1="{x}" y1="84" x2="{x}" y2="{end:.1f}" stroke="#8a96a3" stroke-width="1.5"/>'
                 for x in (X_LEFT, X_RIGHT)]
    body += lifelines + rows
    y = end + 24
    for text in ladder.summary + ladder.notes:
        for part in textwrap.wrap(text, 118, subsequent_indent="  "):
            body.append(_text(20, y, part, "summary"))
            y += 17
    legend, y = _legend(y + 14)
    return _document(y + 16, body + legend)
