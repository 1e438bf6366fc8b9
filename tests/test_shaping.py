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
