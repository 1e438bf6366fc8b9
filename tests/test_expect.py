"""Ladder expectations: packetdrill-like lines bind x and y, check x+1, and show a readable diff."""
from dataclasses import dataclass

from netbed.expect import Expect, flag_text
from netbed.trace.constants import ACK, FIN, PSH, RST, SYN


@dataclass
class Seg:
    from_client: bool
    flags: int
    seq: int
    ack: int
    payload_len: int = 0
    time: float = 0.0


class Conn:
    def side(self, seg):
        return "client" if seg.from_client else "server"


HANDSHAKE = ["client > S  seq=x ack=0", "server > S. seq=y ack=x+1", "client > .  seq=x+1 ack=y+1"]


def test_flag_text_follows_tcpdump():
    assert [flag_text(f) for f in (SYN, SYN | ACK, ACK, FIN | ACK, RST, RST | ACK, PSH | ACK)] == \
        ["S", "S.", ".", "F.", "R", "R.", "P."]


def test_a_real_handshake_matches_including_sequence_wraparound():
    x, y = 2**32 - 1, 5
    segs = [Seg(True, SYN, x, 0), Seg(False, SYN | ACK, y, 0), Seg(True, ACK, 0, y + 1)]
    expect = Expect()
    assert expect.ladder("handshake", Conn(), segs, HANDSHAKE)
    assert expect.passed


def test_a_wrong_ack_fails_and_shows_expected_beside_observed():
    segs = [Seg(True, SYN, 100, 0), Seg(False, SYN | ACK, 500, 100), Seg(True, ACK, 101, 501)]
    expect = Expect()
    assert not expect.ladder("handshake", Conn(), segs, HANDSHAKE)
    detail = expect.assertions[0].detail
    assert "expected" in detail and "observed" in detail
    assert "✗ server > S. seq=y ack=x+1" in detail
    assert "server > S. seq=500 ack=100" in detail


def test_missing_and_extra_segments_fail():
    segs = [Seg(True, SYN, 1, 0)]
    assert not Expect().ladder("short", Conn(), segs, HANDSHAKE)
    long = [Seg(True, SYN, 1, 0), Seg(False, SYN | ACK, 9, 2), Seg(True, ACK, 2, 10), Seg(True, ACK, 2, 10)]
    assert not Expect().ladder("long", Conn(), long, HANDSHAKE)


def test_psh_is_ignored_unless_the_pattern_asks_for_it():
    segs = [Seg(True, PSH | ACK, 1, 1, payload_len=10)]
    assert Expect().ladder("data", Conn(), segs, ["client > . len=10"])
    assert Expect().ladder("data", Conn(), segs, ["client > P. len>0"])
    assert not Expect().ladder("data", Conn(), segs, ["server > . len=10"])


def test_an_experiment_without_assertions_does_not_pass():
    assert not Expect().passed
