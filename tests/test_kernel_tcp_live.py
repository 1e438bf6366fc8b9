"""The kernel's congestion state (tcp:tcp_probe), recorded beside a real transfer and joined to its capture."""
import csv

import pytest

from netbed.trace import kernel_tcp

pytestmark = pytest.mark.netbed
DATA = 3_000_000


def test_snd_una_steps_through_the_acks_the_capture_saw(netbed_lab):
    lab = netbed_lab("lan", hosts=2)
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, [f"send:{DATA}", "close"]), server)
    ev = netbed_lab.evidence()
    with open(ev.directory / kernel_tcp.PROBE_FILE) as f:
        header = next(csv.reader(f))
    assert header[:3] == ["time", "host", "netns"] and "cwnd" in header and "srtt_us" in header
    probes = ev.probes("client")
    conn = ev.connection("client")
    acks = sum(1 for s in conn.segments if conn.side(s) == "server" and not s.syn and not s.fin)
    # one per ACK the socket received; the receiving stack may merge ACKs the capture saw apart
    assert len(probes) > 10 and len(probes) >= acks // 2, (len(probes), acks)
    agreement = kernel_tcp.ack_agreement(probes, conn, "client")
    # every snd_una the kernel held is an ACK number the client-side capture saw, not later than the probe
    assert agreement.kernel_only == [], agreement
    assert agreement.late <= agreement.distinct_una // 50, agreement
    assert agreement.covered > 0.7, agreement  # GRO may merge ACKs the capture saw apart
    # the kernel's snd_nxt never runs past what the capture saw the client send
    sent_end = max((s.seq + s.payload_len) % 2**32 for s in conn.segments if conn.side(s) == "client")
    assert max(p.snd_nxt for p in probes) <= sent_end
    assert all(p.cwnd > 0 and p.srtt_us > 0 for p in probes)
    # the receiver's probes see the data arrive (data_len) and nothing of the machine's other traffic
    assert {p.host for p in kernel_tcp.read_probes(ev.directory)} <= {"h1", "h2"}
    assert sum(p.data_len for p in ev.probes("server")) >= DATA * 0.9


def test_sabotage_a_shifted_snd_una_disagrees_with_the_capture(netbed_lab):
    """The join can fail: snd_una moved by one MSS is no ACK the capture saw."""
    lab = netbed_lab("lan", hosts=2)
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:500000", "close"]), server)
    ev = netbed_lab.evidence()
    probes = ev.probes("client")
    shifted = [kernel_tcp.Probe(**{**p.__dict__, "snd_una": (p.snd_una + 1448) % 2**32}) for p in probes]
    bad = kernel_tcp.ack_agreement(shifted, ev.connection("client"), "client")
    assert bad.kernel_only and bad.covered < 0.5, bad
