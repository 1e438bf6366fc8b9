"""FIN的接收也作为一个文件结束符 — EOF comes after every byte that was queued before the FIN."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "fin-is-eof"
ORDER = 22
CLAIM = ("FIN的接收也作为一个文件结束符(end-of-file)传递给接收端应用进程,放在已排队等候该应用进程接收的任何其他数据之后,"
         "因为,FIN的接收意味着接收端应用进程在相应连接上再无额外数据可接收")
NETBED = ("The client sends 50,000 bytes and closes. The server's kernel has the FIN (its socket is in "
          "CLOSE_WAIT) while all 50,000 bytes still wait unread before it (ss Recv-Q counts 50,001: the data "
          "and the FIN's sequence number). The server "
          "then reads slowly, 5,000 bytes at a time: ten full reads, and only the eleventh returns 0 (EOF).")
FORCING = ("The server starts reading only when the kernel shows its socket in CLOSE_WAIT (the FIN has "
           "arrived), and it pauses 20 ms between reads.")
GLOSS = ("A FIN is end-of-file, queued behind the data: the server reads every byte sent before the FIN, slowly, "
         "after the FIN arrived, and only then does recv() return 0. Forced: the reads start once the socket is in "
         "CLOSE_WAIT.")
TOPOLOGIES = ("lan", "multi-lan", "wan")
DATA = 50_000
READ = 5_000
READS = DATA // READ


def run(lab: Lab) -> None:
    go = lab.signal_path("read")
    reads = [a for _ in range(READS) for a in (f"read:{READ}", "sleep:0.02")]
    server = lab.server([f"wait-file:{go}", *reads, f"read:{READ}", "close"])
    client = lab.client(server, [f"send:{DATA}", "close"])
    lab.wait_socket_state(lab.server_host, "close-wait", DEFAULT_PORT)
    # the kernel's view at that moment: the FIN is in (CLOSE-WAIT) and the data is still queued
    lab.facts["server_socket_at_fin"] = lab.run(lab.server_host, ["ss", "-tnH", "state", "close-wait"]).stdout.strip()
    lab.signal("read")
    lab.wait(client, server)


def check(ev: Evidence, expect: Expect) -> None:
    client, server = ev.program("client"), ev.program("server")
    line = ev.facts.get("server_socket_at_fin", "")
    words = line.split()
    queued = int(words[0]) if words and words[0].isdigit() else -1
    # ss's Recv-Q is the unread part of the sequence space (rcv_nxt - copied_seq): the data, then the FIN's one
    expect.equal("with the FIN in (CLOSE-WAIT), every data byte still waits unread: ss Recv-Q = 50,000 + 1 for the FIN",
                 DATA + 1, queued)
    reads = [e["bytes"] for e in server["events"] if e["event"] == "read"]
    expect.equal("the reads return every queued byte first, and 0 (end-of-file) only after them",
                 [READ] * READS + [0], reads)
    expect.equal("the bytes read are the bytes sent (SHA-256)", client["sent_sha256"], server["received_sha256"])
    conn = ev.found(expect, "server")
    if conn is None:
        return
    fins = [s for s in conn.segments if s.fin and conn.side(s) == "client"]
    if not expect.that("the client's FIN is in the server-side capture", bool(fins), f"{len(fins)} FINs"):
        return
    fin = fins[0]
    expect.equal("the FIN's place in the byte stream: right after the last data byte (seq = ISN + 1 + 50,000)",
                 DATA + 1, conn.relative_seq(fin) + fin.payload_len)
    first_read = min((e["t"] for e in server["events"] if e["event"] == "read"), default=0.0)
    expect.that("the FIN had arrived before the server read its first byte", fin.time < first_read,
                f"FIN captured at {fin.time:.6f}, first read at {first_read:.6f}")
