"""JUnit XML of a series of runs, for CI servers and grade books.

One test case per run (per claim file); one <failure> per failed assertion, its message the one-line
reason (`close: expected 'four-way', observed 'reset'`) and its text the full detail (a ladder's
side-by-side table). Every assertion, passed or not, and the run folder go to <system-out>, so the
CI page shows what was checked and where the pcaps are.
"""
from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SUITE = "netbed"


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    marked = next((line.strip() for line in lines if "✗" in line), None)
    return marked or (lines[0].strip() if lines else "")


def case_names(result: dict[str, Any], root: Path | None) -> tuple[str, str]:
    """(classname, name): the claim file's folder relative to `root` (the student), and the claim's name."""
    path = result.get("claim_file")
    if not path:
        return result.get("topology", ""), result["experiment"]
    folder = Path(path).parent
    if root is not None:
        try:
            folder = folder.relative_to(root.resolve())
        except ValueError:
            pass
    classname = ".".join(folder.parts) or "."
    return classname, f"{result['experiment']} ({Path(path).name})"


def junit_xml(results: list[dict[str, Any]], root: Path | None = None) -> str:
    failures = sum(not r["passed"] for r in results)
    total_time = sum(r.get("duration") or 0 for r in results)
    suites = ET.Element("testsuites", name=SUITE, tests=str(len(results)), failures=str(failures), errors="0",
                        time=f"{total_time:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=SUITE, tests=str(len(results)), failures=str(failures),
                          errors="0", skipped="0", time=f"{total_time:.3f}",
                          timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                          hostname=socket.gethostname())
    for r in results:
        classname, name = case_names(r, root)
        case = ET.SubElement(suite, "testcase", classname=classname, name=name, time=f"{r.get('duration') or 0:.3f}")
        if r.get("claim_file"):
            case.set("file", r["claim_file"])
        log = []
        for a in r.get("assertions", []):
            mark = "✓" if a["passed"] else "✗"
            log.append(f"{mark} {a['name']}: {a['detail']}" if "\n" not in a["detail"]
                       else f"{mark} {a['name']}\n{a['detail']}")
            if not a["passed"]:
                failure = ET.SubElement(case, "failure", message=f"{a['name']}: {_first_line(a['detail'])}",
                                        type=a["name"].split(":")[0])
                failure.text = a["detail"]
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join([f"run folder: {r['artifacts']['dir']}", *log]) + "\n"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(results: list[dict[str, Any]], path: Path, root: Path | None = None) -> None:
    path.write_text(junit_xml(results, root))
