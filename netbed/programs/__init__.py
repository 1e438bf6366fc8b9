"""The programs stage: real client and server programs started inside emulated hosts."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from netbed.errors import NetbedError
from netbed.network import Testbed
from netbed.pace import budget_text, patience

PEER = str(Path(__file__).with_name("peer.py"))
HTTPD = str(Path(__file__).with_name("httpd.py"))
UNPRIVILEGED = str(Path(__file__).with_name("unprivileged.py"))
ACCEPTOR = str(Path(__file__).with_name("acceptor.py"))
UDHCPC_SCRIPT = str(Path(__file__).with_name("udhcpc_script.py"))


@dataclass
class Program:
    """A program running in a host; `report()` waits for it and returns its JSON report."""

    name: str
    node: str
    proc: subprocess.Popen
    argv: list[str]
    raw: bool = False  # not peer.py: no JSON report, keep exit code and output
    daemon: bool = False  # serves until stopped: the run stops it after the capture
    port: int | None = None
    _report: dict | None = None

    def stop(self) -> dict:
        """Stop a program that serves until told to (an HTTP server), then return its report."""
        if self.proc.poll() is None:
            import os
            import signal

            if getattr(self.proc, "netbed_remote", False):  # on a cluster server (--cluster)
                self.proc.send_signal(signal.SIGTERM)
            else:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        return self.report(timeout=10)

    def report(self, timeout: float = 30.0) -> dict:
        if self._report is None:
            try:
                out, err = self.proc.communicate(timeout=patience(timeout))
            except subprocess.TimeoutExpired:
                raise NetbedError(f"{self.name} on {self.node} did not finish in {budget_text(timeout)}") from None
            if self.raw:
                self._report = {"exit": self.proc.returncode, "node": self.node, "argv": self.argv,
                                "stdout": out[-4000:], "stderr": err[-4000:]}
                # a raw program may name its socket in a line "netbed-local IP PORT PEER_IP PEER_PORT"
                # (curl does, with -w): then the run can find its connection in the capture
                for line in out.splitlines():
                    words = line.split()
                    if len(words) == 5 and words[0] == "netbed-local":
                        self._report["local"] = [words[1], int(words[2])]
                        self._report["peer"] = [words[3], int(words[4])]
                return self._report
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if not lines:
                raise NetbedError(f"{self.name} on {self.node} printed no report "
                                  f"(exit {self.proc.returncode}): {err.strip()[-300:]}")
            self._report = json.loads(lines[-1])
            self._report["exit"] = self.proc.returncode
            self._report["node"] = self.node
        return self._report


def check_port(port: object) -> int:
    try:
        number = int(str(port))
    except ValueError:
        raise NetbedError(f"port must be a number, not {port!r}") from None
    if not 1 <= number <= 65535:
        raise NetbedError(f"port must be between 1 and 65535, not {number}")
    return number


def start_server(tb: Testbed, node: str, port: int, actions: list[str], *, name: str = "server",
                 udp: bool = False, bind: str | None = None, reuseport: bool = False) -> Program:
    """Start peer.py as a server in `node` and return once it listens (seen with `ss`)."""
    port = check_port(port)
    proto = "udp" if udp else "tcp"
    flag = "-lunH" if udp else "-ltnH"
    if not reuseport and tb.run(node, ["ss", flag, f"sport = :{port}"], check=False).stdout.strip():
        raise NetbedError(f"{proto} port {port} is already in use on {node}")
    # options first: argparse gives the trailing "*" positional everything after the port
    argv = [sys.executable, PEER, "server"] + (["--udp"] if udp else []) + (["--bind", bind] if bind else [])
    argv += (["--reuseport"] if reuseport else []) + [str(port), "--", *actions]
    proc = tb.popen(node, argv, text=True)
    tb.wait_listening(node, port, proto=proto, proc=proc)
    return Program(name, node, proc, argv, port=port)


def start_client(tb: Testbed, node: str, host: str, port: int, actions: list[str], *,
                 name: str = "client", udp: bool = False, bind: str | None = None,
                 reuseaddr: bool = False) -> Program:
    argv = [sys.executable, PEER, "client"] + (["--udp"] if udp else []) + (["--bind", bind] if bind else [])
    argv += (["--reuseaddr"] if reuseaddr else []) + [host, str(check_port(port)), "--", *actions]
    return Program(name, node, tb.popen(node, argv, text=True), argv)


def start(tb: Testbed, node: str, argv: list[str], *, name: str, port: int | None = None,
          daemon: bool = False) -> Program:
    """Any other program (an HTTP server, curl): its report is its exit code and output.

    With `port`, return only once it listens there (seen with `ss`, no probe connection).
    """
    if port is not None:
        port = check_port(port)
        if tb.run(node, ["ss", "-ltnH", f"sport = :{port}"], check=False).stdout.strip():
            raise NetbedError(f"tcp port {port} is already in use on {node}")
    proc = tb.popen(node, list(argv), text=True)
    if port is not None:
        tb.wait_listening(node, port, proc=proc)
    return Program(name, node, proc, list(argv), raw=True, port=port, daemon=daemon)


def try_bind(tb: Testbed, node: str, host: str, port: int, *, name: str, reuseaddr: bool = False,
             reuseport: bool = False) -> Program:
    argv = [sys.executable, PEER, "bind", host, str(check_port(port))] + (["--reuseaddr"] if reuseaddr else [])
    argv += ["--reuseport"] if reuseport else []
    return Program(name, node, tb.popen(node, argv, text=True), argv)
