"""The programs stage: real client and server programs started inside emulated hosts."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from netbed.errors import NetbedError
from netbed.network import Testbed

PEER = str(Path(__file__).with_name("peer.py"))


@dataclass
class Program:
    """A program running in a host; `report()` waits for it and returns its JSON report."""

    name: str
    node: str
    proc: subprocess.Popen
    argv: list[str]
    _report: dict | None = None

    def wait(self, timeout: float = 30.0) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NetbedError(f"{self.name} on {self.node} did not finish in {timeout:g} s") from None
        return self.proc.returncode

    def report(self, timeout: float = 30.0) -> dict:
        if self._report is None:
            try:
                out, err = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise NetbedError(f"{self.name} on {self.node} did not finish in {timeout:g} s") from None
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
                 udp: bool = False, bind: str | None = None) -> Program:
    """Start peer.py as a server in `node` and return once it listens (seen with `ss`)."""
    port = check_port(port)
    proto = "udp" if udp else "tcp"
    flag = "-lunH" if udp else "-ltnH"
    if tb.run(node, ["ss", flag, f"sport = :{port}"], check=False).stdout.strip():
        raise NetbedError(f"{proto} port {port} is already in use on {node}")
    argv = [sys.executable, PEER, "server", str(port)]
    argv += (["--udp"] if udp else []) + (["--bind", bind] if bind else []) + ["--", *actions]
    proc = tb.popen(node, argv, text=True)
    tb.wait_listening(node, port, proto=proto, proc=proc)
    return Program(name, node, proc, argv)


def start_client(tb: Testbed, node: str, host: str, port: int, actions: list[str], *,
                 name: str = "client", udp: bool = False, bind: str | None = None) -> Program:
    argv = [sys.executable, PEER, "client", host, str(check_port(port))]
    argv += (["--udp"] if udp else []) + (["--bind", bind] if bind else []) + ["--", *actions]
    return Program(name, node, tb.popen(node, argv, text=True), argv)
