#!/usr/bin/env python3
"""A TCP (or UDP) endpoint that plays a script of socket calls, then reports what happened.

netbed starts it inside emulated hosts as a real program talking real kernel TCP. Standard library
only, so any python3 on the machine can run it. Each action is one socket call the lecture talks
about; the experiment chooses their order and timing so that the verdict is deterministic:

    send:N         send N bytes (a fixed pseudo-random stream; its SHA-256 is reported)
    recv:N         receive exactly N bytes
    recv-eof       receive until end of file (the peer's FIN)
    read:N         one recv() of at most N bytes (UDP: one datagram); its size is reported, 0 is EOF
    cork           TCP_CORK: hold written data in the kernel until close() (or a full segment)
    shutdown-wr    shutdown(SHUT_WR): send our FIN, keep receiving (half-close)
    quickack       TCP_QUICKACK: send the delayed ACK now instead of within 40-200 ms
    linger0        SO_LINGER on with timeout 0: close() will send RST
    sleep:S        wait S seconds
    wait-file:P    wait until file P exists (the experiment's signal that it may go on)
    realtime       run with real-time priority (SCHED_FIFO), or fail saying why the kernel refused it
    prompt         wake at once on a busy machine: SCHED_FIFO where the kernel grants it, else nice -20
                   (both set up the whole process: at the head of a server's script, before accept())
    close          close()
    kill           SIGKILL ourselves: the kernel closes what we leave open
    exit           exit() with the socket still open (never close()): the kernel closes it
    return         return from main with the socket still open (never close()): the kernel closes it

    peer.py server PORT [--bind ADDR] [--udp] [--reuseport] -- ACTIONS...
    peer.py client HOST PORT [--bind ADDR[:PORT]] [--reuseaddr] [--udp] -- ACTIONS...
    peer.py bind HOST PORT [--reuseaddr] [--reuseport]      (bind only: is the address free?)

The report is one JSON line on stdout (written before `kill`, which never returns). An action
that fails ends the script: the report names it (`failed_at`) and, for an action that asks the
machine for something rather than making a socket call (`realtime`), says in one line why the
machine refused (`unable`), so the verdict can say so instead of showing only what followed.
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time

CHUNK = 65536
# SCHED_FIFO priority of `realtime` and `prompt`: above every normal task, below the kernel's own threads
RT_PRIORITY = 10
# `prompt` without real-time scheduling: the strongest CFS weight there is (88761 against nice 0's 1024)
HIGHEST_NICE = -20
CGROUP_V1_CPU = "/sys/fs/cgroup/cpu"
CAP_SYS_NICE = 23  # bit in CapEff (linux/capability.h)
# Actions that ask the machine for something (not socket calls): their failure is the machine's, not TCP's
MACHINE_ACTIONS = {"realtime"}
# Actions that set up the whole process: at the head of a script they are played before accept()
PROCESS_SETTINGS = {"realtime", "prompt"}


class _Return(Exception):
    """The script's `return` action: stop playing, main returns normally."""


def payload(n: int, offset: int = 0) -> bytes:
    """Deterministic bytes: the same N bytes on every run, so their SHA-256 is reproducible."""
    out = bytearray()
    block = offset // 32
    while len(out) < n + offset % 32:
        out += hashlib.sha256(block.to_bytes(8, "big")).digest()
        block += 1
    start = offset % 32
    return bytes(out[start:start + n])


class Peer:
    def __init__(self, sock: socket.socket, role: str, udp: bool) -> None:
        self.sock = sock
        self.role = role
        self.udp = udp
        self.sent = 0
        self.received = 0
        self.sent_hash = hashlib.sha256()
        self.recv_hash = hashlib.sha256()
        self.events: list[dict] = []
        self.error: str | None = None
        self.failed_at: str | None = None
        self.unable: str | None = None
        self.priority: str | None = None
        self.peer_addr = None

    def note(self, what: str, **extra) -> None:
        self.events.append({"t": time.time(), "event": what, **extra})

    def play(self, actions: list[str]) -> bool:
        """Run the actions in order; a socket error ends the script and is reported, not raised."""
        for action in actions:
            name, _, arg = action.partition(":")
            try:
                getattr(self, "do_" + name.replace("-", "_"))(arg)
            except _Return:
                return True
            except OSError as exc:
                self.error = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__
                self.failed_at = action
                self.note("error", action=action, error=os.strerror(exc.errno) if exc.errno else str(exc))
                if name in MACHINE_ACTIONS:
                    self.unable = f"failed at {action!r}: {self.error} — {why_refused(name, exc)}"
                return False
        return True

    def do_send(self, arg: str) -> None:
        n = int(arg)
        data = payload(n, self.sent)
        if self.udp:
            self.sock.sendto(data, self.peer_addr)
        else:
            self.sock.sendall(data)
        self.sent += n
        self.sent_hash.update(data)
        self.note("send", bytes=n)

    def do_recv(self, arg: str) -> None:
        want = int(arg)
        got = 0
        while got < want:
            if self.udp:
                data, self.peer_addr = self.sock.recvfrom(CHUNK)
            else:
                data = self.sock.recv(min(CHUNK, want - got))
            if not data:
                break
            got += len(data)
            self.recv_hash.update(data)
        self.received += got
        self.note("recv", bytes=got)

    def do_recv_eof(self, _arg: str) -> None:
        got = 0
        while True:
            data = self.sock.recv(CHUNK)
            if not data:
                break
            got += len(data)
            self.recv_hash.update(data)
        self.received += got
        self.note("eof", bytes=got)

    def do_read(self, arg: str) -> None:
        if self.udp:
            data, self.peer_addr = self.sock.recvfrom(int(arg))
        else:
            data = self.sock.recv(int(arg))
        self.received += len(data)
        self.recv_hash.update(data)
        self.note("read", bytes=len(data))

    def do_cork(self, _arg: str) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)

    def do_exit(self, _arg: str) -> None:
        self.note("exit")
        self.report()
        self.sock.detach()  # Python's socket object forgets the descriptor: nobody calls close() on it
        sys.exit(0)

    def do_return(self, _arg: str) -> None:
        self.note("return")
        self.local = self.sock.getsockname()
        self.sock.detach()  # main returns with the descriptor open: the process's end closes it
        raise _Return

    def do_shutdown_wr(self, _arg: str) -> None:
        self.sock.shutdown(socket.SHUT_WR)
        self.note("shutdown-wr")

    def do_quickack(self, _arg: str) -> None:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def do_linger0(self, _arg: str) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def do_sleep(self, arg: str) -> None:
        time.sleep(float(arg))

    def do_wait_file(self, arg: str) -> None:
        while not os.path.exists(arg):
            time.sleep(0.001)

    def do_realtime(self, _arg: str) -> None:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
        self.priority = "SCHED_FIFO"
        self.note("priority", granted=self.priority)

    def do_prompt(self, _arg: str) -> None:
        """Real-time where granted; else the highest CFS weight, which a container without a
        real-time budget still allows (CAP_SYS_NICE). The report says which one the kernel gave."""
        try:
            self.do_realtime("")
            return
        except OSError as exc:
            refused = errno.errorcode.get(exc.errno, str(exc.errno))
        try:
            os.setpriority(os.PRIO_PROCESS, 0, HIGHEST_NICE)
            self.priority = f"nice {HIGHEST_NICE} (SCHED_FIFO refused: {refused})"
        except OSError as exc:  # no CAP_SYS_NICE either: run as we are, and say so
            self.priority = f"normal (SCHED_FIFO refused: {refused}, nice {HIGHEST_NICE} refused: " \
                            f"{errno.errorcode.get(exc.errno, str(exc.errno))})"
        self.note("priority", granted=self.priority)

    def do_close(self, _arg: str) -> None:
        self.sock.close()
        self.note("close")

    def do_kill(self, _arg: str) -> None:
        self.note("kill")
        self.report()
        os.kill(os.getpid(), signal.SIGKILL)

    def report(self, **extra) -> None:
        try:
            local = self.sock.getsockname()
        except OSError:
            local = getattr(self, "local", None)
        print(json.dumps({
            "role": self.role,
            "local": list(local[:2]) if local else None,
            "peer": list(self.peer_addr[:2]) if self.peer_addr else None,
            "sent": self.sent,
            "sent_sha256": self.sent_hash.hexdigest(),
            "received": self.received,
            "received_sha256": self.recv_hash.hexdigest(),
            "error": self.error,
            "failed_at": self.failed_at,
            "unable": self.unable,
            "priority": self.priority,
            "events": self.events,
            **extra,
        }), flush=True)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def why_refused(action: str, exc: OSError) -> str:
    """One line on why the machine refused `action` (only `realtime` so far), from the kernel's own files."""
    if action != "realtime" or exc.errno != errno.EPERM:
        return os.strerror(exc.errno) if exc.errno else str(exc)
    status = _read("/proc/self/status")
    caps = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")), 0)
    if not caps >> CAP_SYS_NICE & 1:
        return ("this root lacks CAP_SYS_NICE, which real-time scheduling needs "
                "(a container started without --privileged or --cap-add SYS_NICE?)")
    # cgroup v1 with RT group scheduling: a group's real-time budget is cpu.rt_runtime_us, 0 by default
    group = next((line.split(":", 2)[2] for line in _read("/proc/self/cgroup").splitlines()
                  if line.split(":")[1:2] and "cpu" in line.split(":")[1].split(",")), None)
    # the group's own folder, or (a container that sees only its own group) the mount's top
    budget = next((value for value in (_read(f"{CGROUP_V1_CPU}{group}/cpu.rt_runtime_us") if group else "",
                                       _read(f"{CGROUP_V1_CPU}/cpu.rt_runtime_us")) if value), "")
    if budget == "0":
        return (f"the container has no real-time budget: cpu.rt_runtime_us is 0 in its cgroup {group} "
                "(give it one: docker or podman run --cpu-rt-runtime=950000)")
    return "the kernel refused SCHED_FIFO (RLIMIT_RTPRIO or a security policy)"


def family_of(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def leading_settings(actions: list[str]) -> tuple[list[str], list[str]]:
    """Split off the leading process settings (`realtime`, `prompt`): they apply to the whole process,
    so they are played before the first blocking call, not after it."""
    n = 0
    while n < len(actions) and actions[n] in PROCESS_SETTINGS:
        n += 1
    return actions[:n], actions[n:]


def run_server(args: argparse.Namespace) -> int:
    family = family_of(args.bind or "0.0.0.0")
    kind = socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM
    lsock = socket.socket(family, kind)
    if not args.no_reuseaddr:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.reuseport:  # SO_REUSEPORT: several sockets may share the port (breaks "one port, one app")
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    lsock.bind((args.bind or ("::" if family == socket.AF_INET6 else "0.0.0.0"), args.port))
    settings, actions = leading_settings(args.actions)
    peer = Peer(lsock, "server", udp=args.udp)
    if not args.udp:
        lsock.listen(8)
    # before accept(): the wake-up from accept must be as prompt as the ones after it. A refused
    # setting still lets the client in (the lab waits for the listening socket and the connection),
    # then ends the script: the report says why.
    settled = peer.play(settings)
    if not args.udp:
        conn, addr = lsock.accept()
        lsock.close()  # one connection per run: nothing else may sneak into the trace
        peer.sock = conn
        peer.peer_addr = addr
        peer.local = conn.getsockname()
    ok = settled and peer.play(actions)
    peer.report()
    return 0 if ok else 1


def run_client(args: argparse.Namespace) -> int:
    family = family_of(args.host)
    kind = socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM
    sock = socket.socket(family, kind)
    if args.reuseaddr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.bind:
        host, _, port = args.bind.rpartition(":") if args.bind.count(":") == 1 else (args.bind, "", "0")
        sock.bind((host, int(port or 0)))
    peer = Peer(sock, "client", udp=args.udp)
    peer.peer_addr = (args.host, args.port)
    if not args.udp:
        try:
            sock.connect((args.host, args.port))
        except OSError as exc:
            peer.error = errno.errorcode.get(exc.errno, str(exc.errno))
            peer.note("connect-failed", error=os.strerror(exc.errno or 0))
            peer.report()
            return 1
        peer.note("connected")
    peer.local = sock.getsockname()
    ok = peer.play(args.actions)
    peer.report()
    return 0 if ok else 1


def run_bind(args: argparse.Namespace) -> int:
    """Only bind (no listen, no connect): shows whether an address is free, with or without SO_REUSEADDR."""
    sock = socket.socket(family_of(args.host), socket.SOCK_STREAM)
    if args.reuseaddr:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    peer = Peer(sock, "bind", udp=False)
    try:
        sock.bind((args.host, args.port))
        peer.note("bound")
    except OSError as exc:
        peer.error = errno.errorcode.get(exc.errno, str(exc.errno))
        peer.note("bind-failed", error=os.strerror(exc.errno or 0))
    peer.local = (args.host, args.port)
    peer.report(reuseaddr=args.reuseaddr, reuseport=args.reuseport)
    sock.close()
    return 0 if peer.error is None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role", required=True)
    server = sub.add_parser("server")
    server.add_argument("port", type=int)
    client = sub.add_parser("client")
    client.add_argument("host")
    client.add_argument("port", type=int)
    bind = sub.add_parser("bind")
    bind.add_argument("host")
    bind.add_argument("port", type=int)
    bind.add_argument("--reuseaddr", action="store_true")
    server.add_argument("--no-reuseaddr", action="store_true")
    for p in (server, bind):
        p.add_argument("--reuseport", action="store_true", help="SO_REUSEPORT before binding")
    client.add_argument("--reuseaddr", action="store_true", help="SO_REUSEADDR before binding")
    for p in (server, client):
        p.add_argument("--bind", help="local address (client: ADDR or ADDR:PORT)")
        p.add_argument("--udp", action="store_true")
        p.add_argument("actions", nargs="*")
    args = parser.parse_args(argv)
    return {"server": run_server, "client": run_client, "bind": run_bind}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
