"""Kernel TCP state changes, recorded with bpftrace on the tracepoint `sock:inet_sock_set_state`.

bpftrace runs in the root namespace (it sees every namespace) inside a private mount namespace of
its own, where it may mount tracefs without changing the machine's mounts. Its raw log is saved in
the run folder; `netbed.trace.kernel_states` turns it into per-socket timelines, offline too.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SCRIPT = Path(__file__).with_name("states.bt")
LOG = "states.txt"
# A fixed program, no user text: mount tracefs where it is not mounted, then become bpftrace.
_LAUNCH = ("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; "
           'exec bpftrace -B line "$0"')


class StateTracer:
    """`with StateTracer(run_dir) as tracer:` — records while the block runs; `tracer.facts()` after."""

    def __init__(self, out: Path, timeout: float = 20.0) -> None:
        self.path = out / LOG
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.source = "bpftrace"
        self.error = ""
        # bpftrace stamps events with CLOCK_MONOTONIC; pcaps use the wall clock
        self.clock_offset = time.time() - time.monotonic()

    def start(self) -> StateTracer:
        if shutil.which("bpftrace") is None or shutil.which("unshare") is None:
            self.source, self.error = "unavailable", "bpftrace is not installed"
            return self
        self._log = open(self.path, "w")
        self.proc = subprocess.Popen(["unshare", "-m", "sh", "-c", _LAUNCH, str(SCRIPT)], stdout=self._log,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
        return self

    def wait_ready(self) -> bool:
        """Block until the probes are attached (the script's BEGIN line), or give up."""
        if self.proc is None:
            return False
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if b"READY" in self.path.read_bytes():
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.error = (self._stop() or "bpftrace did not start").strip().splitlines()[-1]
        self.source = "unavailable"
        return False

    def stop(self) -> None:
        self._settle()
        self._stop()

    def mark(self) -> int:
        """Where the log ends now: with `copy_since`, one long-lived tracer serves many runs
        (bpftrace takes about a second to attach; a run of the whole catalog attaches it once)."""
        self._settle()
        return self.path.stat().st_size if self.path.exists() else 0

    def copy_since(self, mark: int, dest: Path) -> None:
        """Write what was logged after `mark` into `dest` (a run folder's own states.txt)."""
        self._settle()
        with open(self.path, "rb") as src:
            src.seek(mark)
            dest.write_bytes(src.read())

    def _settle(self, limit: float = 5.0) -> None:
        """Make sure every state change that happened before now is in the log.

        bpftrace reads per-CPU ring buffers: on each CPU in turn, open and close a listening socket
        on loopback (root namespace, so no run's timeline sees it) and wait until that change is
        logged — everything that CPU reported earlier has been written by then.
        """
        if self.proc is None or self.proc.poll() is not None:
            return
        ports = []
        mask = os.sched_getaffinity(0)
        try:
            for cpu in sorted(mask):
                os.sched_setaffinity(0, {cpu})
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    sock.listen(1)
                    ports.append(sock.getsockname()[1])
        finally:
            os.sched_setaffinity(0, mask)
        wanted = [f" 127.0.0.1 {port} 0.0.0.0 0 10 7".encode() for port in ports]  # LISTEN -> CLOSED
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            log = self.path.read_bytes()
            if all(w in log for w in wanted):
                return
            time.sleep(0.005)

    def _stop(self) -> str:
        if self.proc is None:
            return ""
        err = ""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            _, err_bytes = self.proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            _, err_bytes = self.proc.communicate()
        err = err_bytes.decode(errors="replace") if err_bytes else ""
        self.proc = None
        self._log.close()
        return err

    def __enter__(self) -> StateTracer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def facts(self) -> dict:
        return {"source": self.source, "file": LOG if self.source == "bpftrace" else None,
                "clock_offset": self.clock_offset, "error": self.error or None}
