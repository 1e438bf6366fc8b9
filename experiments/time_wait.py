"""TIME_WAIT — the active closer keeps the address for 2MSL; only SO_REUSEADDR may bind it again."""
from __future__ import annotations

import re

from netbed.expect import Expect, states_of
from netbed.experiment import DEFAULT_PORT, Evidence, Lab

NAME = "time-wait"
ORDER = 100
CLAIM = "接收这个最终FIN的原发送端TCP(即执行主动关闭的那一端)确认这个FIN"
NETBED = ("after that last ACK the active closer stays in TIME_WAIT (2MSL, 60 s on Linux), and its address "
          "cannot be bound again without SO_REUSEADDR.")
FORCING = "the client reads until the server's FIN before it closes, so the server is the active closer."
GLOSS = ("The server closes first and its socket sits in TIME_WAIT (60 s on Linux, seen with ss); restarting "
         "it on the same port fails with EADDRINUSE unless SO_REUSEADDR is set. Forced: the client closes only "
         "after the server's FIN.")
TOPOLOGIES = ("lan", "multi-lan", "wan")


def run(lab: Lab) -> None:
    server = lab.server(["recv:100", "close"])  # peer.py's listener sets SO_REUSEADDR, as servers do
    client = lab.client(server, ["send:100", "recv-eof", "close"])
    lab.wait(client, server)
    lab.wait_socket_state(lab.server_host, "time-wait", DEFAULT_PORT)
    lab.facts["ss_timer"] = lab.run(lab.server_host, ["ss", "-tanoH", "state", "time-wait"]).stdout.strip()
    # "restart the server": bind the same port again, without and with SO_REUSEADDR
    lab.try_bind("rebind", lab.server_host, "0.0.0.0", DEFAULT_PORT)
    lab.try_bind("rebind-reuseaddr", lab.server_host, "0.0.0.0", DEFAULT_PORT, reuseaddr=True)


def check(ev: Evidence, expect: Expect) -> None:
    conn = ev.found(expect)
    if conn is not None:
        expect.equal("the server closed first", "server", conn.close_initiator)
    expect.equal("server states end in TIME_WAIT", "TIME_WAIT", (states_of(ev, "server") or ["?"])[-1])
    line = ev.facts.get("ss_timer", "")
    match = re.search(r"timer:\(timewait,(\d+(?:\.\d+)?)(ms|sec)", line)
    seconds = (float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)) if match else -1
    expect.within("ss shows the TIME-WAIT timer running down from 60 s", seconds, 50, 60)
    expect.equal("binding the port again fails", "EADDRINUSE", ev.program("rebind")["error"])
    expect.equal("with SO_REUSEADDR the bind succeeds", None, ev.program("rebind-reuseaddr")["error"])
