"""The expectations stage: assertions that read like the ladder diagram they check.

Like a packetdrill script, an expected exchange is written segment by segment::

    expect.ladder("three segments open the connection", conn, conn.segments[:3], [
        "client > S  seq=x",
        "server > S. seq=y ack=x+1",
        "client > .  seq=x+1 ack=y+1",
    ])

A name (x, y, f, …) is bound to the value it first meets; `x+1` must then equal that value plus
one (modulo 2^32, as TCP sequence numbers are). Met first in `ack=g+1`, g is bound so that the term
holds (to the ack minus one). A failure prints expected and observed segments
side by side.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

from netbed.trace.constants import PSH as PSH_BIT
from netbed.trace.model import flag_text

_TERM = re.compile(r"^(seq|ack|len)(=|>|<)([a-z]\w*|\d+)(?:([+-])(\d+))?$")


@dataclass(frozen=True)
class Assertion:
    """One assertion's outcome. `detail` is the text people read; `expected` and `observed` are the
    same facts as values, so a renderer (the HTML page, a grader) never parses them out of text.

    kind "that": a free-text check (no values); "equal": expected and observed values; "within":
    expected is [low, high]; "ladder": expected is the pattern lines, observed the segments as
    lines, and `differing` the rows that did not match (as packetdrill prints script vs. actual).
    """

    name: str
    passed: bool
    detail: str
    kind: str = "that"
    expected: Any = None
    observed: Any = None
    differing: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "passed": self.passed, "detail": self.detail}
        if self.kind != "that":
            data.update(kind=self.kind, expected=self.expected, observed=self.observed)
        if self.differing:
            data["differing"] = list(self.differing)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Assertion:
        """Also reads result.json files written before assertions carried values (name, passed, detail)."""
        return cls(str(data["name"]), bool(data["passed"]), str(data.get("detail", "")), data.get("kind", "that"),
                   data.get("expected"), data.get("observed"), tuple(data.get("differing") or ()))

    def lines(self, indent: str = "") -> list[str]:
        """The assertion as text, the one way `netbed run`, `check`, `show` and pytest print it."""
        mark = "✓" if self.passed else "✗"
        if "\n" in self.detail:
            return [f"{indent}{mark} {self.name}", *(f"{indent}    {line}" for line in self.detail.splitlines())]
        return [f"{indent}{mark} {self.name}: {self.detail}"]


def plain(value: Any) -> Any:
    """`value` as JSON data (tuples and sets become lists, enums their values), so a saved result reads
    back equal."""
    if isinstance(value, Enum):
        return plain(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return repr(value)


@dataclass
class Expect:
    """Collects the assertions of one experiment; each records expected vs. observed."""

    assertions: list[Assertion] = field(default_factory=list)
    # why this run's timing cannot be trusted (None: the machine kept up); see `timing`
    fidelity_lost: str | None = None

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Assertions made inside depend on timing: on a run whose fidelity was lost, each is refused
        (failed, saying why), whatever it observed — a slow machine's delays are not the network's."""
        first = len(self.assertions)
        yield
        if self.fidelity_lost is None:
            return
        for i in range(first, len(self.assertions)):
            a = self.assertions[i]
            self.assertions[i] = replace(a, passed=False, detail=f"refused: timing-dependent, and this run's "
                                                                 f"fidelity was lost ({self.fidelity_lost}); "
                                                                 f"observed: {a.detail}")

    @property
    def passed(self) -> bool:
        return bool(self.assertions) and all(a.passed for a in self.assertions)

    def that(self, name: str, passed: bool, detail: str) -> bool:
        self.assertions.append(Assertion(name, bool(passed), detail))
        return bool(passed)

    def unchecked(self, names: list[str], why: str) -> None:
        """Assertions whose evidence is missing (a guard before them failed): recorded as failed, not left out.

        A run's list of assertions then depends on the experiment alone, never on what it observed, so
        two runs (`--jobs 1` and `--jobs N`, today's and last week's) compare assertion by assertion.
        """
        for name in names:
            self.assertions.append(Assertion(name, False, f"not checked: {why}"))

    def equal(self, name: str, expected: object, observed: object) -> bool:
        ok = bool(expected == observed)
        detail = f"{observed!r}" if ok else f"expected {expected!r}, observed {observed!r}"
        self.assertions.append(Assertion(name, ok, detail, "equal", plain(expected), plain(observed)))
        return ok

    def within(self, name: str, value: float, low: float, high: float) -> bool:
        ok = bool(low <= value <= high)
        detail = f"{value!r} {'in' if ok else 'NOT in'} [{low}, {high}]"
        self.assertions.append(Assertion(name, ok, detail, "within", [plain(low), plain(high)], plain(value)))
        return ok

    def ladder(self, name: str, conn, segments: list, pattern: list[str]) -> bool:
        """Match `segments` (of connection `conn`) one to one against the pattern lines."""
        observed = [describe(conn, seg) for seg in segments]
        problems = []
        bindings: dict[str, int] = {}
        for i, line in enumerate(pattern):
            if i >= len(segments):
                problems.append(i)
                continue
            if not _matches(line, conn, segments[i], bindings):
                problems.append(i)
        if len(segments) > len(pattern):
            problems.extend(range(len(pattern), len(segments)))
        ok = not problems
        if ok:
            detail = "; ".join(observed)
        else:
            rows = max(len(pattern), len(observed))
            width = max([len("expected")] + [len(p) for p in pattern])
            lines = [f"   {'expected':<{width}}  observed"]
            for i in range(rows):
                exp = pattern[i] if i < len(pattern) else "(nothing)"
                obs = observed[i] if i < len(observed) else "(nothing)"
                mark = "✗" if i in problems else " "
                lines.append(f" {mark} {exp:<{width}}  {obs}")
            detail = "\n".join(lines)
        self.assertions.append(Assertion(name, ok, detail, "ladder", list(pattern), observed, tuple(problems)))
        return ok


def check_ladder_lines(pattern: list[str]) -> None:
    """Raise ValueError naming the first line that is not in the ladder language — before any run.

    A claim file's ladder is read long before there are segments to match it against; a typo must
    be refused then, not found after a minute of emulation.
    """
    bound: set[str] = set()
    for line in pattern:
        words = line.split()
        if len(words) < 3 or words[1] != ">" or words[0] not in ("client", "server"):
            raise ValueError(f"bad ladder line {line!r}: write 'client > S. seq=x ack=y+1'")
        if not set(words[2]) <= set("FSRPUEW.") or not words[2]:
            raise ValueError(f"bad flags {words[2]!r} in ladder line {line!r}: tcpdump's letters (S, S., ., F., R.)")
        for term in words[3:]:
            m = _TERM.match(term)
            if not m:
                raise ValueError(f"bad term {term!r} in ladder line {line!r}: seq=…, ack=…, len=…")
            _field, op, ref, _sign, _offset = m.groups()
            if not ref.isdigit() and ref not in bound:
                if op != "=":
                    raise ValueError(f"{ref} is used before it is bound in {line!r}")
                bound.add(ref)


def describe(conn, seg) -> str:
    """One observed segment in the pattern's own notation (absolute numbers)."""
    return f"{conn.side(seg)} > {flag_text(seg.flags):<3}seq={seg.seq} ack={seg.ack} len={seg.payload_len}"


def _matches(line: str, conn, seg, bindings: dict[str, int]) -> bool:
    words = line.split()
    if len(words) < 3 or words[1] != ">":
        raise ValueError(f"bad ladder line {line!r}: write 'client > S. seq=x ack=y+1'")
    if words[0] != conn.side(seg):
        return False
    want_flags = words[2]
    observed_flags = flag_text(seg.flags if "P" in want_flags else seg.flags & ~PSH_BIT)
    if want_flags != observed_flags:
        return False
    values = {"seq": seg.seq, "ack": seg.ack, "len": seg.payload_len}
    for term in words[3:]:
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"bad term {term!r} in ladder line {line!r}")
        field_name, op, ref, sign, offset = m.groups()
        value = values[field_name]
        if ref.isdigit():
            expected = int(ref)
        elif ref not in bindings:
            if op != "=":
                raise ValueError(f"{ref} is used before it is bound in {line!r}")
            # first met with an offset (`ack=g+1`): bound so that the term holds, as if `seq=g` came first
            shift = 0 if not sign else (-int(offset) if sign == "+" else int(offset))
            bindings[ref] = (value + shift) % 2**32 if field_name != "len" else value + shift
            continue
        else:
            expected = bindings[ref]
        if sign:
            expected = expected + int(offset) if sign == "+" else expected - int(offset)
        if field_name != "len":
            expected %= 2**32
        if op == "=" and value != expected:
            return False
        if op == ">" and not value > expected:
            return False
        if op == "<" and not value < expected:
            return False
    return True


# The lecture's two pictures, as ladder lines (relative to whatever x, y, f, g the capture shows)
THREE_WAY_HANDSHAKE = [
    "client > S  seq=x ack=0 len=0",
    "server > S. seq=y ack=x+1 len=0",
    "client > .  seq=x+1 ack=y+1 len=0",
]
FOUR_WAY_CLOSE = [
    "client > F. seq=f len=0",
    "server > .  ack=f+1 len=0",
    "server > F. seq=g",
    "client > .  ack=g+1 len=0",
]


def closing_segments(conn) -> list:
    """The segments from the first FIN or RST on: the close, as the lecture draws it."""
    segs = conn.segments
    start = next((i for i, s in enumerate(segs) if s.fin or s.rst), len(segs))
    return segs[start:]


def states_of(ev, side: str) -> list[str]:
    return [s["state"] for s in ev.states(side)]


def assert_ladder(conn, segments: list, pattern: list[str], name: str = "ladder") -> None:
    """`Expect.ladder` for a plain pytest test: raise AssertionError with the side-by-side table.

    A bare `assert conn.close_kind == "three-way"` can only say which word differed; the table
    says which segment of the exchange went otherwise, as the lecture's ladder diagram would.
    """
    __tracebackhide__ = True  # pytest points at the test's line, not at this helper
    if conn is None:
        raise AssertionError(f"{name}: there is no connection to match (not in the capture?)")
    expect = Expect()
    expect.ladder(name, conn, segments, pattern)
    assert_passed(expect)


class HasAssertions(Protocol):
    assertions: list[Assertion]


def assert_passed(expect: HasAssertions) -> None:
    """Raise AssertionError naming every failed assertion, with its expected vs. observed.

    `expect` is an Expect or a verdict (`netbed_lab.check(...)`): a pytest test reuses a catalog
    experiment's `check(evidence, expect)` unchanged.
    """
    __tracebackhide__ = True
    if not expect.assertions:
        raise AssertionError("nothing was asserted")
    failed = [a for a in expect.assertions if not a.passed]
    if failed:
        raise AssertionError("\n".join(line for a in failed for line in a.lines()))
