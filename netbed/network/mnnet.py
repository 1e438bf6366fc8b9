"""`tb.net`: Mininet's Mininet object, with an iperf that cannot hang and a teardown by namespace.

Everything else — pingAll, pingFull, ping, configLinkStatus, get, nameToNode, hosts, switches,
links, the CLI — is Mininet's own code over real Mininet nodes (see nodes.py).
"""
from __future__ import annotations

import os
import re
import select
import subprocess
import time

from mininet.log import debug, error, output
from mininet.net import Mininet

from netbed.pace import patience

IPERF_GRACE = 10.0  # seconds an iperf client may take beyond its test time (connect, report)
LISTEN_WAIT = 5.0  # seconds the iperf server may take to listen
POLL = 0.02


class Network(Mininet):
    """Mininet over netbed's nodes.

    Stock `Mininet.iperf` waits for the server with `telnet` in an unbounded loop and `killall`s every
    iperf on the machine; here the server is watched with `ss` (the kernel's socket table, no probe
    connection), every wait has a deadline, and only the processes this call started are stopped.
    """

    def iperf(self, hosts=None, l4Type="TCP", udpBw="10M", fmt=None,  # noqa: N803 (Mininet's names)
              seconds=5, port=5001):
        hosts = hosts or [self.hosts[0], self.hosts[-1]]
        assert len(hosts) == 2
        client, server = hosts
        output("*** Iperf: testing", l4Type, "bandwidth between", client, "and", server, "\n")
        args = ["iperf", "-p", str(port)]
        bw_args = []
        if l4Type == "UDP":
            args.append("-u")
            bw_args = ["-b", udpBw]
        elif l4Type != "TCP":
            raise Exception(f"Unexpected l4 type: {l4Type}")
        if fmt:
            args += ["-f", fmt]
        srv = server.popen(args + ["-s"], text=True)
        try:
            if l4Type == "TCP" and not _wait_listening(server, port, patience(LISTEN_WAIT)):
                error(f"could not connect to {server} on port {port}\n")
                return ["", ""]
            cli = client.popen(args + ["-t", str(seconds), "-c", server.IP()] + bw_args, text=True)
            limit = seconds + patience(IPERF_GRACE)
            try:
                cliout, clierr = cli.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                cli.kill()
                cliout, clierr = cli.communicate()
                error(f"iperf client on {client} did not finish within {limit:g} s and was stopped "
                      f"(an overloaded machine, or a link that carries nothing)\n")
            else:
                if "/sec" not in (cliout or ""):
                    why = (clierr or "").strip().splitlines()
                    status = f" (exit status {cli.returncode})" if cli.returncode else ""
                    error(f"iperf client on {client} reported no transfer{status}"
                          f"{': ' + why[-1].strip() if why else ''}\n")
            debug(f"Client output: {cliout}\n")
            servout = ""
            deadline = time.monotonic() + patience(IPERF_GRACE)
            while not re.findall("/sec", servout) and time.monotonic() < deadline:
                servout += _read_available(srv)
                time.sleep(POLL)
        finally:
            srv.kill()
            rest, _ = srv.communicate()
        servout += rest or ""
        if "/sec" not in servout:
            error(f"iperf server on {server} reported no transfer within {patience(IPERF_GRACE):g} s "
                  f"of the client's end\n")
        debug(f"Server output: {servout}\n")
        result = [self._parseIperf(servout), self._parseIperf(cliout)]
        if l4Type == "UDP":
            result.insert(0, udpBw)
        output(f"*** Results: {result}\n")
        return result

    def stop(self) -> None:
        """Stop every node's shell; the links go with the namespaces (fast build), so none is deleted."""
        if not any(getattr(n, "netns_fd", None) is not None for n in self.hosts + self.switches):
            super().stop()
            return
        if self.terms:
            self.stopXterms()
        for node in self.hosts + self.switches:
            node.terminate()


def _wait_listening(node, port: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        proc = node.popen(["ss", "-ltnH", f"sport = :{port}"], text=True)
        out, _ = proc.communicate(timeout=limit)
        if out.strip():
            return True
        time.sleep(POLL)
    return False


def _read_available(proc) -> str:
    """What the server printed so far, without blocking (its stdout is a pipe)."""
    fd = proc.stdout.fileno()
    chunks = []
    while select.select([fd], [], [], 0)[0]:
        data = os.read(fd, 65536)
        if not data:
            break
        chunks.append(data.decode(errors="replace"))
    return "".join(chunks)
