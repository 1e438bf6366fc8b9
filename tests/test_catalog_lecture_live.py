"""The lecture's further claims (byte stream, FIN on data, FIN as EOF, exit, ports, DHCP, backlog,
concurrency, layers, FTP): each one's key assertion bites — a run that breaks the claim on purpose
fails on exactly that assertion. (That they pass on every topology is test_catalog_live's job.)"""
import sys

import pytest

from netbed import runner
from netbed.experiment import get
from netbed.programs import HTTPD

pytestmark = pytest.mark.netbed


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


SABOTAGE = {  # experiment: (sabotage, topology, the key assertion that must fail)
    "byte-stream": (byte_stream_read_as_it_comes, "lan",
                    "TCP: one recv() returns all three sends: no message boundaries"),
    "fin-with-data": (fin_without_cork, "lan", "the client's FIN carries its data (FP. with a payload)"),
    "fin-is-eof": (eof_after_a_reset, "lan",
                   "the reads return every queued byte first, and 0 (end-of-file) only after them"),
    "exit-voluntary": (exit_after_linger0, "lan", "exit(): no RST"),
    "privileged-ports": (ports_as_root, "lan",
                         "unprivileged bind to port 80 fails with EACCES (kernel threshold 1024)"),
    "dhcp": (dhcp_without_a_server, "lan", "h1: DISCOVER, OFFER, REQUEST, ACK"),
    "ephemeral-restart": (restart_on_a_fixed_port, "lan", "the restarted client got another port"),
    "backlog": (backlog_accepting_at_once, "lan", "SYNs beyond the accept queue go unanswered and are retried"),
    "concurrency": (concurrency_both_iterative, "lan",
                    "concurrent: both answers come together, well within one service time (< 0.5 s apart)"),
    "layers": (layers_behind_nat, "multi-lan", "server: the TCP header and the HTTP request are the client's bytes, "
                                               "unchanged"),
    "ftp": (ftp_as_http, "lan", "passive: the file's bytes travel on a second TCP connection: the client connects to "
                                "the port the server named"),
}


@pytest.mark.parametrize("experiment", sorted(SABOTAGE))
def test_breaking_the_lecture_claim_fails_its_key_assertion(experiment, tmp_path, monkeypatch):
    exp = get(experiment)
    sabotage, topology, key = SABOTAGE[experiment]
    monkeypatch.setattr(exp.module, "run", sabotage)
    result = runner.run_experiment(exp, topology, tmp_path / "run")
    assert not result.passed
    by_name = {a.name: a for a in result.assertions}
    assert key in by_name, f"{key!r} not asserted; assertions: {list(by_name)}"
    assert not by_name[key].passed, by_name[key]
