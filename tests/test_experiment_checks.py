"""The experiments' own check helpers on hand-made segments: what they accept and what they must refuse."""
from experiments import close_server, loss_recovery, simultaneous_close
from netbed.trace import classify_segments
from netbed.trace.constants import ACK, FIN, PSH, RST, SYN
from netbed.trace.model import Endpoint, Segment

C, S = Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.3", 9000)
X, Y = 1000, 5000  # client and server ISNs


def seg(t, sender, seq, ack, flags, length=0):
    src, dst = (C, S) if sender == "client" else (S, C)
    return Segment(frame=int(t * 10), time=t, src=src, dst=dst, seq=seq, ack=ack, flags=flags, payload_len=length)


def handshake():
    return [seg(0.1, "client", X, 0, SYN), seg(0.2, "server", Y, X + 1, SYN | ACK),
            seg(0.3, "client", X + 1, Y + 1, ACK)]


def transfer(resent, dropped=(1, 3)):
    """Four 1000-byte segments, the server acknowledging what it has; `dropped` never reach it, `resent` come again."""
    segs, have, t = handshake(), set(), 1.0
    for i in [0, 1, 2, 3] + list(resent):
        segs.append(seg(t, "client", X + 1 + 1000 * i, Y + 1, ACK | PSH, 1000))
        if i not in dropped or t >= 10:  # the first copy of a dropped segment never arrives
            have.add(i)
        contiguous = next(n for n in range(5) if n not in have)
        segs.append(seg(t + 0.5, "server", Y + 1, X + 1 + 1000 * contiguous, ACK))
        t = max(t + 1, 10.0) if i == 3 or t >= 10 else t + 1
    (conn,) = classify_segments(segs)
    return conn


def test_the_servers_duplicate_acks_show_the_gap_and_the_resent_segment_fills_it():
    conn = transfer(resent=[1, 3])
    assert [at for at, _ in loss_recovery.gaps(conn)] == [1001]  # the lost tail has nothing after it: no dup ACK
    assert loss_recovery.not_sent_again(conn, loss_recovery.gaps(conn)) == []


def test_a_tail_loss_probe_alone_does_not_fill_a_gap_in_the_middle():
    conn = transfer(resent=[3])  # only the last segment comes again, as a tail-loss probe sends it
    assert conn.retransmissions["client"] > 0  # the old assertion would have passed
    assert loss_recovery.not_sent_again(conn, loss_recovery.gaps(conn)) == [1001]


def test_a_tail_loss_probe_without_loss_makes_no_gap():
    conn = transfer(resent=[3], dropped=())
    assert conn.retransmissions["client"] > 0 and loss_recovery.gaps(conn) == []


def test_acks_trailing_the_data_are_no_gap():
    """A busy receiver: four segments captured, then its ACKs, each for one more segment (the socket's backlog
    processed late). Every ACK is below data already captured, none is a duplicate: nothing was lost."""
    segs = handshake()
    segs += [seg(1.0 + i / 100, "client", X + 1 + 1000 * i, Y + 1, ACK | PSH, 1000) for i in range(4)]
    segs += [seg(1.5 + i / 100, "server", Y + 1, X + 1 + 1000 * (i + 1), ACK) for i in range(4)]
    (conn,) = classify_segments(segs)
    assert loss_recovery.gaps(conn) == []


def test_a_window_update_at_the_same_ack_is_no_duplicate():
    segs = handshake() + [seg(1.0 + i / 10, "client", X + 1 + 1000 * i, Y + 1, ACK | PSH, 1000) for i in range(3)]
    segs += [Segment(frame=15, time=1.5, src=S, dst=C, seq=Y + 1, ack=X + 1001, flags=ACK, window=100),
             Segment(frame=16, time=1.6, src=S, dst=C, seq=Y + 1, ack=X + 1001, flags=ACK, window=900)]
    (conn,) = classify_segments(segs)
    assert loss_recovery.gaps(conn) == []


def test_a_sack_block_above_the_ack_is_a_gap_whatever_the_window():
    """Linux's receiver opens its window as the reader drains it: its duplicate ACKs differ in window, their SACK
    blocks say what is missing."""
    segs = handshake() + [seg(1.0 + i / 10, "client", X + 1 + 1000 * i, Y + 1, ACK | PSH, 1000) for i in range(3)]
    segs += [Segment(frame=15, time=1.5, src=S, dst=C, seq=Y + 1, ack=X + 1001, flags=ACK, window=100),
             Segment(frame=16, time=1.6, src=S, dst=C, seq=Y + 1, ack=X + 1001, flags=ACK, window=900)]
    (conn,) = classify_segments(segs)
    assert loss_recovery.gaps(conn, sacks={16: [(X + 2001, X + 3001)]}) == [(1001, 1.6)]
    assert loss_recovery.gaps(conn, sacks={16: [(X + 1, X + 1001)]}) == []  # a D-SACK, below the ACK: no gap


def test_the_drop_counter_is_read_from_the_iptables_listing():
    rule = "--  *      *       0.0.0.0/0            0.0.0.0/0            tcp"
    listing = (f"Chain INPUT (policy ACCEPT 60 packets, 301000 bytes)\n"
               f"    pkts      bytes target     prot opt in     out     source               destination\n"
               f"       2    44200 DROP       6    {rule} dpt:9000 statistic mode nth every 10 packet 5\n"
               f"       1       60 DROP       6    {rule} dpt:9001 flags:0x17/0x02 statistic mode nth every 2\n")
    assert loss_recovery.drop_counter(listing, 9000) == 2
    assert loss_recovery.drop_counter(listing, 9001) == 1
    assert loss_recovery.drop_counter("", 9000) == 0


def close(steps):
    (conn,) = classify_segments(handshake() + steps)
    return conn


def test_the_whole_server_initiated_close_passes_four_and_three_segments():
    g, f = Y + 1 + 500, X + 1
    four = close([seg(1, "server", Y + 1, X + 1, ACK | PSH, 500), seg(2, "server", g, f, FIN | ACK),
                  seg(3, "client", f, g + 1, ACK), seg(4, "client", f, g + 1, FIN | ACK),
                  seg(5, "server", g + 1, f + 1, ACK)])
    assert close_server.close_problem(four, "server") is None
    # the FIN carries the last data: the ACK must cover seq + payload + 1
    three = close([seg(1, "server", Y + 1, X + 1, FIN | ACK | PSH, 500), seg(2, "client", f, g + 1, FIN | ACK),
                   seg(3, "server", g + 1, f + 1, ACK)])
    assert close_server.close_problem(three, "server") is None


def test_a_server_fin_answered_by_rst_is_not_a_whole_close():
    g, f = Y + 1, X + 1
    conn = close([seg(1, "server", g, f, FIN | ACK), seg(2, "client", f, g + 1, ACK),
                  seg(3, "client", f, g + 1, RST | ACK)])
    assert close_server.close_problem(conn, "server") == "a RST ends it"


def test_an_ack_of_the_data_before_a_fin_does_not_acknowledge_the_fin():
    fin = seg(1, "client", X + 1, Y + 1, FIN | ACK | PSH, 100)
    assert not simultaneous_close.acknowledges(seg(2, "server", Y + 1, X + 1 + 100, FIN | ACK), fin)
    assert simultaneous_close.acknowledges(seg(2, "server", Y + 1, X + 1 + 101, FIN | ACK), fin)
