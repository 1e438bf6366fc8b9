"""`--switch ovs`, `--delay`, `--jitter` and `--loss`, each proven by its measured effect.

Delay, jitter and netem loss need the kernel's sch_netem, Open vSwitch its openvswitch module: those
tests skip on a kernel without them, for that reason alone (tests/capability.py), and fail instead
under NETBED_REQUIRE_NETEM_OVS=1, as the Vagrant VM runs them. The effect is read from what ping
measures across the emulated network, never from the values netbed was given:

- delay D on every host's egress: each echo crosses two egresses, so every RTT is at least 2·D and
  the median at most 2·D + RTT_OVERHEAD_MS (stretched by the machine's slowdown, netbed.pace);
- jitter J around D: netem draws each delay uniformly from [D−J, D+J], so an RTT (two draws) is
  triangular on 2·D ± 2·J with an interquartile range of 2·J·(2−√2) ≈ 1.17·J; the measured one must be
  at least IQR_SHARE of that (the interquartile range, not the standard deviation: an emulated CPU's
  occasional late echo must not pass for jitter, nor fail the sabotage without it);
- loss P on every host's egress: an echo round trip survives with (1−P)², and the count lost out of
  N lies within LOSS_SIGMAS binomial standard deviations of N·(1−(1−P)²).
Each has a sabotage beside it that shows the measurement can tell the effect from its absence.
"""
from __future__ import annotations

import contextlib
import math
import re
import statistics
import subprocess
from collections.abc import Iterator

import pytest
from capability import NETEM, OVS, REQUIRE_ENV, missing, require_kernel
from conftest import NETBED, REPO, netbed
from test_shaping import RATE_MBIT, _achieved_mbit

from netbed import pace, topologies
from netbed.errors import NetbedError
from netbed.network import Testbed, shaping
from netbed.preflight import kernel_has_module

pytestmark = pytest.mark.netbed

DELAY_MS = 20.0
JITTER_MS = 10.0
RTT_OVERHEAD_MS = 5.0  # what the emulation itself adds to an RTT on the reference machine (ping, veths, bridge)
CLOCK_MS = 1.0  # netem releases on timer ticks: never early by more than this
PINGS = 40
PING_GAP = 0.05  # s: far wider than 2·JITTER, so netem's jitter cannot reorder the echoes
LOSS_PCT = 20.0
LOSS_PINGS = 200
LOSS_SIGMAS = 4  # a true effect falls outside this with probability below 1e-4


def _rtts(tb: Testbed, src: str, dst: str, count: int = PINGS, gap: float = PING_GAP) -> tuple[list[float], int]:
    """(RTTs in ms of the echoes answered, how many of `count` went unanswered), from ping itself."""
    out = tb.run(src, ["ping", "-n", "-c", str(count), "-i", f"{gap:g}", "-W", "2", tb.spec(dst).ip],
                 check=False, timeout=count * gap + 30).stdout
    rtts = [float(m) for m in re.findall(r"time=([\d.]+) ms", out)]
    sent = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert sent, out
    return rtts, int(sent.group(1)) - int(sent.group(2))


@contextlib.contextmanager
def _shaped(shape: shaping.LinkShape, switch: str = "bridge") -> Iterator[Testbed]:
    """Two hosts on one switch, their neighbours already resolved (netem may also drop or delay ARP)."""
    with Testbed(topologies.build("lan", hosts=2), switch=switch) as tb:
        assert tb.ping("h1", tb.spec("h2").ip) and tb.ping("h2", tb.spec("h1").ip)
        shaping.apply(tb, shape)
        yield tb


def _qdiscs(tb: Testbed, host: str) -> str:
    return tb.run(host, ["tc", "qdisc", "show", "dev", f"{host}-eth0"]).stdout


# -- delay -------------------------------------------------------------------------------------------
def test_delay_shows_in_every_rtt_within_the_stated_tolerance():
    require_kernel(NETEM)
    with _shaped(shaping.parse_shape(delay=str(DELAY_MS))) as tb:
        rtts, lost = _rtts(tb, "h1", "h2")
        qdisc = _qdiscs(tb, "h1")
    expected = 2 * DELAY_MS
    assert lost == 0 and len(rtts) == PINGS
    assert min(rtts) >= expected - CLOCK_MS, rtts  # netem never delivers early
    assert statistics.median(rtts) <= expected + pace.patience(RTT_OVERHEAD_MS), rtts
    assert "netem" in qdisc and f"delay {DELAY_MS:g}ms" in qdisc.replace(".0ms", "ms"), qdisc


def test_sabotage_without_delay_the_rtt_is_far_below_the_delayed_one():
    with _shaped(shaping.parse_shape()) as tb:
        rtts, lost = _rtts(tb, "h1", "h2", count=10)
    assert lost == 0 and statistics.median(rtts) < 2 * DELAY_MS - CLOCK_MS, rtts  # the check above can fail


# Stock `mn` in a network namespace of its own (its s1 cannot meet another test's), as
# tests/test_cli_mininet_live.py runs it; its CLI and netbed's read the same ping from standard input.
STOCK_MN = ["unshare", "-n", "-m", "--propagation", "private", "sh", "-c",
            'mount -t sysfs sysfs /sys && exec mn "$@"', "mn", "--switch", "lxbr", "--controller", "none",
            "--topo", "single,2"]
STOCK_DELAY_MS = 10


def _cli_rtts(argv: list[str], command: str) -> list[float]:
    res = subprocess.run(argv, input=command + "\n", capture_output=True, text=True, cwd=REPO,
                         timeout=pace.patience(120))
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", res.stdout + res.stderr)]  # Mininet logs to either


def test_delay_against_stock_mininets_tclink_each_as_documented():
    """Mininet's TCLink delays both ends of every link, so h1 → s1 → h2 crosses two delayed egresses each
    way (RTT 4·D); netbed's --delay is on each host's egress only (RTT 2·D): the same number, half the RTT."""
    require_kernel(NETEM)
    d, ping = STOCK_DELAY_MS, f"h1 ping -n -c {PINGS // 2} -i {PING_GAP:g} h2"
    stock = _cli_rtts([*STOCK_MN, "--link", f"tc,delay={d}ms"], ping)
    ours = _cli_rtts([*NETBED, "topo", "lan", "--hosts", "2", "--delay", str(d), "--test", "none", "--cli"], ping)
    tolerance = pace.patience(RTT_OVERHEAD_MS)
    for rtts, crossed in ((stock, 4), (ours, 2)):  # delayed egresses on the round trip
        assert len(rtts) == PINGS // 2, rtts
        assert crossed * d - CLOCK_MS <= min(rtts) and statistics.median(rtts) <= crossed * d + tolerance, rtts


# -- jitter ------------------------------------------------------------------------------------------
JITTER_IQR_MS = 2 * JITTER_MS * (2 - math.sqrt(2))  # of the sum of two uniform draws in [-J, J]
JITTER_SD_MS = JITTER_MS * math.sqrt(2 / 3)
IQR_SHARE = 0.4  # 40 RTTs of true jitter: a sample IQR below 0.52 of the theory comes once in 1000 runs (simulated)


def _iqr(values: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q3 - q1


def test_jitter_shows_as_rtt_spread_around_the_delay():
    require_kernel(NETEM)
    with _shaped(shaping.parse_shape(delay=str(DELAY_MS), jitter=str(JITTER_MS))) as tb:
        rtts, lost = _rtts(tb, "h1", "h2")
    assert lost == 0 and len(rtts) == PINGS
    assert _iqr(rtts) >= IQR_SHARE * JITTER_IQR_MS, (_iqr(rtts), rtts)
    assert min(rtts) >= 2 * (DELAY_MS - JITTER_MS) - CLOCK_MS, rtts
    assert max(rtts) <= 2 * (DELAY_MS + JITTER_MS) + pace.patience(RTT_OVERHEAD_MS), rtts
    # the mean of PINGS draws: within 4 of its standard errors of 2·D (plus the emulation's overhead)
    mean_tolerance = 4 * JITTER_SD_MS / math.sqrt(PINGS)
    assert 2 * DELAY_MS - mean_tolerance <= statistics.mean(rtts) <= \
        2 * DELAY_MS + mean_tolerance + pace.patience(RTT_OVERHEAD_MS), rtts


def test_sabotage_delay_without_jitter_has_no_such_spread():
    require_kernel(NETEM)
    with _shaped(shaping.parse_shape(delay=str(DELAY_MS))) as tb:
        rtts, _ = _rtts(tb, "h1", "h2")
    assert _iqr(rtts) < IQR_SHARE * JITTER_IQR_MS, (_iqr(rtts), rtts)  # the spread check above can fail


# -- rate, queue and delay together -----------------------------------------------------------------
STACK_QUEUE = 50  # packets


def test_rate_queue_and_delay_stack_as_mininets_tclink_stacks_them(netbed_lab):
    """TCIntf puts netem (delay, loss, `limit` = max_queue_size) under an HTB class at the rate; so does
    netbed. Measured: the rate still limits the transfer, and every RTT carries the delay."""
    require_kernel(NETEM)
    shape = shaping.parse_shape(delay=str(DELAY_MS), bw=str(RATE_MBIT), queue=str(STACK_QUEUE))
    achieved, qdiscs = _achieved_mbit(netbed_lab, shape)
    assert achieved <= 1.05 * RATE_MBIT, achieved  # slow start under 40 ms RTTs may stay below the rate, never above
    assert "htb 1:" in qdiscs and "netem 10:" in qdiscs and f"limit {STACK_QUEUE}" in qdiscs, qdiscs
    with _shaped(shape) as tb:
        rtts, lost = _rtts(tb, "h1", "h2", count=10)
    assert lost == 0 and min(rtts) >= 2 * DELAY_MS - CLOCK_MS, rtts


# -- loss --------------------------------------------------------------------------------------------
def _loss_bounds(pct: float, n: int = LOSS_PINGS) -> tuple[float, float]:
    p = 1 - (1 - pct / 100) ** 2  # an echo or its reply dropped
    sigma = math.sqrt(n * p * (1 - p))
    return n * p - LOSS_SIGMAS * sigma, n * p + LOSS_SIGMAS * sigma


def _lost(pct: float) -> tuple[int, str]:
    with _shaped(shaping.parse_shape(loss=str(pct))) as tb:
        _, lost = _rtts(tb, "h1", "h2", count=LOSS_PINGS, gap=0.01)
        return lost, _qdiscs(tb, "h1")


def test_loss_shows_as_ping_loss_within_a_binomial_tolerance():
    lost, qdisc = _lost(LOSS_PCT)
    low, high = _loss_bounds(LOSS_PCT)
    assert low <= lost <= high, f"{lost} of {LOSS_PINGS} echoes lost, expected {low:.0f}..{high:.0f}"
    if shaping.netem_available():  # where the kernel has netem, the loss is netem's (else iptables')
        assert "netem" in qdisc and f"loss {LOSS_PCT:g}%" in qdisc, qdisc


def test_netem_carries_the_loss_where_the_kernel_has_it():
    require_kernel(NETEM)
    _, qdisc = _lost(LOSS_PCT)
    assert "netem" in qdisc and f"loss {LOSS_PCT:g}%" in qdisc, qdisc


def test_sabotage_a_quarter_of_the_loss_falls_outside_the_tolerance():
    lost, _ = _lost(LOSS_PCT / 4)
    assert lost < _loss_bounds(LOSS_PCT)[0], lost  # the tolerance tells 5 % from 20 %


# -- Open vSwitch ------------------------------------------------------------------------------------
def test_ovs_switch_is_open_vswitch_and_passes_pingall():
    require_kernel(OVS)
    with Testbed(topologies.build("lan", hosts=3), switch="ovs") as tb:
        bridges = tb.net.switches
        assert [type(s).__name__ for s in bridges] == ["OVSBridge"]
        listed = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True, check=True).stdout.split()
        assert bridges[0].name in listed, listed  # Open vSwitch's own database has the switch
        hosts = tb.topology.hosts
        assert tb.ping_pairs([(a.name, b.ip) for a in hosts for b in hosts if a is not b]) == []
    res = netbed("topo", "lan", "--hosts", "3", "--switch", "ovs", "--test", "pingall")
    assert res.returncode == 0 and "0% dropped (6/6 received)" in res.stdout, res.stdout + res.stderr


def test_an_experiment_passes_on_ovs_across_a_router(tmp_path):
    require_kernel(OVS)
    res = netbed("run", "handshake", "--topo", "multi-lan", "--switch", "ovs", "--out", str(tmp_path / "run"))
    assert res.returncode == 0 and res.stdout.startswith("PASS  handshake on multi-lan"), res.stdout + res.stderr


def test_ovs_with_netem_delay_passes_pingall_and_delays():
    require_kernel(OVS)
    require_kernel(NETEM)
    res = netbed("topo", "lan", "--hosts", "2", "--switch", "ovs", "--delay", str(DELAY_MS), "--test", "pingall")
    assert res.returncode == 0 and "0% dropped (2/2 received)" in res.stdout, res.stdout + res.stderr
    with _shaped(shaping.parse_shape(delay=str(DELAY_MS)), switch="ovs") as tb:
        rtts, _ = _rtts(tb, "h1", "h2", count=10)
    assert min(rtts) >= 2 * DELAY_MS - CLOCK_MS, rtts


# -- the skips themselves ----------------------------------------------------------------------------
@pytest.mark.parametrize("env, has, expected", [
    ({}, True, None),
    ({}, False, ("skip", "kernel has no sch_netem module")),
    ({REQUIRE_ENV: "1"}, False, ("fail", f"kernel has no sch_netem module, and {REQUIRE_ENV}=1 requires it")),
    ({REQUIRE_ENV: "1"}, True, None),
])
def test_a_missing_module_skips_with_its_name_or_fails_when_required(env, has, expected):
    assert missing(NETEM, env, has=lambda module: has) == expected


@pytest.mark.parametrize("env, tool, expected", [
    ({}, "/usr/bin/ovs-vsctl", None),
    ({}, None, ("skip", "Open vSwitch is not installed (it is opt-in: sudo NETBED_WITH_OVS=1 make setup)")),
    ({REQUIRE_ENV: "1"}, None, ("fail", "Open vSwitch is not installed (it is opt-in: sudo NETBED_WITH_OVS=1 "
                                        f"make setup), and {REQUIRE_ENV}=1 requires it")),
])
def test_a_kernel_with_openvswitch_but_no_open_vswitch_programs_skips_unless_required(env, tool, expected):
    """Most Debian/Ubuntu kernels ship openvswitch.ko; its programs are netbed's opt-in, so `make test`
    there skips the OVS tests naming the opt-in — and the Vagrant VM, which opts in, requires them."""
    assert missing(OVS, env, has=lambda module: True, which=lambda name: tool) == expected


def test_ovs_is_refused_in_one_line_naming_what_is_missing(monkeypatch):
    from netbed import preflight

    monkeypatch.setattr(preflight, "kernel_has_module", lambda name: False)
    with pytest.raises(NetbedError, match=r"^--switch ovs: this kernel \(.*\) has no openvswitch module — use "
                                          r"--switch bridge"):
        Testbed(topologies.build("lan"), switch="ovs")
    monkeypatch.setattr(preflight, "kernel_has_module", lambda name: True)
    monkeypatch.setattr(preflight.shutil, "which", lambda tool: None)
    with pytest.raises(NetbedError, match=r"^--switch ovs: Open vSwitch is not installed \(no ovs-vsctl\)"):
        Testbed(topologies.build("lan"), switch="ovs")


def test_kernel_has_module_reads_loaded_builtin_and_installed_modules(tmp_path):
    sys_module, modules = tmp_path / "sys", tmp_path / "lib"
    (sys_module / "sch_htb").mkdir(parents=True)
    (modules / "6.1.0-test").mkdir(parents=True)
    (modules / "6.1.0-test" / "modules.builtin").write_text("kernel/net/sched/sch_fq_codel.ko\n")
    (modules / "6.1.0-test" / "modules.dep").write_text(
        "kernel/net/sched/sch_netem.ko.xz:\nkernel/net/openvswitch/openvswitch.ko.zst: kernel/net/nsh/nsh.ko.zst\n")

    def has(name: str, release: str = "6.1.0-test") -> bool:
        return kernel_has_module(name, release, str(sys_module), str(modules))

    assert has("sch_htb") and has("sch_fq_codel") and has("sch_netem") and has("openvswitch")
    assert not has("nsh_missing") and not has("sch_cake") and not has("sch_netem", release="6.1.0-other")
