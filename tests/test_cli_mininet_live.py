"""Mininet's CLI walkthrough typed into a pseudo-terminal, on netbed and on stock `mn`, command by command.

Stock runs `mn --switch lxbr --controller none --topo single,2` inside `unshare -n -m` with its own
sysfs (its switch lives in the root namespace, whose `s1` would collide with another run on the
machine); netbed runs
`netbed topo lan --hosts 2 --subnet 10.0.0.0/8 --cli` and `python topologies/lan.py` the same way, so
both networks are 10.0.0.1/8 and 10.0.0.2/8 and only what must differ is normalised (see `normalise`).
"""
from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.netbed

REPO = Path(__file__).resolve().parents[1]
PROMPT = "mininet> "
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "dumb", "HOME": "/root"}  # no DISPLAY: xterm refuses
# A fresh sysfs too: brctl (`dpctl show`) lists bridges from /sys/class/net, which shows the namespace
# that mounted it; so stock's `dpctl show` lists its s1 here as on a machine of its own.
STOCK = ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
         'mount -t sysfs sysfs /sys && exec mn "$@"', "mn",
         "--switch", "lxbr", "--controller", "none", "--topo", "single,2"]
NETBED_ARGS = ["--hosts", "2", "--subnet", "10.0.0.0/8", "--test", "none", "--cli"]
STOCK_IPERF_WAIT = 20  # s: stock `iperf` counts two "/sec" reports, iperf 2.1 prints one, it waits forever

# The CLI part of Mininet's walkthrough (mininet.org/walkthrough), in its order.
WALKTHROUGH = [
    "nodes", "net", "dump", "links", "intfs",
    "h1 ifconfig -a", "h1 ping -c 1 h2", "pingall", "pingpair", "pingallfull",
    "h1 python3 -m http.server 80 &", "h2 curl -m 5 h1", "h1 ps -a",
    "py h1.IP()", "link s1 h1 down", "h1 ping -c 1 -W 1 h2", "link s1 h1 up", "h1 ping -c 1 -W 2 h2",
    "sh echo from the root namespace", "noecho h1 echo quietly", "source {script}",
    "px answer = 6 * 7", "py answer", "dpctl show", "xterm h1", "iperf h1 h2",
]
STARTED_IN_H1 = {"python3", "ps"}  # by the walkthrough, before and at `h1 ps -a`
SETTLE = 1.0  # s between starting h1's web server (or fetching from it) and the next command
SOURCED = "h2 echo sourced\npy h2.IP()\n"


def drive(argv: list[str], cwd: Path, commands: list[str]) -> tuple[dict[str, str], int | None]:
    """Type each command at the prompt as a person would; return its output (echo removed) and exit code."""
    child = pexpect.spawn(argv[0], argv[1:], cwd=str(cwd), env=ENV, encoding="utf-8", timeout=90,
                          dimensions=(50, 200))
    outputs: dict[str, str] = {}
    try:
        child.expect_exact(PROMPT)
        for command in commands:
            child.sendline(command)
            wait = STOCK_IPERF_WAIT if command.startswith("iperf") and argv[0] == "unshare" else 60
            try:
                child.expect_exact(PROMPT, timeout=wait)
                outputs[command] = child.before
                if "&" in command or "curl" in command:
                    time.sleep(SETTLE)  # as a person types: the server is up, its log line printed
            except pexpect.TIMEOUT:
                outputs[command] = child.before + "\n<no prompt: still waiting>"
                child.sendintr()
                child.expect_exact(PROMPT)
        child.sendline("exit")
        child.expect(pexpect.EOF, timeout=60)
        outputs["exit"] = child.before
    finally:
        child.close(force=True)
    return outputs, child.exitstatus


def normalise(command: str, text: str) -> str:
    """Remove what must differ between two runs: the echo, pids, MACs, timings, counters, rates.

    netbed's hosts have IPv6 off unless asked (quiet captures), so ifconfig's inet6 lines go too.
    `ps -a` lists every process with a terminal on the machine (other runs' too, and ptys are
    reused): the processes h1's shell started (its web server, and ps itself) are compared, by name,
    among the rows on h1's terminal.
    """
    lines = text.replace("\r", "").split("\n")[1:]  # the first line is the echo of the command
    if command == "h1 ps -a":
        rows = [line.split() for line in lines if re.match(r"\s*\d+ ", line)]
        tty = next((r[1] for r in rows if r[-1] == "ps"), None)
        lines = [line for line in lines if not re.match(r"\s*\d+ ", line)]
        lines += sorted({r[-1] for r in rows if r[1] == tty} & STARTED_IN_H1)
    if command == "h1 ifconfig -a":
        lines = [line for line in lines if "inet6" not in line]
    out = "\n".join(lines).strip()
    out = re.sub(r"pid=\d+", "pid=N", out)
    # bash's "[1] 4330" job notice races Mininet's read of the pty (stock printed it or not, run to run)
    out = re.sub(r"^\[\d+\] \d+\n?", "", out, flags=re.M)
    out = re.sub(r"\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b", "MAC", out)
    out = re.sub(r"8000\.[0-9a-f]{12}", "8000.BRIDGEID", out)
    out = re.sub(r"\d+(\.\d+)?/\d+(\.\d+)?/\d+(\.\d+)?/\d+(\.\d+)? ms", "RTT ms", out)
    out = re.sub(r"time[=<]\d+(\.\d+)? ?ms", "time=T ms", out)
    out = re.sub(r"packet loss, time \d+ms", "packet loss, time Tms", out)
    out = re.sub(r"\d+(\.\d+)? [KMG]?bits/sec", "R bits/sec", out)
    out = re.sub(r"\[\d+/\w+/\d+ [\d:]+\]", "[DATE]", out)
    out = re.sub(r"(packets|bytes|errors|dropped|overruns|frame|carrier|collisions) \d+( \(.*?\))?", r"\1 N", out)
    return out


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    if shutil.which("mn") is None:
        pytest.skip("stock Mininet (mn) is not installed")
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "index.txt").write_text("served by h1\n")
    (cwd / "walk.cli").write_text(SOURCED)
    commands = [c.format(script=cwd / "walk.cli") for c in WALKTHROUGH]
    runs = {
        "mn": drive(STOCK, cwd, commands),
        "netbed topo lan": drive([str(REPO / ".venv/bin/netbed"), "topo", "lan", *NETBED_ARGS], cwd, commands),
        "topologies/lan.py": drive([sys.executable, str(REPO / "topologies/lan.py"), *NETBED_ARGS], cwd, commands),
    }
    return commands, runs


@pytest.mark.parametrize("build", ["netbed topo lan", "topologies/lan.py"])
def test_walkthrough_matches_stock_mn(sessions, build):
    commands, runs = sessions
    stock, _ = runs["mn"]
    ours, status = runs[build]
    assert status == 0, ours.get("exit")
    matched, differ = [], []
    for command in commands:
        a, b = normalise(command, stock[command]), normalise(command, ours[command])
        if command.startswith("iperf"):
            # stock never finishes here (see STOCK_IPERF_WAIT): its first line must match, and netbed
            # must finish with Mininet's result line, two rates (server, client)
            same = a.split("\n")[0] == b.split("\n")[0] and re.search(
                r"\*\*\* Results: \['R bits/sec', 'R bits/sec'\]", b) is not None
        else:
            same = a == b
        (matched if same else differ).append((command, a, b))
    print(f"\n{build}: {len(matched)}/{len(commands)} commands print as under stock mn")
    for command, a, b in differ:
        print(f"--- {command}\nstock mn:\n{a}\n{build}:\n{b}")
    assert not differ, [c for c, _, _ in differ]


def test_walkthrough_says_what_mininet_says(sessions):
    """Sabotage-proofing: the comparison sees real output, not two empty strings."""
    _, runs = sessions
    ours, _ = runs["netbed topo lan"]
    assert "available nodes are:" in ours["nodes"] and "h1 h2 s1" in ours["nodes"]
    assert "s1 lo:  s1-eth1:h1-eth0 s1-eth2:h2-eth0" in normalise("net", ours["net"])
    assert "1 received" in ours["h1 ping -c 1 h2"]
    assert "0 received" in ours["h1 ping -c 1 -W 1 h2"] or "unreachable" in ours["h1 ping -c 1 -W 1 h2"]
    assert "1 received" in ours["h1 ping -c 1 -W 2 h2"]
    assert "index.txt" in ours["h2 curl -m 5 h1"]
    assert "Error: Cannot connect to display" in ours["xterm h1"]
    assert "42" in ours["py answer"]
    # the user's `dpctl show` lists s1 and its ports, not the machine's bridges (brctl reads sysfs)
    assert re.search(r"^s1\s+8000\.[0-9a-f]{12}\s+no\s+s1-eth1\s+s1-eth2\s*$",
                     ours["dpctl show"].replace("\r", ""), re.M), ours["dpctl show"]


def test_normalise_keeps_real_differences():
    """Sabotage: a wrong address or a missing host survives normalisation and fails the comparison."""
    stock = "nodes\r\navailable nodes are: \r\nh1 h2 s1\r\n"
    assert normalise("nodes", stock) != normalise("nodes", stock.replace("h2 ", ""))
    ping = "x\n64 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.066 ms\n"
    assert normalise("p", ping) != normalise("p", ping.replace("10.0.0.2", "10.0.0.3"))
    assert normalise("p", ping) == normalise("p", ping.replace("0.066", "1.5"))
    ps = "h1 ps -a\n  PID TTY          TIME CMD\n 4330 pts/3    00:00:00 python3\n 4351 pts/3    00:00:00 ps\n"
    assert normalise("h1 ps -a", ps) != normalise("h1 ps -a", ps.replace("python3", "bash"))  # server gone


@pytest.mark.parametrize("script", ["multi_lan.py", "wan.py"])
def test_other_topology_scripts_open_mininets_cli(script, tmp_path):
    """Topologies with routers have no stock `mn` twin: each command must work, as Mininet prints it."""
    commands = ["nodes", "net", "dump", "intfs", "pingall", "py h1.IP()", "h1 ping -c 1 h2", "links"]
    outputs, status = drive([sys.executable, str(REPO / "topologies" / script), "--test", "none", "--cli"],
                            tmp_path, commands)
    assert status == 0, outputs.get("exit")
    assert "r1" in outputs["nodes"]
    assert "Results: 0% dropped" in outputs["pingall"]
    assert "1 received" in outputs["h1 ping -c 1 h2"]
    assert "(OK OK)" in outputs["links"] and "MISSING" not in outputs["links"]
    assert not any("Traceback" in text or "Unknown command" in text for text in outputs.values())
