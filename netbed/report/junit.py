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

from netbed.report.grades import first_line
from netbed.verdict import RunResult

SUITE = "netbed"
# (classname, name, file or None, result): a grade book's row
Case = tuple[str, str, "str | None", RunResult]


def classname(folder: Path, root: Path | None) -> str:
    """The test case's class: the claim file's folder relative to the folder that was run (the student)."""
    if root is not None:
        try:
            folder = folder.resolve().relative_to(root.resolve())
        except ValueError:
            pass
    return ".".join(part for part in folder.parts if part != "/") or "."


def junit_xml(cases: list[Case]) -> str:
    results = [case[3] for case in cases]
    failures = sum(not r.passed for r in results)
    total = f"{sum(r.duration or 0 for r in results):.3f}"
    suites = ET.Element("testsuites", name=SUITE, tests=str(len(cases)), failures=str(failures), errors="0",
                        time=total)
    suite = ET.SubElement(suites, "testsuite", name=SUITE, tests=str(len(cases)), failures=str(failures),
                          errors="0", skipped="0", time=total,
                          timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                          hostname=socket.gethostname())
    for klass, name, file, r in cases:
        case = ET.SubElement(suite, "testcase", classname=klass, name=name, time=f"{r.duration or 0:.3f}")
        if file:
            case.set("file", file)
        log = [f"run folder: {r.artifacts['dir']}"]
        for a in r.assertions:
            log += a.lines()
            if not a.passed:
                failure = ET.SubElement(case, "failure", message=f"{a.name}: {first_line(a)}",
                                        type=a.name.split(":")[0])
                failure.text = a.detail
        ET.SubElement(case, "system-out").text = "\n".join(log) + "\n"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(cases: list[Case], path: Path) -> None:
    path.write_text(junit_xml(cases))
