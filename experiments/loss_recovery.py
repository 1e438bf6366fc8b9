"""TCP协议传输数据之所以可靠地原因在于反馈机制 — lost segments are retransmitted; every byte arrives."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "loss-recovery"
ORDER = 140
CLAIM = "流式协议,可靠协议; TCP协议传输数据之所以可靠地原因在于反馈机制"
GLOSS = ("With every 10th packet towards the server dropped (iptables statistic, deterministic), a 300 KB "
         "transfer still arrives intact by retransmission; a dropped SYN is sent again after the initial RTO (1 s).")
TOPOLOGIES = ("lan", "multi-lan", "wan")
DATA = 300_000
DATA_PORT, SYN_PORT = 9000, 9001


def run(lab: Lab) -> None:
    host = lab.server_host
    # Drops happen in the server's own firewall (its namespace only): the captures, taken on the
    # wire before it, see each lost packet and its retransmission.
    lab.run(host, ["iptables", "-w", "-A", "INPUT", "-p", "tcp", "--dport", str(DATA_PORT), "-m", "statistic",
                   "--mode", "nth", "--every", "10", "--packet", "5", "-j", "DROP"])
    lab.run(host, ["iptables", "-w", "-A", "INPUT", "-p", "tcp", "--syn", "--dport", str(SYN_PORT), "-m", "statistic",
                   "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP"])
    server = lab.server(["recv-eof", "close"], port=DATA_PORT)
    client = lab.client(server, [f"send:{DATA}", "close"])
    lab.wait(client, server)
    syn_server = lab.server(["recv-eof", "close"], port=SYN_PORT, name="syn-server")
    syn_client = lab.client(syn_server, ["send:10", "close"], name="syn-client")
    lab.wait(syn_client, syn_server)
    lab.facts["dropped"] = lab.run(host, ["iptables", "-w", "-L", "INPUT", "-v", "-n", "-x"]).stdout


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    expect.equal("every byte arrives (SHA-256 of what was sent and what was read)",
                 (DATA, client["sent_sha256"]), (server["received"], server["received_sha256"]))
    conn = ev.connection("client")
    if expect.that("the transfer is in the client-side capture", conn is not None, "looked up by port"):
        expect.that("the trace shows retransmissions by the sender", conn.retransmissions["client"] > 0,
                    f"{conn.retransmissions['client']} retransmitted segments")
        expect.equal("the trace counts each byte once", DATA, conn.bytes_client)
    syn_conn = ev.connection("client", "syn-client")
    if not expect.that("the second connection is in the capture", syn_conn is not None, "looked up by port"):
        return
    syns = [s for s in syn_conn.segments if s.syn and not s.has_ack]
    if expect.equal("its SYN was sent twice, with the same ISN", (2, 1), (len(syns), len({s.seq for s in syns}))):
        expect.within("the SYN is retransmitted after the initial RTO (about 1 s)", syns[1].time - syns[0].time,
                      0.9, 1.5)
    expect.equal("and then the handshake completes", "complete", syn_conn.handshake)
