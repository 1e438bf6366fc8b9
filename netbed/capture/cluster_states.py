"""Kernel TCP states across servers (`--cluster`): the state tracer on every server that holds a host
of interest, its records brought back and joined into the run's one states.txt.

Each server runs netbed's own bpftrace program (states.bt, at the same path as here) as root in its
own namespaces; its lines stream back over the run's shared ssh connection into a file here. A
server's bpftrace sees that server's whole kernel, so only the lines of the network namespaces of
the nodes placed on that server are kept (on emulated servers, which share one kernel, every tracer
sees every node: without that cut each event would be counted once per server). bpftrace stamps
events with the server's CLOCK_MONOTONIC: each server's lines are moved onto this machine's
monotonic clock through the two machines' wall clocks (time.time() - time.monotonic() on each, read
at once on the machine itself), so that they join the captures' wall-clock times as on one machine —
which assumes the servers' wall clocks agree (NTP), as the captures' times already do.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from netbed.capture.states import _LAUNCH, LOG, SCRIPT, _only
from netbed.network.cluster import ClusterTestbed
from netbed.pace import patience

# Prints this machine's wall-minus-monotonic clock offset. Then, per CPU, opens and closes a listening
# socket on loopback in the server's own namespace (no run's node sees it): once the tracer logged
# those, everything it saw earlier on that CPU has been written (as StateTracer._settle does here).
_OFFSET = "import time; print(time.time() - time.monotonic())"
_SETTLE = ("import os, socket\n"
           "for cpu in sorted(os.sched_getaffinity(0)):\n"
           "    os.sched_setaffinity(0, {cpu})\n"
           "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
           "    print(s.getsockname()[1]); s.close()\n")
SETTLE_LIMIT = 5.0


class ServerTracer:
    """bpftrace on one server; its output copied into `path` here as it comes."""

    def __init__(self, tb: ClusterTestbed, server: str, path: Path, timeout: float) -> None:
        self.tb, self.server, self.path, self.timeout = tb, server, path, timeout
        self.proc: subprocess.Popen | None = None
        self.error = ""
        self.offset = 0.0
        self._copier: threading.Thread | None = None

    def start(self) -> None:
        out = self.tb.server_run(self.server, ["python3", "-c", _OFFSET])
        try:
            self.offset = float(out.stdout.strip())
        except ValueError:
            self.error = f"{self.server}: cannot read its clock: {(out.stderr or out.stdout).strip()[-200:]}"
            return
        self.proc = self.tb.server_popen(self.server, ["unshare", "-m", "sh", "-c", _LAUNCH, str(SCRIPT)],
                                         stderr=subprocess.PIPE)
        log = open(self.path, "wb")

        def copy() -> None:
            with log:
                while chunk := self.proc.stdout.read1(65536):
                    log.write(chunk)
                    log.flush()

        self._copier = threading.Thread(target=copy, daemon=True)
        self._copier.start()

    def ready(self) -> bool | None:
        """True once attached, False if it failed, None while it is still attaching."""
        if self.proc is None:
            return False
        if b"READY" in self.path.read_bytes():
            return True
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace").strip()
            self.error = f"{self.server}: " + ((err.splitlines() or ["bpftrace did not start"])[-1])
            return False
        return None

    def settle(self) -> None:
        """Wait until everything the tracer saw before now is in the file (see _SETTLE)."""
        if self.proc is None or self.proc.poll() is not None or self.tb.connections is None:
            return
        out = self.tb.server_run(self.server, ["python3", "-c", _SETTLE])
        wanted = [f" 127.0.0.1 {port} 0.0.0.0 0 10 7".encode() for port in out.stdout.split()]
        deadline = time.monotonic() + patience(SETTLE_LIMIT)
        while wanted and time.monotonic() < deadline:
            log = self.path.read_bytes()
            if all(w in log for w in wanted):
                return
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                try:
                    self.proc.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    subprocess.Popen.kill(self.proc)  # the local ssh: the server went away
                    self.proc.wait()
        if self._copier is not None:
            self._copier.join(self.timeout)
        self.proc = None


class ClusterStateTracer:
    """`StateTracer`'s part in a run, over the servers that hold `hosts` (see the module's docstring)."""

    def __init__(self, out: Path, tb: ClusterTestbed, hosts: list[str], timeout: float = 20.0) -> None:
        self.out, self.tb = out, tb
        self.path = out / LOG
        self.raw = out / "states-servers"
        self.servers = sorted({tb.server_of(h) for h in hosts}, key=tb.cluster.servers.index)
        self.source = "bpftrace"
        self.error = ""
        self.clock_offset = time.time() - time.monotonic()
        self.tracers = [ServerTracer(tb, s, self.raw / f"{s}.txt", timeout) for s in self.servers]
        self.timeout = timeout
        self.counts: dict[str, int] = {}

    def start(self) -> ClusterStateTracer:
        self.raw.mkdir(exist_ok=True)
        for tracer in self.tracers:
            tracer.start()
        return self

    def wait_ready(self) -> bool:
        deadline = time.monotonic() + patience(self.timeout)  # a slow machine attaches slowly
        while time.monotonic() < deadline:
            states = [t.ready() for t in self.tracers]
            if all(states):
                return True
            if False in states:
                break
            time.sleep(0.05)
        self.error = next((t.error for t in self.tracers if t.error), "bpftrace did not start on every server")
        self.source = "unavailable"
        self.stop()
        return False

    def stop(self, netns: dict[str, str] | None = None) -> None:
        """Stop every server's tracer; with `netns` (inode -> node), join their lines into states.txt."""
        for tracer in self.tracers:
            tracer.settle()
        for tracer in self.tracers:
            tracer.stop()
        if netns is not None and self.source == "bpftrace":
            self.path.write_bytes(self._join(netns))
        shutil.rmtree(self.raw, ignore_errors=True)

    def _join(self, netns: dict[str, str]) -> bytes:
        """Each server's lines of its own nodes' namespaces, on this machine's clock, in time order."""
        placement = self.tb.placement
        lines: list[tuple[int, bytes]] = []
        for tracer in self.tracers:
            own = {int(ino) for ino, node in netns.items() if placement.get(node) == tracer.server}
            shift = round((tracer.offset - self.clock_offset) * 1e9)
            kept = _only(tracer.path.read_bytes() if tracer.path.exists() else b"", own).splitlines(keepends=True)
            self.counts[tracer.server] = len(kept)
            for line in kept:
                parts = line.split(b" ", 2)
                if line.startswith(b"Lost ") or len(parts) < 3:
                    lines.append((0, line))
                    continue
                ns = int(parts[1]) + shift
                lines.append((ns, b"%s %d %s" % (parts[0], ns, parts[2])))
        lines.sort(key=lambda pair: pair[0])
        return b"".join(line for _, line in lines)

    def facts(self) -> dict:
        return {"source": self.source, "file": LOG if self.source == "bpftrace" else None,
                "clock_offset": self.clock_offset, "error": self.error or None,
                "servers": {t.server: {"clock_offset": t.offset, "lines": self.counts.get(t.server, 0)}
                            for t in self.tracers}}
