"""The verdict table of a folder of claim files: one row per file, the reason in one line.

A teacher reads down the reason column: the first assertion that failed and what the wire (or the
kernel, or the program's exit) showed — `close: expected 'four-way', observed 'reset'`.
"""
from __future__ import annotations

from pathlib import Path

from netbed.expect import Assertion
from netbed.verdict import RunResult


def first_line(assertion: Assertion) -> str:
    """An assertion's detail in one line: a ladder's first differing row rather than its header."""
    lines = [line for line in assertion.detail.splitlines() if line.strip()]
    return next((line.strip() for line in lines if "✗" in line), lines[0].strip() if lines else "")


def reason(result: RunResult) -> str:
    """The first failed assertion and what was observed, in one line ("" for a PASS)."""
    failed = result.failed
    return f"{failed[0].name}: {first_line(failed[0])}" if failed else ""


def table(rows: list[tuple[str, RunResult]]) -> str:
    """One row per claim file: its label, the verdict, seconds, reason; then the count."""
    width = max([len("claim file")] + [len(label) for label, _ in rows])
    lines = [f"{'claim file':<{width}}  verdict  {'time':>6}  reason"]
    for label, r in rows:
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(f"{label:<{width}}  {verdict:<7}  {r.duration or 0:5.1f}s  {reason(r)}".rstrip())
    passed = sum(r.passed for _, r in rows)
    lines += ["", f"{passed}/{len(rows)} passed; run folders under {Path(rows[0][1].artifacts['dir']).parent}"]
    return "\n".join(lines)
