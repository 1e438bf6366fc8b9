"""A claim file as an Experiment: `run(lab)` starts the programs, `check(ev, expect)` asserts.

`check` reads only the run folder — the captures, the kernel's state log, what `ss` listed and the
programs' exit status and output — so `netbed check` re-checks a claim run offline, like any other.
Each `[expect]` key becomes exactly one assertion, named after the key, made with the `Expect`
methods the catalog uses. Before them come the assertions every claim file gets, about the programs
themselves: the build, the server listening where it should, the server running through the
exchange, the client ending in time, the client reaching the server. A failed one reads as the
reason in one line: `server: listens on tcp port 9000: it listens on 0.0.0.0:9001 instead`.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from netbed.claims import programs as watch
from netbed.claims.file import Claim
from netbed.expect import Expect, closing_segments, states_of
from netbed.experiment import Evidence, Experiment, Lab
from netbed.trace.model import Endpoint

CLAIM_FACT = "claim"  # evidence facts key: the claim file, its text and its build, saved with the run
RUN_FACT = "claim_run"
WRONG_PORT_GRACE = 1.0  # seconds a server may listen elsewhere only before it is taken to be on the wrong port
SETTLE = 2.0  # seconds the exchange's sockets get to finish their close once the client is done
LINE = 160  # characters of a program's output quoted in a one-line reason
CONNECTION_KEYS = ("handshake", "close", "initiator", "client_bytes", "server_bytes", "half_close_bytes",
                   "client_states", "server_states", "ladder")


def claim_of_run(evidence: Evidence) -> dict | None:
    """The saved claim of a run folder made from a claim file (None for a catalog run)."""
    return evidence.facts.get(CLAIM_FACT)


@dataclass(frozen=True)
class ClaimExperiment(Experiment):
    spec: Claim | None = None
    build: dict | None = None  # the build's outcome, when the claim file has one
    source: str = ""  # the claim file's text, kept with the run
    missing: dict = field(default_factory=dict)  # section -> why its program cannot start (after the build)

    @classmethod
    def of(cls, claim: Claim, build: dict | None = None, missing: dict | None = None,
           source: str | None = None) -> ClaimExperiment:
        """The claim file as an experiment: named as the file names itself, on its one topology."""
        return cls(claim.label, f"claim file {claim.path.name}", f"{claim.folder.name}/{claim.path.name}",
                   (claim.topology,), None, spec=claim, build=build,
                   source=_read(claim) if source is None else source, missing=missing or {})

    @classmethod
    def from_json(cls, data: dict) -> ClaimExperiment:
        return cls.of(Claim.from_json(data["file"]), data.get("build"), data.get("missing"), data.get("source", ""))

    def saved(self) -> dict:
        """What the run folder keeps of the claim (evidence facts), for `from_json` to rebuild it."""
        return {"file": self.spec.to_json(), "build": self.build, "source": self.source, "missing": self.missing}

    # -- run: live ------------------------------------------------------------------------------
    def run(self, lab: Lab) -> None:
        claim = self.spec
        lab.facts[CLAIM_FACT] = self.saved()
        values = {**addresses(lab), "port": str(claim.server.port)}
        owner = watch.Owner.of(claim.folder)
        facts: dict[str, Any] = {"owner": owner.to_json(), "addresses": values, "port": claim.server.port,
                                 "unprivileged_ports": False}
        lab.facts[RUN_FACT] = facts
        server_host, client_host = lab.server_host, lab.client_host
        if claim.server.port < 1024 and owner.uid != 0:
            # the per-namespace knob: the owner may bind a low port in this host only, root is not needed
            lab.run(server_host, ["sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"])
            facts["unprivileged_ports"] = True
        server = watch.start(lab, "server", owner.wrap(claim.server.argv(values), claim.folder), server_host)
        facts["server"] = watch.wait_listening(lab, server, claim.server.port, claim.client.timeout,
                                               WRONG_PORT_GRACE)
        client = watch.start(lab, "client", owner.wrap(claim.client.argv(values), claim.folder), client_host)
        facts["client"] = watch.wait_client(client, server, claim.client.timeout)
        facts["left_busy"] = watch.settle(lab, (client_host, server_host), claim.server.port, SETTLE)
        server.poll()
        server.end()

    # -- check: offline -------------------------------------------------------------------------
    def check(self, ev: Evidence, expect: Expect) -> None:
        claim = self.spec
        if not _built(self, expect):
            return
        run = ev.facts.get(RUN_FACT) or {}
        conn = main_connection(ev, claim)
        if conn is not None and "client" in ev.programs and not ev.programs["client"].get("local"):
            ev.programs["client"]["local"] = [conn.client.ip, conn.client.port]  # so its kernel states are found
        _server_listens(ev, claim, run, expect)
        _server_lifetime(ev, run, conn, expect)
        _client_ends(ev, claim, run, expect)
        _client_reaches_server(ev, claim, run, conn, expect)
        for key, value in claim.expect.items():
            _expect_key(ev, claim, key, value, conn, expect)


def _read(claim: Claim) -> str:
    try:
        return claim.path.read_text()
    except OSError:
        return ""


def addresses(lab: Lab) -> dict[str, str]:
    """The placeholders' values: the topology's addresses of the two hosts, and the port."""
    server, client = lab.tb.spec(lab.server_host).interfaces[0], lab.tb.spec(lab.client_host).interfaces[0]
    return {"server_ip": lab.ip(lab.server_host), "server_ip6": server.ip6 or "",
            "client_ip": lab.ip(lab.client_host), "client_ip6": client.ip6 or ""}


def targets(ev: Evidence, claim: Claim) -> set[Endpoint]:
    values = (ev.facts.get(RUN_FACT) or {}).get("addresses", {})
    return {Endpoint(values[k], claim.server.port) for k in ("server_ip", "server_ip6") if values.get(k)}


def connections(ev: Evidence, claim: Claim) -> list:
    """The client-side capture's connections from the client's host to the server's address and port."""
    values = (ev.facts.get(RUN_FACT) or {}).get("addresses", {})
    if "client" not in ev.points():
        return []
    goal = targets(ev, claim)
    own = {values.get("client_ip"), values.get("client_ip6")}
    return [c for c in ev.trace("client").connections if c.server in goal and c.client.ip in own]


def main_connection(ev: Evidence, claim: Claim):
    """The first connection the client made to the server (what handshake, close, … are about)."""
    found = connections(ev, claim)
    return found[0] if found else None


def _built(exp: ClaimExperiment, expect: Expect) -> bool:
    if exp.build is not None:
        ok = exp.build.get("exit") == 0
        detail = f"exit {exp.build.get('exit')} after {exp.build.get('seconds', 0):.1f} s"
        if not ok:
            detail = f"{_status(exp.build.get('exit'), exp.build.get('timed_out'))}: {_said(exp.build)}"
        if not expect.that(f"build: {exp.spec.build}", ok, detail):
            return False
    for section, why in exp.missing.items():
        expect.that(f"{section}: its program exists", False, why)
    return not exp.missing


def _status(code: int | None, timed_out: bool = False) -> str:
    if timed_out:
        return "still running at its timeout: killed"
    if code is None:
        return "did not end"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def _said(report: dict | None) -> str:
    """What a program printed, as one quoted line (its last lines, stdout and stderr)."""
    if not report:
        return "(no output)"
    lines = [line.strip() for text in (report.get("stdout", ""), report.get("stderr", ""))
             for line in text.splitlines() if line.strip()]
    if not lines:
        return "it printed nothing"
    text = " ⏎ ".join(lines[-3:])
    return "it printed " + repr(text if len(text) <= LINE else "…" + text[-LINE:])


def _server_listens(ev: Evidence, claim: Claim, run: dict, expect: Expect) -> None:
    port = claim.server.port
    seen = run.get("server") or {}
    name = f"server: listens on tcp port {port} where {ev.facts.get('client_host')} can reach it"
    listening = seen.get("listening") or []
    if not listening:
        others = [a for a in seen.get("listeners", []) if watch.port_of(a) != port]
        report = ev.programs.get("server")
        if seen.get("gave_up") == "exited":
            detail = f"it ended ({_status(report and report.get('exit'))}) before listening; {_said(report)}"
        elif others:
            detail = f"it listens on {', '.join(others)} instead; {_said(report)}"
        else:
            detail = f"nothing listened on any port after {seen.get('waited', 0):.1f} s; {_said(report)}"
        expect.that(name, False, detail)
        return
    values = run.get("addresses", {})
    reachable = {"0.0.0.0", "[::]", "*", values.get("server_ip"), f"[{values.get('server_ip6')}]",
                 f"[::ffff:{values.get('server_ip')}]"}
    good = [a for a in listening if a.rsplit(":", 1)[0].split("%")[0] in reachable]
    detail = f"listens on {', '.join(listening)}"
    if not good:
        detail += f", which {ev.facts.get('client_host')} cannot reach (it connects to {values.get('server_ip')})"
    expect.that(name, bool(good), detail)


def _server_lifetime(ev: Evidence, run: dict, conn, expect: Expect) -> None:
    """A server is stopped by netbed after the exchange; ending before that by a signal is a crash, and
    leaving before its connection was over (or before there was one) is exiting early."""
    name = "server: runs through the exchange without crashing or exiting early"
    report = ev.programs.get("server")
    if report is None:
        expect.that(name, False, "the server was never started")
        return
    if report.get("stopped_by_netbed"):
        expect.that(name, True, f"ran until netbed stopped it after the exchange ({report['stopped_by_netbed']})")
        return
    code, ended = report.get("exit"), report.get("exited_at")
    syn = conn.start if conn is not None else None
    when = ""
    if ended is not None and syn is not None:
        gap = ended - syn
        when = f" {abs(gap):.2f} s {'after' if gap >= 0 else 'before'} the client's SYN"
    if code is not None and code < 0:
        expect.that(name, False, f"crashed: {_status(code)}{when}; {_said(report)}")
    elif syn is None or ended is not None and ended < syn:
        expect.that(name, False, f"exited early ({_status(code)}){when or ' before the client connected'}; "
                                 f"{_said(report)}")
    elif conn.close_kind in ("reset", "open") and conn.close_initiator in ("server", None):
        # its own exit ended the connection: it left before the exchange was over and the kernel cleaned up
        expect.that(name, False, f"exited early ({_status(code)}){when}, before the connection was over (close: "
                                 f"{conn.close_kind}); {_said(report)}")
    else:
        expect.that(name, True, f"exited by itself ({_status(code)}){when}, after a {conn.close_kind} close")


def _client_ends(ev: Evidence, claim: Claim, run: dict, expect: Expect) -> None:
    """In time, and — unless `client_exit` says how it must end — without a crash (a signal)."""
    timeout = claim.client.timeout
    judged = "client_exit" in claim.expect
    name = f"client: runs to its end within {timeout:g} s" + ("" if judged else " without crashing")
    report = ev.programs.get("client") or {}
    seen = run.get("client") or {}
    code = report.get("exit")
    if seen.get("timed_out"):
        expect.that(name, False, f"still running after {timeout:g} s: killed ({report.get('stopped_by_netbed')}); "
                                 f"{_said(report).replace('it printed', 'it had printed')}")
    elif code is not None and code < 0 and not judged:
        expect.that(name, False, f"crashed: {_status(code)} after {seen.get('ran', 0):.2f} s; {_said(report)}")
    else:
        expect.that(name, True, f"{_status(code)} after {seen.get('ran', 0):.2f} s")


def _client_reaches_server(ev: Evidence, claim: Claim, run: dict, conn, expect: Expect) -> None:
    values = run.get("addresses", {})
    goal = f"{values.get('server_ip')}:{claim.server.port}"
    name = f"client: connects to the server at {goal}"
    if conn is not None:
        expect.that(name, True, f"{conn.client} > {conn.server}, handshake {conn.handshake}")
        return
    expect.that(name, False, f"no connection to {goal} in the client-side capture; {_elsewhere(ev)}")


def _elsewhere(ev: Evidence) -> str:
    """Where the client's host did connect instead: the kernel's own word (which also sees a connection
    over loopback that no capture on the wire can), and what the client-side capture holds."""
    host = ev.facts.get("client_host")
    netns = next((int(ino) for ino, node in (ev.facts.get("netns") or {}).items() if node == host), None)
    tried = [f"{e.remote}" for e in ev.state_changes() if e.netns == netns and e.new == "SYN_SENT"]
    conns = ev.trace("client").connections if "client" in ev.points() else []
    captured = ", ".join(f"{c.client} > {c.server} (handshake {c.handshake})" for c in conns[:3])
    if tried:
        return f"the kernel saw {host} connect to {', '.join(dict.fromkeys(tried))}; " + \
            (f"captured: {captured}" if captured else "nothing captured")
    if conns:
        return f"captured instead: {captured}"
    return f"{host} opened no TCP connection at all"


def _expect_key(ev: Evidence, claim: Claim, key: str, value: Any, conn, expect: Expect) -> None:
    """One `[expect]` key, one assertion."""
    report = ev.programs.get("client") or {}
    if key == "client_exit":
        code = report.get("exit")
        expect.that(key, code == value, f"{_status(code)}" if code == value else
                    f"expected exit {value}, observed {_status(code)}; {_said(report)}")
        return
    if key == "client_output":
        out = report.get("stdout", "")
        expect.that(key, value in out, f"{value!r} is in its output" if value in out else
                    f"{value!r} is not in its output; {_said({'stdout': out})}")
        return
    if key == "connections":
        expect.equal(key, value, len(connections(ev, claim)))
        return
    if conn is None:
        expect.that(key, False, f"expected {value!r}, but no connection from the client to the server was captured")
        return
    if key == "handshake":
        expect.equal(key, value, conn.handshake)
    elif key == "close":
        expect.equal(key, value, conn.close_kind)
    elif key == "initiator":
        expect.equal(key, value, conn.close_initiator)
    elif key in ("client_bytes", "server_bytes"):
        side = "bytes_client" if key == "client_bytes" else "bytes_server"
        expect.equal(key, value, sum(getattr(c, side) for c in connections(ev, claim)))
    elif key == "half_close_bytes":
        expect.equal(key, value, conn.half_close_bytes)
    elif key in ("client_states", "server_states"):
        side = key.split("_")[0]
        observed = states_of(ev, side)
        source = (ev.facts.get("states") or {}).get("source")
        ok = _in_order(value, observed)
        shown = " → ".join(observed) or f"none recorded (state source: {source})"
        expect.that(key, ok, shown if ok else f"expected {' → '.join(value)} in this order, observed {shown}")
    elif key == "ladder":
        expect.ladder(key, conn, closing_segments(conn)[:len(value)], value)


def _in_order(wanted: list[str], observed: list[str]) -> bool:
    """Is `wanted` a subsequence of `observed` (in this order, gaps allowed)?"""
    it = iter(observed)
    return all(any(state == seen for seen in it) for state in wanted)
