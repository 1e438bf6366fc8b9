"""Someone else's programs in the emulated hosts: started as the owner of their folder, watched, stopped.

A student's program may crash, hang, print without flushing, listen on the wrong port or never
listen. Everything here is about seeing that from the outside — the process's exit status, its
output (unbuffered through `stdbuf`, so a program killed at its timeout still shows what it had
printed), and the kernel's socket tables (`ss` in the host's namespace) — never by asking the
program, and never through a shell.
"""
from __future__ import annotations

import os
import pwd
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from netbed.experiment import Lab
from netbed.programs import Program

POLL = 0.01  # seconds between looks at a process or a socket table
GRACE = 1.0  # seconds a program has after SIGTERM before SIGKILL
OUTPUT_TAIL = 4000  # characters of each stream kept in the run's evidence
# TCP states in which a connection still has something to do (ss's names); TIME-WAIT and FIN-WAIT-2 do not
BUSY_STATES = ("ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "CLOSE-WAIT", "CLOSING", "LAST-ACK")


@dataclass(frozen=True)
class Owner:
    """Who the programs run as: the owner of the claim file's folder (root only if root owns it)."""

    uid: int
    gid: int
    user: str
    home: str
    known: bool  # has a passwd entry (then its groups are set up too)

    @classmethod
    def of(cls, folder: Path) -> Owner:
        st = folder.stat()
        try:
            pw = pwd.getpwuid(st.st_uid)
        except KeyError:
            return cls(st.st_uid, st.st_gid, str(st.st_uid), str(folder), False)
        return cls(st.st_uid, st.st_gid, pw.pw_name, pw.pw_dir, True)

    def wrap(self, argv: list[str], folder: Path) -> list[str]:
        """argv run in `folder` as this user, stdout and stderr unbuffered (no shell anywhere)."""
        inner = ["env", "-C", str(folder), "PYTHONUNBUFFERED=1"]
        if self.uid in (0, os.geteuid()):  # root owns the folder, or we already are its owner
            return [*inner, "stdbuf", "-o0", "-e0", *argv]
        groups = "--init-groups" if self.known else "--clear-groups"
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", groups, *inner, f"HOME={self.home}",
                f"USER={self.user}", f"LOGNAME={self.user}", "stdbuf", "-o0", "-e0", *argv]

    def to_json(self) -> dict:
        return {"uid": self.uid, "gid": self.gid, "user": self.user}


@dataclass
class Watched(Program):
    """A program whose output is read all along (a chatty program never blocks on a full pipe) and
    whose end — by itself, or stopped by netbed — is recorded with the wall-clock time it was seen."""

    exited_at: float | None = None  # time.time() when it was seen to have exited by itself
    stopped_by_netbed: str | None = None  # "SIGTERM" or "SIGKILL" when netbed ended it
    _chunks: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # one reader per stream, keeping whatever arrives: a child the program left behind may hold the
        # pipe open long after it ended, and what it printed must not wait for that child
        self._readers = []
        for stream in ("stdout", "stderr"):
            sink = self._chunks[stream] = []
            reader = threading.Thread(target=_drain, args=(getattr(self.proc, stream), sink), daemon=True)
            reader.start()
            self._readers.append(reader)

    def output(self, stream: str) -> str:
        return b"".join(self._chunks[stream]).decode(errors="replace")

    def poll(self) -> bool:
        """True while it runs; notes when it was first seen to have exited."""
        if self.proc.poll() is None:
            return True
        if self.exited_at is None and self.stopped_by_netbed is None:
            self.exited_at = time.time()
        return False

    def end(self) -> None:
        """SIGTERM its process group, then SIGKILL after a grace period; a no-op if it has exited."""
        if not self.poll():
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self.stopped_by_netbed = sig.name
            try:
                if getattr(self.proc, "netbed_remote", False):  # on a cluster server: signalled there
                    self.proc.send_signal(sig)
                else:
                    os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=GRACE)
                return
            except subprocess.TimeoutExpired:
                continue

    def report(self, timeout: float = 30.0) -> dict:
        if self._report is None:
            self.end()
            for reader in self._readers:  # a child it left behind may hold a pipe: do not wait on it
                reader.join(min(timeout, 2 * GRACE))
            out, err = self.output("stdout"), self.output("stderr")
            self._report = {"exit": self.proc.returncode, "node": self.node, "argv": self.argv,
                            "stdout": out[-OUTPUT_TAIL:], "stderr": err[-OUTPUT_TAIL:],
                            "exited_at": self.exited_at, "stopped_by_netbed": self.stopped_by_netbed}
        return self._report


def _drain(stream, sink: list[bytes]) -> None:
    """Keep every chunk of a pipe as it comes, until its end."""
    while chunk := stream.read1(65536):
        sink.append(chunk)


def start(lab: Lab, name: str, argv: list[str], host: str) -> Watched:
    """Start argv (already wrapped for its user) in `host`; the lab keeps it among its programs."""
    prog = Watched(name, host, lab.tb.popen(host, argv), argv, raw=True)  # bytes: decoded with errors="replace"
    lab.programs[name] = prog
    return prog


def listeners(lab: Lab, host: str) -> list[str]:
    """The local addresses of every listening TCP socket in `host` ("0.0.0.0:9000", "[::]:80", …)."""
    lines = lab.run(host, ["ss", "-ltnH"], check=False).stdout.splitlines()
    return [line.split()[3] for line in lines if len(line.split()) >= 5]


def port_of(address: str) -> int | None:
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def wait_listening(lab: Lab, prog: Watched, port: int, timeout: float, wrong_port_grace: float) -> dict:
    """Wait until something in the server's host listens on `port`; say what was seen instead if not.

    Gives up early when the program has exited, or when it has listened on other ports only for
    `wrong_port_grace` seconds (a server on the wrong port does not cost the whole timeout).
    """
    began = time.monotonic()
    other_since = None
    while True:
        seen = listeners(lab, prog.node)
        mine = [a for a in seen if port_of(a) == port]
        now = time.monotonic()
        if mine:
            return {"listening": mine, "listeners": seen, "waited": round(now - began, 3), "gave_up": None}
        if not prog.poll():
            return {"listening": [], "listeners": seen, "waited": round(now - began, 3), "gave_up": "exited"}
        if seen:
            other_since = other_since or now
            if now - other_since >= wrong_port_grace:
                return {"listening": [], "listeners": seen, "waited": round(now - began, 3),
                        "gave_up": "other ports"}
        if now - began >= timeout:
            return {"listening": [], "listeners": seen, "waited": round(now - began, 3), "gave_up": "timeout"}
        time.sleep(POLL)


def wait_client(client: Watched, server: Watched, timeout: float) -> dict:
    """Let the client run up to `timeout` seconds (noting when the server ends); kill it after that."""
    began = time.monotonic()
    while client.poll() and time.monotonic() - began < timeout:
        server.poll()
        time.sleep(POLL)
    timed_out = client.poll()
    if timed_out:
        client.end()
    server.poll()
    return {"timed_out": timed_out, "ran": round(time.monotonic() - began, 3)}


def busy_sockets(lab: Lab, hosts: tuple[str, ...], port: int) -> list[str]:
    """`ss` lines of sockets to or from `port` that are still in the middle of something."""
    busy = []
    for host in hosts:
        for line in lab.run(host, ["ss", "-tanH"], check=False).stdout.splitlines():
            cols = line.split()
            if len(cols) >= 5 and cols[0] in BUSY_STATES and port in (port_of(cols[3]), port_of(cols[4])):
                busy.append(f"{host}: {' '.join(cols[:1] + cols[3:5])}")
    return busy


def settle(lab: Lab, hosts: tuple[str, ...], port: int, timeout: float) -> list[str]:
    """Wait until the exchange's sockets are done (at most `timeout`); return those that are not."""
    began = time.monotonic()
    while True:
        busy = busy_sockets(lab, hosts, port)
        if not busy or time.monotonic() - began >= timeout:
            return busy
        time.sleep(POLL)
