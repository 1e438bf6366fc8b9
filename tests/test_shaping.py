"""Link delay, jitter, loss: validated before anything is built; netem where the kernel has it."""
import re

import pytest
from conftest import netbed

from netbed.errors import NetbedError
from netbed.network.shaping import LinkShape, netem_available, parse_shape


@pytest.mark.parametrize("kwargs, message", [
    ({"delay": "abc"}, "--delay (ms) must be a number"),
    ({"delay": "-5"}, "--delay (ms) must be between 0 and 10000"),
    ({"loss": "101"}, "--loss (%) must be between 0 and 100"),
    ({"jitter": "3"}, "--jitter needs a --delay"),
])
def test_bad_link_parameters_are_one_line_errors(kwargs, message):
    with pytest.raises(NetbedError, match=re.escape(message)):
        parse_shape(**kwargs)


def test_loss_alone_needs_no_netem():
    assert parse_shape(loss="5") == LinkShape(loss_pct=5.0)
    assert not parse_shape()


@pytest.mark.netbed
def test_delay_works_with_netem_or_names_the_missing_module():
    res = netbed("topo", "lan", "--hosts", "2", "--delay", "20", "--test", "ping-ends")
    if netem_available():
        assert res.returncode == 0, res.stderr
    else:
        assert res.returncode == 2
        assert res.stderr.strip() == ("netbed: link delay and jitter need the kernel module sch_netem, which this "
                                      "kernel does not have (try `modprobe sch_netem`); --loss works without it")


@pytest.mark.netbed
def test_total_loss_cuts_the_link_and_nothing_is_left_behind():
    res = netbed("topo", "lan", "--hosts", "2", "--loss", "100", "--test", "ping-ends")
    assert res.returncode == 1
    assert "100% dropped (0/1 received)" in res.stdout


@pytest.mark.parametrize("args, message", [
    (["--bw", "fast"], "--bw (Mbit/s) must be a number, not 'fast'"),
    (["--bw", "0"], "--bw (Mbit/s) must be above 0, not 0"),
    (["--bw", "10", "--queue", "2.5"], "--queue (packets) must be a whole number of at least 1, not 2.5"),
    (["--queue", "50"], "--queue needs a --bw: a queue forms behind a rate limit"),
])
def test_bad_rate_or_queue_is_one_line_and_exit_2(args, message):
    res = netbed("topo", "lan", "--hosts", "2", *args)
    assert res.returncode == 2 and res.stderr.strip() == f"netbed: {message}", res.stderr


RATE_MBIT = 5
RATE_DATA = 1_500_000


def _achieved_mbit(netbed_lab, shape) -> tuple[float, str]:
    """Mbit/s of TCP payload the server-side capture saw arrive, first data segment to last; h1's qdiscs."""
    from netbed.network import shaping

    lab = netbed_lab("lan", hosts=2)
    shaping.apply(lab.tb, shape)
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, [f"send:{RATE_DATA}", "close"]), server, timeout=60)
    qdiscs = lab.run("h1", ["tc", "qdisc", "show", "dev", "h1-eth0"]).stdout
    conn = netbed_lab.evidence().connection("server")
    data = [s for s in conn.segments if conn.side(s) == "client" and s.payload_len]
    return sum(s.payload_len for s in data) * 8 / (data[-1].time - data[0].time) / 1e6, qdiscs


@pytest.mark.netbed
def test_bw_limits_the_rate_a_transfer_achieves(netbed_lab):
    achieved, qdiscs = _achieved_mbit(netbed_lab, parse_shape(bw=str(RATE_MBIT), queue="100"))
    # HTB is exact on average; the first burst and the last segments' timing leave a few per cent
    assert 0.85 * RATE_MBIT <= achieved <= 1.05 * RATE_MBIT, achieved
    assert "htb 1:" in qdiscs and "pfifo 10:" in qdiscs and "limit 100p" in qdiscs, qdiscs


@pytest.mark.netbed
def test_sabotage_without_bw_the_same_transfer_is_far_faster(netbed_lab):
    achieved, _ = _achieved_mbit(netbed_lab, parse_shape())
    assert achieved > 3 * RATE_MBIT, achieved  # the measurement above can tell a limit from none
