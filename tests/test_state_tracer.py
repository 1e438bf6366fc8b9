"""The kernel state tracer (bpftrace): tcp_probe only for the namespaces a run registered; no bpftrace outlives
a SIGKILLed owner (the kernel's parent-death signal), and without that, `netbed clean` reclaims it by its mark."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, netbed

DATA = 200_000
SETTLE = 3.0  # seconds between the tracer's start and the owner's SIGKILL


def loopback_transfer(fd: int) -> None:
    """DATA bytes over TCP on the loopback of namespace `fd` (its lo brought up first)."""
    from netbed.network import rtnl

    subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", "ip", "link", "set", "lo", "up"], check=True,
                   pass_fds=(fd,))
    with rtnl.inside(fd):
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.socket()
    got = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.extend(chunk)

    thread = threading.Thread(target=serve)
    thread.start()
    with server, client:
        client.connect(server.getsockname())
        client.sendall(b"x" * DATA)
        client.shutdown(socket.SHUT_WR)
        thread.join(timeout=30)
    assert len(got) == DATA


@pytest.mark.netbed
@pytest.mark.parametrize("registered", [("a",), ("a", "b")])  # ("a", "b"): the sabotage, b's probes come too
def test_tcp_probe_reports_only_the_registered_namespaces(tmp_path, registered):
    from netbed.capture.states import StateTracer
    from netbed.network import rtnl

    fds = dict(zip("ab", rtnl.new_namespaces(2)))
    inodes = {name: os.fstat(fd).st_ino for name, fd in fds.items()}
    tracer = StateTracer(tmp_path).start()
    try:
        assert tracer.wait_ready(), tracer.error
        tracer.trace([fds[n] for n in registered])
        for fd in fds.values():
            loopback_transfer(fd)
        tracer.forget([fds[n] for n in registered])
        tracer.stop()
    finally:
        tracer.stop()
        for fd in fds.values():
            os.close(fd)
    lines = (tmp_path / "states.txt").read_text().splitlines()
    probes = {int(line.split()[2]) for line in lines if line.startswith("P ")}
    states = {int(line.split()[2]) for line in lines if line.startswith("S ")}
    assert probes == {inodes[n] for n in registered}, (probes, inodes)
    assert {inodes["a"], inodes["b"]} <= states  # state changes are machine-wide: runs keep their own lines
    assert not any(line.split()[6] in ("1", "2") for line in lines if line.startswith("S "))  # the registrations


# The owner: starts the session's shared tracer as the test session does, says its pid, then waits to be killed.
OWNER = textwrap.dedent("""\
    import sys, time
    from netbed import runner
    from netbed.capture import states
    if sys.argv[1] == "without-pdeathsig":
        states.DIE_WITH_OWNER = ["env"]  # the sabotage: no parent-death signal, a plain exec
    with runner.shared_state_tracer():
        print(runner.shared_tracer_pid(), flush=True)
        time.sleep(600)
    """)


def alive(pid: int) -> bool:
    try:
        return "bpftrace" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def state_dir(tmp_path) -> dict[str, str]:
    """A run registry of the test's own: any netbed run on the machine reclaims what dead runs left (it would take
    the orphan before `netbed clean` could show it does)."""
    return {**os.environ, "NETBED_STATE_DIR": str(tmp_path / "runs")}


@pytest.fixture()
def killed_owner(state_dir):
    """Start an owner, SIGKILL it once its tracer runs; yield the tracer's pid; kill that pid if a test left it."""
    started = []

    def start(mode: str) -> int:
        owner = subprocess.Popen([sys.executable, "-c", OWNER, mode], stdout=subprocess.PIPE, text=True, cwd=REPO,
                                 env=state_dir)
        line = owner.stdout.readline().strip()
        # as a session killed mid-way: bpftrace has said what it says on stderr at start (killed at once, its
        # owner's end of that pipe closed, a late warning would end it by SIGPIPE and hide what is tested)
        time.sleep(SETTLE)
        owner.kill()
        owner.wait()
        assert line.isdigit(), f"the owner printed {line!r}: no tracer"
        started.append(int(line))
        return int(line)

    yield start
    for pid in started:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.netbed
def test_a_sigkilled_owner_leaves_no_tracer(killed_owner):
    pid = killed_owner("with-pdeathsig")
    assert gone_within(pid, 5), f"bpftrace {pid} outlived its SIGKILLed owner"


@pytest.mark.netbed
def test_without_the_kernels_help_netbed_clean_reclaims_the_tracer_by_its_mark(killed_owner, state_dir):
    pid = killed_owner("without-pdeathsig")
    assert not gone_within(pid, 1.5), "the sabotage did not hold: the tracer died by itself"
    mark = [v for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if v.startswith(b"NETBED_RUN=")]
    assert mark, "the shared tracer carries no run mark"
    res = netbed("clean", env=state_dir)
    assert res.returncode == 0, res.stderr
    assert gone_within(pid, 5), f"netbed clean left bpftrace {pid}: {res.stdout}"
    assert f"reclaimed run {mark[0].split(b'=')[1].decode()}" in res.stdout, res.stdout


def _in_a_forked_worker(tracer, dest: str, port_file: str) -> None:
    """What a `--jobs` worker does with the series' tracer: mark, a socket's life, copy its lines."""
    mark = tracer.mark()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        Path(port_file).write_text(str(sock.getsockname()[1]))
    tracer.copy_since(mark, Path(dest))


@pytest.mark.netbed
def test_a_forked_worker_settles_the_shared_log_before_copying_its_lines(tmp_path):
    """The tracer is not a --jobs worker's child (Popen.poll() there says it ended): the worker must still wait
    until the per-CPU buffers are written, or a run misses its last state changes."""
    import multiprocessing

    from netbed.capture.states import StateTracer

    tracer = StateTracer(tmp_path).start()
    try:
        assert tracer.wait_ready(), tracer.error
        ctx = multiprocessing.get_context("fork")
        worker = ctx.Process(target=_in_a_forked_worker,
                             args=(tracer, str(tmp_path / "run.txt"), str(tmp_path / "port")))
        worker.start()
        worker.join(timeout=60)
        assert worker.exitcode == 0
    finally:
        tracer.stop()
    port = (tmp_path / "port").read_text()
    copied = (tmp_path / "run.txt").read_text()
    assert f" 127.0.0.1 {port} 0.0.0.0 0 10 7" in copied, copied[-500:]  # LISTEN -> CLOSED, logged before the copy


def test_the_clock_offset_is_read_between_two_close_monotonic_reads():
    from netbed.capture.states import wall_minus_monotonic

    offsets = [wall_minus_monotonic() for _ in range(5)]
    assert max(offsets) - min(offsets) < 0.001, offsets  # a preempted read would be off by a scheduler tick


@pytest.mark.netbed
@pytest.mark.parametrize("broken", ["tcp_probe", "inet_sock_set_state"])  # the second: the sabotage
def test_a_kernel_without_the_probes_fields_keeps_the_state_changes(tmp_path, monkeypatch, broken):
    """Linux before 6.10 has no `skaddr` in tcp:tcp_probe (Debian 12's 6.1, the Vagrant lab's kernels):
    bpftrace refuses the whole program. The tracer then runs the state changes alone and says why the
    congestion state is missing — the states still come from the kernel, not from the ss sampler.
    Here a field this kernel lacks is put into the probe, as an older kernel would see it."""
    from netbed.capture import states
    from netbed.network import rtnl

    program = states.SCRIPT.read_text()
    start = program.index(f"tracepoint:{'tcp:tcp_probe' if broken == 'tcp_probe' else 'sock:inet_sock_set_state'}")
    anchor = program.index("$sk = (struct sock *)args->skaddr;", start)
    older = tmp_path / "older.bt"
    older.write_text(program[:anchor] + "$x = args->no_such_field;\n  " + program[anchor:])
    monkeypatch.setattr(states, "SCRIPT", older)
    (fd,) = rtnl.new_namespaces(1)
    tracer = states.StateTracer(tmp_path).start()
    try:
        ready = tracer.wait_ready()
        if broken == "inet_sock_set_state":  # the state changes themselves cannot be traced: no quiet fallback
            assert not ready and tracer.facts()["source"] == "unavailable" and "no_such_field" in tracer.error
            return
        assert ready, tracer.error
        tracer.trace([fd])
        loopback_transfer(fd)
        tracer.forget([fd])
        tracer.stop()
    finally:
        tracer.stop()
        os.close(fd)
    facts = tracer.facts()
    assert facts["source"] == "bpftrace" and facts["error"] is None, facts
    assert facts["congestion_error"].startswith("tcp:tcp_probe not traced on this kernel: ")
    assert "no_such_field" in facts["congestion_error"], facts
    lines = (tmp_path / "states.txt").read_text().splitlines()
    assert any(line.startswith("S ") and line.split()[-1] == "1" for line in lines)  # ESTABLISHED, from the kernel
    assert not any(line.startswith(("P ", "R ")) for line in lines)
