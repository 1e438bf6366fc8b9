"""`netbed lab`: Mininet's CLI on a captured network; on exit every TCP connection of the session is
classified, with ladder and kernel states. Driven as a person types (a pseudo-terminal) and from a
--script file (as CI replays a lab)."""
from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest
from conftest import NETBED, REPO, netbed

pytestmark = pytest.mark.netbed

LINUXROUTER = "from mininet.examples.linuxrouter import NetworkTopo\ntopos = {'linuxrouter': NetworkTopo}\n"
PROMPT = b"mininet> "


def tcpdump(pcap: Path, *expr: str) -> list[str]:
    """Lines of tcpdump's own reading of a capture (not netbed's parser)."""
    out = subprocess.run(["tcpdump", "-nr", str(pcap), *expr], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


class Terminal:
    """A program on a pseudo-terminal: what a person sees, and what they type."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, start_new_session=True)
        os.close(slave)
        self.seen = b""

    def expect(self, text: bytes, timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"waited {timeout:g} s for {text!r}; the screen shows:\n"
                                     + self.seen.decode(errors="replace")[-2000:])
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # the program ended and closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"the program ended before {text!r}:\n" + self.seen.decode(errors="replace"))
            self.seen += chunk
        before, _, self.seen = self.seen.partition(text)
        return before

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self, timeout: float = 120.0) -> str:
        rest = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                rest += chunk
            elif self.proc.poll() is not None:
                break
        self.proc.wait(timeout=10)
        os.close(self.master)
        return (self.seen + rest).decode(errors="replace")


@pytest.mark.parametrize("topology", [["--topo", "single,2"], ["lan", "--hosts", "2"]])
def test_a_person_at_the_prompt_gets_each_connection_classified(tmp_path, topology):
    out = tmp_path / "lab"
    term = Terminal([*NETBED, "lab", *topology, "--out", str(out)], REPO)
    try:
        term.expect(PROMPT)
        term.type("h1 python3 -m http.server 80 &")
        term.expect(PROMPT)
        term.type("h1 while ! ss -ltn | grep -q ':80 '; do sleep 0.1; done")  # until it listens, however loaded
        term.expect(PROMPT)
        term.type("h2 curl -s -o /dev/null -w 'status %{http_code}\\n' h1")  # the CLI puts h1's address in
        assert b"status 200" in term.expect(PROMPT)
        term.type("exit")
        screen = term.close()
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
    assert term.proc.returncode == 0, screen
    assert "1 TCP connection in this session:" in screen, screen
    (conn,) = json.loads((out / "connections.json").read_text())
    assert conn["connection"]["client"].startswith("10.0.0.2:") and conn["connection"]["server"] == "10.0.0.1:80"
    assert (conn["client_host"], conn["server_host"]) == ("h2", "h1")
    # the classification agrees with the packets tcpdump reads: one SYN, answered
    syns = tcpdump(out / "h2-eth0.pcap", "tcp[tcpflags] & tcp-syn != 0")
    assert len(syns) == 2 and "Flags [S]" in syns[0] and "Flags [S.]" in syns[1]
    assert conn["connection"]["handshake"] == "complete"
    assert "<svg" in (out / "lab.html").read_text()


SCRIPT = """\
h1 ping -c 1 -W 2 10.0.0.100
h1 timeout 5 tcpdump -i h1-eth0 -U -n -w {late} &
h1 sleep 1
h3 python3 -m http.server 80 &
h3 while ! ss -ltn | grep -q ':80 '; do sleep 0.1; done
h1 curl -s -o /dev/null -w "%{{http_code}}\\n" 10.0.0.100
h2 curl -s -o /dev/null -w "%{{http_code}}\\n" 10.0.0.100
h1 sleep 4
"""


@pytest.fixture(scope="module")
def scripted_lab(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """A lab on Mininet's linuxrouter.py, replayed from a script: ping, two HTTP fetches across r0."""
    tmp = tmp_path_factory.mktemp("lab")
    custom, script, late, out = tmp / "lr.py", tmp / "session.cli", tmp / "late.pcap", tmp / "lab"
    custom.write_text(LINUXROUTER)
    script.write_text(SCRIPT.format(late=late))
    res = netbed("lab", "--custom", str(custom), "--topo", "linuxrouter", "--script", str(script), "--out", str(out))
    return res, out, late


def test_a_scripted_lab_classifies_every_connection_with_both_kernel_sides(scripted_lab):
    res, out, _ = scripted_lab
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 TCP connections in this session:" in res.stdout
    conns = json.loads((out / "connections.json").read_text())
    assert sorted(c["connection"]["client"].split(":")[0] for c in conns) == ["172.16.0.100", "192.168.1.100"]
    assert {c["connection"]["server"] for c in conns} == {"10.0.0.100:80"}
    for c in conns:
        assert c["connection"]["handshake"] == "complete"
        # http.server (HTTP/1.0) closes after its reply and curl closes when it sees that: FINs in turn or
        # crossing, as the timing falls — closed with FINs either way, never left open or reset
        assert c["connection"]["close"]["kind"] in ("three-way", "four-way", "simultaneous")
        for side in ("client", "server"):
            states = [s["state"] for s in c["states"][side]]
            assert "ESTABLISHED" in states, (side, states)
    assert len(list((out / "ladders").glob("*.svg"))) == 2 and len(list((out / "ladders").glob("*.txt"))) == 2
    page = (out / "lab.html").read_text()
    assert page.count('<article class="rp-run"') == 2 and page.count("<svg") >= 2
    assert not (out / "INCOMPLETE").exists()


def test_every_interface_is_captured_from_the_first_packet_on(scripted_lab):
    """The session's very first packet — h1 asking who has its gateway — is the first frame of h1's capture,
    and nothing (no IPv6 chatter) was sent by the lab itself."""
    res, out, late = scripted_lab
    assert res.returncode == 0, res.stderr
    pcaps = sorted(p.name for p in out.glob("*.pcap"))
    assert pcaps == ["h1-eth0.pcap", "h2-eth0.pcap", "h3-eth0.pcap", "r0-eth1.pcap", "r0-eth2.pcap", "r0-eth3.pcap"]
    assert "ARP, Request who-has 192.168.1.1 tell 192.168.1.100" in tcpdump(out / "h1-eth0.pcap", "-c", "1")[0]
    for pcap in out.glob("*.pcap"):
        assert tcpdump(pcap, "ip6") == [], pcap.name
    # sabotage: a capture started after the first ping (from the script) misses that first packet
    first_late = tcpdump(late, "-c", "1")
    assert not first_late or "who-has 192.168.1.1 tell 192.168.1.100" not in first_late[0]


@pytest.mark.parametrize("args, message", [
    (["lab", "lan", "--script", "/nonexistent.cli"], "--script /nonexistent.cli: no such file"),
    (["lab"], "name a topology: one of lan, multi-lan, wan, or --topo/--custom"),
    (["lab", "--topo", "single,2", "--hosts", "3"], "--hosts is for netbed's own topologies"),
    (["lab", "lan", "--out", "/etc/hostname"], "--out /etc/hostname is a file, not a folder"),
])
def test_lab_bad_input_is_one_line(args, message):
    res = netbed(*args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr
