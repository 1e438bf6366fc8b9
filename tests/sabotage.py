"""Sabotage: for each experiment of the catalog, runs that break its claim on purpose.

Each entry of SABOTAGE is (a replacement for the experiment's `run`, the names of the assertions it
must fail). `tests/test_catalog_live.py` runs them; `tests/test_claims.py` checks that every experiment
of the catalog has at least one, so a new experiment cannot arrive without one.
"""
from __future__ import annotations

import sys

from experiments import bufferbloat
from experiments.bufferbloat import run as bufferbloat_run
from experiments.cross_lan import run as cross_lan_run  # the real one: the test replaces the module's
from netbed.experiment import DEFAULT_PORT
from netbed.programs import HTTPD

PAGE_WRITE_OUT = "netbed-local %{local_ip} %{local_port} %{remote_ip} %{remote_port}\n"


def handshake_losing_the_syn_ack(lab):
    lab.run(lab.server_host, ["iptables", "-w", "-A", "OUTPUT", "-p", "tcp", "--sport", str(DEFAULT_PORT),
                              "--tcp-flags", "SYN,ACK", "SYN,ACK", "-m", "statistic", "--mode", "nth",
                              "--every", "2", "--packet", "0", "-j", "DROP"])
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:100", "close"]), server)


def handshake_through_a_port_redirect(lab):
    """The client dials 9100; the server's own firewall redirects it to the socket bound to 9000."""
    lab.run(lab.server_host, ["iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9100",
                              "-j", "REDIRECT", "--to-ports", str(DEFAULT_PORT)])
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(None, ["send:100", "close"], to=(lab.ip(lab.server_host), 9100)), server)


def close_client_but_the_server_closes_first(lab):
    server = lab.server(["recv:20000", "close"])
    lab.wait(lab.client(server, ["send:20000", "recv-eof", "close"]), server)


def close_merged_with_a_pause(lab):
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    lab.wait(lab.client(server, ["send:1000", "close"]), server)


def half_close_without_data(lab):
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:1000", "shutdown-wr", "recv-eof", "close"]), server)


def close_server_with_keep_alive(lab):
    www = lab.out / "www"
    www.mkdir(exist_ok=True)
    (www / "page.html").write_text("x" * 5000)
    ip = lab.ip(lab.server_host)
    # HTTP/1.1 with Content-Length: the server keeps the connection, curl closes it when done
    lab.start("server", [sys.executable, HTTPD, "8000", "--bind", ip, "--directory", str(www), "--protocol",
                         "HTTP/1.1"], host=lab.server_host, port=8000, daemon=True)
    lab.wait(lab.start("client", ["curl", "-s", "-o", "/dev/null", "-w", PAGE_WRITE_OUT,
                                  f"http://{ip}:8000/page.html"], host=lab.client_host))


def close_server_fin_then_rst(lab):
    """The server closes first, and the client answers its FIN with a RST (SO_LINGER 0) instead of a FIN."""
    server = lab.server(["recv:10", "send:5000", "close"], port=8000)
    lab.wait(lab.client(server, ["send:10", "recv-eof", "linger0", "close"]), server)


def simultaneous_without_hold(lab):
    server = lab.server(["recv:100", "sleep:0.3", "close"])
    lab.wait(lab.client(server, ["send:100", "close"]), server)


def exit_with_rst(lab):
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:1000", "linger0", "kill"]), server)


def unread_rst_but_read(lab):
    server = lab.server(["send:1000", "recv-eof", "close"])
    lab.wait(lab.client(server, ["recv:1000", "close"]), server)


def linger_without_linger(lab):
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:1000", "sleep:0.2", "close"]), server)


def refused_but_listening(lab):
    server = lab.server(["recv-eof", "close"], port=9999)
    lab.wait(lab.client(server, ["send:10", "close"]), server)


def ports_shared_with_so_reuseport(lab):
    """The experiment's own setup, but app-a and the second bind both set SO_REUSEPORT: port 9000 is shared."""
    servers = {"app-a": lab.server(["recv:5", "send:111", "close"], port=9000, name="app-a", reuseport=True),
               "app-b": lab.server(["recv:5", "send:222", "close"], port=9001, name="app-b")}
    lab.try_bind("second-bind", lab.server_host, "0.0.0.0", 9000, reuseport=True)
    clients = [lab.client(servers[name], ["send:5", "recv-eof", "close"], name=f"client-{name}") for name in servers]
    lab.wait(*clients, *servers.values())
    third = lab.server(["recv:5", "send:33", "close"], port=9002, name="app-c")
    lab.wait(lab.client(third, ["send:5", "recv-eof", "close"], name="client-app-c"), third)


def time_wait_on_the_client(lab):
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:100", "close"]), server)
    lab.try_bind("rebind", lab.server_host, "0.0.0.0", DEFAULT_PORT)
    lab.try_bind("rebind-reuseaddr", lab.server_host, "0.0.0.0", DEFAULT_PORT, reuseaddr=True)


def ethernet_with_static_neighbours(lab):
    """Static neighbour entries, as a sysadmin might set them: no ARP is needed, none is sent."""
    for me, peer in ((lab.client_host, lab.server_host), (lab.server_host, lab.client_host)):
        intf, peer_intf = lab.tb.spec(me).interfaces[0], lab.tb.spec(peer).interfaces[0]
        lab.run(me, ["ip", "neigh", "replace", peer_intf.ip, "lladdr", peer_intf.mac, "dev", intf.name,
                     "nud", "permanent"])
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:100", "close"]), server)


def ethernet_with_a_duplicated_mac(lab):
    """A third host takes the client's MAC and talks to the server: one MAC, two hosts on the LAN."""
    third = next(h for h in lab.tb.topology.hosts if h.name not in (lab.client_host, lab.server_host))
    intf = third.interfaces[0].name
    lab.run(third.name, ["ip", "link", "set", "dev", intf, "address", lab.tb.spec(lab.client_host).interfaces[0].mac])
    lab.run(third.name, ["ping", "-n", "-q", "-c", "1", "-W", "1", lab.ip(lab.server_host)])
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:100", "close"]), server)


def cross_lan_with_proxy_arp(lab):
    """The router answers ARP for the other LAN (proxy ARP): the on-link attempt now crosses it."""
    router = lab.tb.topology.path(lab.client_host, lab.server_host)[1]
    lab.run(router, ["sysctl", "-qw", "net.ipv4.conf.all.proxy_arp=1"])
    cross_lan_run(lab)


def udp_over_tcp(lab):
    server = lab.server(["recv:512", "send:512"])
    lab.wait(lab.client(server, ["send:512", "recv:512", "close"]), server)


def loss_without_loss(lab):
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:300000", "close"]), server)
    syn_server = lab.server(["recv-eof", "close"], port=9001, name="syn-server")
    lab.wait(lab.client(syn_server, ["send:10", "close"], name="syn-client"), syn_server)


def browser_with_http10(lab):
    www = lab.out / "www"
    www.mkdir(exist_ok=True)
    for name in ("index.html", "style.css", "app.js"):
        (www / name).write_text("x" * 100)
    ip = lab.ip(lab.server_host)
    lab.start("server", [sys.executable, HTTPD, "5000", "--bind", ip, "--directory", str(www)],
              host=lab.server_host, port=5000, daemon=True)
    urls = [a for n in ("index.html", "style.css", "app.js") for a in ("-o", "/dev/null", f"http://{ip}:5000/{n}")]
    lab.wait(lab.start("client", ["curl", "-s", "--http1.0", "-w", "http %{http_code} %{size_download} "
                                  "%{num_connects}\n", *urls], host=lab.client_host))


def browser_asking_only_for_headers(lab):
    """One keep-alive connection, three requests — but HEAD, not GET: three payload segments, no GET."""
    from experiments import browser_server

    www = lab.out / "www"
    www.mkdir(exist_ok=True)
    for name, size in browser_server.PAGES.items():
        (www / name).write_text("x" * size)
    ip = lab.ip(lab.server_host)
    lab.start("server", [sys.executable, HTTPD, "5000", "--bind", ip, "--directory", str(www), "--protocol",
                         "HTTP/1.1"], host=lab.server_host, port=5000, daemon=True)
    urls = [a for n in browser_server.PAGES for a in ("-o", "/dev/null", f"http://{ip}:5000/{n}")]
    lab.wait(lab.start("client", ["curl", "-s", "--http1.1", "-I", "-w", browser_server.WRITE_OUT, *urls],
                       host=lab.client_host))


def ipv6_over_ipv4(lab):
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    lab.wait(lab.client(server, ["send:1000", "close"]), server)


def ipv6_socket_to_an_ipv4_mapped_address(lab):
    """AF_INET6 sockets on both ends, but the client dials ::ffff:a.b.c.d: IPv4 on the wire."""
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"], bind="::")
    lab.wait(lab.client(None, ["send:1000", "close"], to=(f"::ffff:{lab.ip(lab.server_host)}", DEFAULT_PORT)), server)


# --- the lecture's further claims (docs/lecture-claims.md) ---------------------------------

def byte_stream_read_as_it_comes(lab):
    """The server reads each send as it arrives (the client pauses between sends): three reads."""
    from experiments import byte_stream

    server = lab.server(["read:65536", "read:65536", "read:65536", "recv-eof", "close"])
    lab.wait(lab.client(server, ["send:100", "sleep:0.3", "send:200", "sleep:0.3", "send:300", "close"]), server)
    byte_stream.udp_part(lab)


def fin_without_cork(lab):
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    lab.wait(lab.client(server, ["send:1000", "sleep:0.2", "close"]), server)


def eof_after_a_reset(lab):
    """The client aborts (RST) instead of closing: the kernel throws the queued data away, no EOF."""
    go = lab.signal_path("read")
    server = lab.server([f"wait-file:{go}", *["read:5000", "sleep:0.02"] * 10, "read:5000", "close"])
    client = lab.client(server, ["send:50000", "sleep:0.3", "linger0", "close"])
    lab.wait(client)
    lab.facts["server_socket_at_fin"] = lab.run(lab.server_host, ["ss", "-tnH"]).stdout.strip()
    lab.signal("read")
    lab.wait(server)


def exit_after_linger0(lab):
    from experiments import exit_voluntary

    for name, (ending, port) in exit_voluntary.ENDINGS.items():
        server = lab.server(["recv-eof", "close"], port=port, name=f"server-{ending}")
        lab.wait(lab.client(server, ["send:1000", "sleep:0.1", "linger0", ending], name=name), server)


def ports_as_root(lab):
    from experiments import privileged_ports

    privileged_ports.bind_as(lab, "root")


def dhcp_without_a_server(lab):
    from experiments import dhcp

    dhcp.ask_for_addresses(lab, serve=False)


def restart_on_a_fixed_port(lab):
    """The client binds port 8989 itself, as if the port were the program's own: the same port twice."""
    for name in ("first-start", "restart"):
        server = lab.server(["recv:10", "send:10", "close"], name=f"server-{name}")
        lab.wait(lab.client(server, ["send:10", "recv-eof", "close"], name=name, bind="0.0.0.0:8989",
                            reuseaddr=True), server)
    lab.facts["ephemeral_range_in_client_host"] = lab.read_sysctl(lab.client_host, "net.ipv4.ip_local_port_range")


def backlog_accepting_at_once(lab):
    from experiments import backlog

    backlog.connect_clients(lab, accept_at_once=True)


def concurrency_both_iterative(lab):
    from experiments import concurrency

    concurrency.serve_two_by_two(lab, modes={"concurrent": "iterative"})


def layers_behind_nat(lab):
    """The router masquerades the client's address toward the server (NAT): IP and TCP headers change."""
    from experiments import layers

    topo = lab.tb.topology
    router = topo.path(lab.client_host, lab.server_host)[-2]
    segment = topo.node(lab.server_host).interfaces[0].segment
    out = next(i.name for i in topo.node(router).interfaces if i.segment == segment)
    lab.run(router, ["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-o", out, "-j", "MASQUERADE"])
    layers.fetch_page(lab)


def ftp_as_http(lab):
    """The same file over HTTP, from a web server on port 21: one connection carries everything."""
    from experiments import ftp

    root = lab.out / "ftp-root"
    root.mkdir(exist_ok=True)
    (root / ftp.FILE).write_bytes(ftp.content())
    ip = lab.ip(lab.server_host)
    lab.start("server", [sys.executable, HTTPD, "21", "--bind", ip, "--directory", str(root)], host=lab.server_host,
              port=21, daemon=True)
    for name, mode in ftp.MODES.items():
        lab.wait(lab.start(name, ["curl", "-s", "-o", str(lab.out / f"{mode}.bin"), "-w", ftp.WRITE_OUT,
                                  f"http://{ip}:21/{ftp.FILE}"], host=lab.client_host))


# experiment: [(sabotaged run, names of the assertions it must fail), …]
def bufferbloat_with_the_shallow_queue_twice(lab):
    """No deep queue: the "deep" phase runs with the shallow FIFO too, so nothing bloats."""
    saved = dict(bufferbloat.QUEUES)
    bufferbloat.QUEUES["deep"] = bufferbloat.QUEUES["shallow"]
    try:
        bufferbloat_run(lab)
    finally:
        bufferbloat.QUEUES.update(saved)


def bufferbloat_with_bbr(lab):
    """BBR paces at the bottleneck's rate and keeps the deep queue nearly empty: no bloat, no sawtooth."""
    saved = bufferbloat.CONGESTION_CONTROL
    bufferbloat.CONGESTION_CONTROL = "bbr"
    try:
        bufferbloat_run(lab)
    finally:
        bufferbloat.CONGESTION_CONTROL = saved


SABOTAGE = {
    "bufferbloat": [(bufferbloat_with_the_shallow_queue_twice, [bufferbloat.BLOAT]),
                    (bufferbloat_with_bbr, [bufferbloat.DEEP_PING, bufferbloat.BLOAT])],
    "handshake": [(handshake_losing_the_syn_ack, ["three segments open it (client side)"]),
                  (handshake_through_a_port_redirect,
                   ["the server's port, as captured at both ends, is the one its socket is bound to"])],
    "close-client": [(close_client_but_the_server_closes_first,
                      ["close initiator", "four segments close it: FIN, ACK, FIN, ACK"])],
    "close-merged": [(close_merged_with_a_pause, ["close kind"])],
    "half-close": [(half_close_without_data, ["half_close_bytes: what the server sent after the client's FIN"])],
    "close-server": [(close_server_with_keep_alive, ["close initiator: the server"]),
                     (close_server_fin_then_rst, ["the whole close: server FIN, client ACK, client FIN, server ACK, "
                                                  "no RST"])],
    "simultaneous-close": [(simultaneous_without_hold, [
        "close kind",
        "the server's FIN does not acknowledge the client's (built before the client's FIN reached it)"])],
    "close-on-exit": [(exit_with_rst, ["no RST"])],
    "close-unread-rst": [(unread_rst_but_read, ["close kind"])],
    "linger-rst": [(linger_without_linger, ["close kind"])],
    "refused": [(refused_but_listening, ["connect() fails with connection refused"])],
    "ports": [(ports_shared_with_so_reuseport, ["a second bind to port 9000 fails"])],
    "time-wait": [(time_wait_on_the_client, ["binding the port again fails"])],
    "lan-ethernet": [(ethernet_with_static_neighbours, ["ARP request: who has the server's IP, tell the client"]),
                     (ethernet_with_a_duplicated_mac,
                      ["each MAC on the LAN belongs to one host, each host has one MAC (server-side capture)"])],
    "cross-lan": [(cross_lan_with_proxy_arp, [
        "nobody on the client's LAN answers the ARP for the server",
        "with an on-link route to the server, connect() fails: No route to host",
        "nothing of the attempt reaches the server's LAN (server-side capture)"])],
    "udp-no-handshake": [(udp_over_tcp, ["no TCP segment at all: no SYN, no FIN",
                                         "the server's UDP socket is unconnected: ss -uan lists it UNCONN"])],
    "loss-recovery": [(loss_without_loss, ["the server's firewall dropped packets of the transfer (DROP counter > 0)",
                                           "each gap the server's duplicate ACKs point at was sent again"])],
    "browser-server": [(browser_with_http10, ["one TCP connection carries them all"]),
                       (browser_asking_only_for_headers,
                        ['three HTTP requests from the browser on it ("GET " lines in the server-side capture)'])],
    "ipv6-handshake": [(ipv6_over_ipv4, ["every frame of the connection is IPv6 (client-side capture)"]),
                       (ipv6_socket_to_an_ipv4_mapped_address,
                        ["every frame of the connection is IPv6 (client-side capture)",
                         "its addresses are IPv6, not IPv4-mapped (server-side capture)"])],
    "byte-stream": [(byte_stream_read_as_it_comes, ["TCP: one recv() returns all three sends: no message boundaries"])],
    "fin-with-data": [(fin_without_cork, ["the client's FIN carries its data (FP. with a payload)"])],
    "fin-is-eof": [(eof_after_a_reset,
                    ["the reads return every queued byte first, and 0 (end-of-file) only after them"])],
    "exit-voluntary": [(exit_after_linger0, ["exit(): no RST", "return from main: no RST"])],
    "privileged-ports": [(ports_as_root, ["unprivileged bind to port 80 fails with EACCES (kernel threshold 1024)"])],
    "dhcp": [(dhcp_without_a_server, ["h1: DISCOVER, OFFER, REQUEST, ACK"])],
    "ephemeral-restart": [(restart_on_a_fixed_port, ["the restarted client got another port"])],
    "backlog": [(backlog_accepting_at_once, ["SYNs beyond the accept queue go unanswered and are retried"])],
    "concurrency": [(concurrency_both_iterative,
                     ["concurrent: both answers come together, well within one service time (< 0.5 s apart)"])],
    "layers": [(layers_behind_nat, ["server: the TCP header and the HTTP request are the client's bytes, unchanged"])],
    "ftp": [(ftp_as_http, ["passive: the file's bytes travel on a second TCP connection: the client connects to the "
                           "port the server named"])],
}
