"""端口 — a port names one application on a host; ip+port names it on the whole network."""
from __future__ import annotations

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab

NAME = "ports"
ORDER = 90
CLAIM = ("端口:用来唯一标识一台计算机上的某个应用程序; 端口号是动态分配的; "
         "ip+port:唯一标识接入互联网一台计算机上的某个应用程序")
GLOSS = ("Two servers on one host, ports 9000 and 9001, each reach their own application; the client's "
         "connections get distinct ephemeral ports; the 4-tuple tells them apart; a second bind fails.")
NETBED = ("one port, one application holds unless sockets opt out together: two sockets that both set "
          "SO_REUSEPORT may share a port (netbed's programs set it only in this experiment's sabotage test).")
TOPOLOGIES = ("lan", "multi-lan", "wan")
APPS = {"app-a": (9000, 111), "app-b": (9001, 222)}  # name: (port, bytes it answers with)


def run(lab: Lab) -> None:
    servers = {name: lab.server(["recv:5", f"send:{size}", "close"], port=port, name=name)
               for name, (port, size) in APPS.items()}
    # while app-a listens, nobody else may bind its port
    lab.try_bind("second-bind", lab.server_host, "0.0.0.0", APPS["app-a"][0])
    clients = [lab.client(servers[name], ["send:5", "recv-eof", "close"], name=f"client-{name}")
               for name in APPS]
    lab.wait(*clients, *servers.values())
    # one more connection from the same client to a third server: yet another ephemeral port
    third = lab.server(["recv:5", "send:33", "close"], port=9002, name="app-c")
    lab.wait(lab.client(third, ["send:5", "recv-eof", "close"], name="client-app-c"), third)


def check(ev: Evidence, expect: Expect) -> None:
    for name, (port, size) in APPS.items():
        client, server = ev.program(f"client-{name}"), ev.program(name)
        expect.equal(f"the client of port {port} talks to {name} (its {size} bytes, same SHA-256)",
                     (size, server["sent_sha256"]), (client["received"], client["received_sha256"]))
        conn = ev.connection("server", f"client-{name}")
        expect.equal(f"{name}'s socket is bound to port {port}, and its client's segments (server-side capture) "
                     "go to that port", (port, port), (server["local"][1], conn.server.port if conn else None))
    second = ev.program("second-bind")
    expect.equal("a second bind to port 9000 fails", "EADDRINUSE", second["error"])
    names = ["client-app-a", "client-app-b", "client-app-c"]
    ports = [ev.program(n)["local"][1] for n in names]
    expect.equal("each connection has its own ephemeral port", len(ports), len(set(ports)))
    low, high = ev.facts["ip_local_port_range"]
    expect.that("the ephemeral ports come from ip_local_port_range", all(low <= p <= high for p in ports),
                f"{ports} within [{low}, {high}]")
    conns = [ev.connection("client", n) for n in names]
    if not expect.that("all three connections are in the capture", all(conns), f"{sum(map(bool, conns))} found"):
        return
    tuples = {(str(c.client), str(c.server)) for c in conns}
    expect.equal("the 4-tuples are all different", 3, len(tuples))
    expect.equal("one client address and one server address for all of them",
                 (1, 1), (len({c.client.ip for c in conns}), len({c.server.ip for c in conns})))
