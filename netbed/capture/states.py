"""Kernel TCP state changes and congestion state, recorded with bpftrace.

Tracepoints: `sock:inet_sock_set_state` (state changes), `tcp:tcp_probe` (cwnd, ssthresh, srtt,
snd_nxt, snd_una, snd_wnd, rcv_wnd each time an established socket receives a segment) and
`tcp:tcp_retransmit_skb`. The tracer sees the whole machine's state changes (a run keeps only the lines
of its own namespaces, `keep_namespaces`, and bpftrace's own "Lost N events" lines, which say it fell
behind). tcp_probe and tcp_retransmit_skb fire for every segment of every connection on the machine
(a shared one runs other people's transfers too), so the program reports them only for the network
namespaces a run registered (`trace`, `forget`): the log holds the run's connections, and a busy
machine's traffic cannot make the tracer lose the run's events. The tracepoints' own fields (addresses,
ports, the packet mark) cannot tell runs apart — every netbed network uses the same addresses — so the
program reads each socket's namespace from the socket itself.

The tracer dies with the process that started it (the kernel's parent-death signal, set with
`setpriv --pdeathsig KILL` before bpftrace is executed): a SIGKILLed owner leaves no bpftrace behind.
Strictly, the kernel sends it when the *thread* that started it ends: start a tracer from a thread that
outlives it (netbed starts them from the main thread).
A caller may also mark it (`env`) so that `netbed clean` reclaims it.

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

from netbed.pace import patience

SCRIPT = Path(__file__).with_name("states.bt")
LOG = "states.txt"
# A fixed program, no user text: mount tracefs where it is not mounted, then become bpftrace.
_LAUNCH = ("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; "
           'exec bpftrace -B line "$0"')
# Listening on these ports inside a namespace registers it with the program (states.bt) or forgets it.
TRACE_PORT, FORGET_PORT = 1, 2
DIE_WITH_OWNER = ["setpriv", "--pdeathsig", "KILL"]  # survives exec: unshare, sh and bpftrace are one process


class StateTracer:
    """`with StateTracer(run_dir) as tracer:` — records while the block runs; `tracer.facts()` after."""

    def __init__(self, out: Path, timeout: float = 20.0, enabled: bool = True, env: dict[str, str] | None = None,
                 die_with_owner: bool = True) -> None:
        self.enabled = enabled  # NETBED_STATES=ss: use the sampling fallback on purpose
        self.env = env  # extra environment for bpftrace (a run's mark)
        self.die_with_owner = die_with_owner and shutil.which(DIE_WITH_OWNER[0]) is not None
        self.path = out / LOG
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.source = "bpftrace"
        self.error = ""
        self.script = SCRIPT
        self.congestion_error = ""  # why tcp_probe/tcp_retransmit_skb are not traced, on an older kernel
        # bpftrace stamps events with CLOCK_MONOTONIC; pcaps use the wall clock
        self.clock_offset = wall_minus_monotonic()

    def start(self) -> StateTracer:
        if not self.enabled or shutil.which("bpftrace") is None or shutil.which("unshare") is None:
            self.source = "unavailable"
            self.error = "bpftrace is not installed" if self.enabled else "NETBED_STATES=ss"
            return self
        self._log = open(self.path, "w")
        self._owner = os.getpid()
        argv = (DIE_WITH_OWNER if self.die_with_owner else []) + ["unshare", "-m", "sh", "-c", _LAUNCH,
                                                                  str(self.script)]
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env={**os.environ, **self.env} if self.env else None)
        return self

    def trace(self, netns_fds: list[int]) -> None:
        """Report tcp_probe and retransmissions in these network namespaces from now on (a run's nodes)."""
        _listen_in(netns_fds, TRACE_PORT)

    def forget(self, netns_fds: list[int]) -> None:
        """No more reports from these namespaces (before they go: their inode numbers are reused)."""
        _listen_in(netns_fds, FORGET_PORT)

    def wait_ready(self) -> bool:
        """Block until the probes are attached (the script's BEGIN line), or give up."""
        if self.proc is None:
            return False
        deadline = time.monotonic() + patience(self.timeout)
        while time.monotonic() < deadline:
            if b"READY" in self.path.read_bytes():
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        said = (self._stop() or "bpftrace did not start").strip().splitlines()
        # bpftrace names each probe it refuses on a line of its own ("FILE:LINE: ERROR: … type
        # 'struct _tracepoint_tcp_tcp_probe' …"); its RLIMIT_MEMLOCK line is a warning, whatever it says
        errors = [line.strip() for line in said if "ERROR" in line and "RLIMIT_MEMLOCK" not in line]
        error = errors[0] if errors else said[-1].strip()
        if self.script == SCRIPT and errors and all(any(p in e for p in CONGESTION_PROBES) for e in errors):
            # A kernel whose tcp_probe lacks a field the program reads (its `skaddr` is a recent
            # addition to that tracepoint; older kernels such as the Vagrant lab's may not have it):
            # keep the state changes and say why the congestion state is missing, instead of losing
            # the whole kernel view to the ss sampler.
            self.congestion_error = error
            self.script = self.path.with_name("states-only.bt")
            self.script.write_text(states_only_program(SCRIPT.read_text()))
            self.start()
            return self.wait_ready()
        self.error = error
        self.source = "unavailable"
        return False

    def stop(self) -> None:
        self._settle()
        self._stop()

    def mark(self) -> int:
        """Where the log ends now: with `copy_since`, one long-lived tracer serves many runs
        (bpftrace takes about a second to attach; a run of the whole catalog attaches it once).
        The clock offset is taken again for the run that begins: the wall clock may have been set since."""
        self.clock_offset = wall_minus_monotonic()
        self._settle()
        return self.path.stat().st_size if self.path.exists() else 0

    def copy_since(self, mark: int, dest: Path, netns: set[int] | None = None) -> None:
        """Write what was logged after `mark` into `dest` (a run folder's own states.txt), only the
        lines of the namespaces `netns` when given."""
        self._settle()
        with open(self.path, "rb") as src:
            src.seek(mark)
            dest.write_bytes(_only(src.read(), netns))

    def _settle(self, limit: float = 5.0) -> None:
        """Make sure every state change that happened before now is in the log.

        bpftrace reads per-CPU ring buffers: on each CPU in turn, open and close a listening socket
        on loopback (root namespace, so no run's timeline sees it) and wait until that change is
        logged — everything that CPU reported earlier has been written by then.
        """
        if not self._running():
            return
        start = self.path.stat().st_size  # the markers come after it: an earlier line may hold the same port
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
            with open(self.path, "rb") as f:
                f.seek(start)
                log = f.read()
            if all(w in log for w in wanted):
                return
            time.sleep(0.005)

    def _running(self) -> bool:
        """Is bpftrace running? In a `--jobs` worker (forked), the tracer is not the worker's child: Popen.poll()
        there says it ended (waitpid fails with ECHILD) and the log was never settled — a run could miss
        its last state changes. Outside the process that started it, the pid is asked instead."""
        if self.proc is None:
            return False
        if os.getpid() == self._owner:
            return self.proc.poll() is None
        try:
            os.kill(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

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
        facts = {"source": self.source, "file": LOG if self.source == "bpftrace" else None,
                 "clock_offset": self.clock_offset, "error": self.error or None}
        if self.congestion_error:
            facts["congestion_error"] = f"tcp:tcp_probe not traced on this kernel: {self.congestion_error}"
        return facts


CONGESTION_PROBES = ("tcp_probe", "tcp_retransmit_skb")


def states_only_program(program: str) -> str:
    """The program without its tcp_probe and tcp_retransmit_skb probes (state changes only).

    A probe is its `tracepoint:tcp:NAME {` line through the brace that closes it; the state-change
    probe and the namespace registration (which the probes removed were the only readers of) stay.
    """
    out: list[str] = []
    depth = 0
    skipping = False
    for line in program.splitlines(keepends=True):
        if not skipping and any(line.startswith(f"tracepoint:tcp:{p}") for p in CONGESTION_PROBES):
            skipping, depth = True, 0
        if skipping:
            depth += line.count("{") - line.count("}")
            if depth <= 0 and "}" in line:
                skipping = False
            continue
        out.append(line)
    return "".join(out)


OFFSET_SAMPLES = 50


def wall_minus_monotonic(samples: int = OFFSET_SAMPLES) -> float:
    """The wall clock minus CLOCK_MONOTONIC (bpftrace's `nsecs`), to move kernel stamps onto the captures' clock.

    Read as a wall-clock time between two monotonic ones, keeping the closest pair of `samples`: a
    process preempted between two adjacent reads (a 4 ms scheduler tick on a loaded machine; up to
    20 ms measured here) would put every kernel event of a series that much early — handshakes whose
    ESTABLISHED came "4 ms before the SYN-ACK", in every run of one `--jobs 2` catalog.
    """
    best = (float("inf"), 0.0)
    for _ in range(samples):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        best = min(best, (after - before, wall - (before + after) / 2))
    return best[1]


def _listen_in(netns_fds: list[int], port: int) -> None:
    """Listen for a moment on 0.0.0.0:`port` inside each namespace: the program sees the LISTEN state.

    The BPF map is updated in the kernel as listen() runs, so the namespace is registered when this
    returns. A namespace whose port is taken (a program of the run listening there) raises OSError.
    """
    from netbed.network import rtnl

    for fd in netns_fds:
        with rtnl.inside(fd), socket.socket() as sock:
            sock.bind(("0.0.0.0", port))
            sock.listen(1)


def keep_namespaces(path: Path, netns: set[int]) -> None:
    """Cut a log a private tracer wrote down to the run's own namespaces (the machine's other TCP
    traffic, tcp_probe's especially, would make it large and is none of the run's business)."""
    if path.exists():
        path.write_bytes(_only(path.read_bytes(), netns))


def _only(log: bytes, netns: set[int] | None) -> bytes:
    if netns is None:
        return log
    wanted = {str(n).encode() for n in netns}
    kept = []
    for line in log.splitlines(keepends=True):
        parts = line.split(b" ", 3)
        if line.startswith(b"Lost ") or (len(parts) > 3 and len(parts[0]) == 1 and parts[2] in wanted):
            kept.append(line)
    return b"".join(kept)


# /proc/net/tcp's state numbers are Linux's own (include/net/tcp_states.h), as bpftrace reports them
_PROC_TCP = ("tcp", "tcp6")


class SocketSampler:
    """The fallback where bpftrace cannot run: sample the hosts' socket tables every millisecond.

    Each namespace's /proc/net/tcp is read from a thread that has entered it (cheap: no process per
    sample). Changes are logged in the tracer's own line format, so the same timeline code reads
    them; a state that lasts less than a sample (FIN_WAIT_1 often does) can be missed — the run's
    facts say which source was used.
    """

    def __init__(self, out: Path, netns_fds: dict[str, int], period: float = 0.001) -> None:
        import threading

        self.path = out / LOG
        self.fds = netns_fds
        self.period = period
        self.clock_offset = wall_minus_monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.source, self.error = "ss", None

    def start(self) -> SocketSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def facts(self) -> dict:
        return {"source": "ss", "file": LOG, "clock_offset": self.clock_offset, "error": None}

    def _run(self) -> None:
        from netbed.network import rtnl

        last: dict[tuple, int] = {}
        with open(self.path, "w") as log:
            while not self._stop.is_set():
                now = time.monotonic_ns()
                seen = set()
                for fd in self.fds.values():
                    inode = os.fstat(fd).st_ino
                    with rtnl.inside(fd):
                        rows = [row for name in _PROC_TCP for row in _read_proc_tcp(name)]
                    for local, remote, state in rows:
                        key = (inode, local, remote)
                        seen.add(key)
                        if last.get(key) != state:
                            log.write(_line(now, inode, local, remote, last.get(key, 7), state))
                            last[key] = state
                for key in [k for k in last if k not in seen]:
                    log.write(_line(now, key[0], key[1], key[2], last.pop(key), 7))
                log.flush()
                self._stop.wait(self.period)


def _read_proc_tcp(name: str) -> list[tuple[tuple[str, int], tuple[str, int], int]]:
    rows = []
    try:
        lines = open(f"/proc/thread-self/net/{name}").read().splitlines()[1:]
    except OSError:
        return rows
    for line in lines:
        cols = line.split()
        rows.append((_endpoint(cols[1]), _endpoint(cols[2]), int(cols[3], 16)))
    return rows


def _endpoint(text: str) -> tuple[str, int]:
    import ipaddress

    addr, port = text.split(":")
    raw = bytes.fromhex(addr)
    # the kernel prints each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port, 16)


def _line(ns: int, inode: int, local: tuple[str, int], remote: tuple[str, int], old: int, new: int) -> str:
    sock = f"{local[0]}:{local[1]}-{remote[0]}:{remote[1]}"
    family = 6 if ":" in local[0] else 4
    return f"S {ns} {inode} {sock} {family} {local[0]} {local[1]} {remote[0]} {remote[1]} {old} {new}\n"
