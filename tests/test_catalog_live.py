"""Every experiment of the catalog passes on every topology it supports — and each one's key
assertion bites: a run that breaks the lecture's claim on purpose must fail, on that assertion."""
import json
import sys

import pytest

from netbed import runner, verdict
from netbed.experiment import DEFAULT_PORT, catalog, get
from netbed.programs import HTTPD

pytestmark = pytest.mark.netbed

CASES = [(e.name, t) for e in catalog() for t in e.topologies]


@pytest.mark.parametrize("experiment, topology", CASES, ids=[f"{e}-{t}" for e, t in CASES])
def test_catalog_experiment_passes(experiment, topology, tmp_path):
    result = runner.run_experiment(get(experiment), topology, tmp_path / "run")
    failed = [a.to_json() for a in result.failed]
    assert result.passed, json.dumps(failed, indent=1, ensure_ascii=False)
    # the offline re-check of the saved folder gives the same verdict, assertion by assertion
    assert verdict.check_dir(tmp_path / "run").assertions == result.assertions
    # and result.json reads back as the very result the run returned
    assert verdict.RunResult.from_json(json.loads((tmp_path / "run" / "result.json").read_text())) == result


def test_the_catalog_covers_the_lecture():
    names = [e.name for e in catalog()]
    assert len(names) == 18 and len(set(names)) == 18
    assert {"handshake", "close-client", "close-server", "close-merged", "half-close", "close-on-exit",
            "close-unread-rst", "linger-rst", "refused", "simultaneous-close", "ports", "time-wait",
            "lan-ethernet", "cross-lan", "udp-no-handshake", "loss-recovery", "browser-server",
            "ipv6-handshake"} == set(names)


# --- sabotage: each function breaks what its experiment demonstrates --------------------------

def handshake_losing_the_syn_ack(lab):
    lab.run(lab.server_host, ["iptables", "-w", "-A", "OUTPUT", "-p", "tcp", "--sport", str(DEFAULT_PORT),
                              "--tcp-flags", "SYN,ACK", "SYN,ACK", "-m", "statistic", "--mode", "nth",
                              "--every", "2", "--packet", "0", "-j", "DROP"])
    server = lab.server(["recv-eof", "close"])
    lab.wait(lab.client(server, ["send:100", "close"]), server)


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
    lab.wait(lab.start("client", ["curl", "-s", "-o", "/dev/null", "-w", "netbed-local %{local_ip} %{local_port} "
                                  "%{remote_ip} %{remote_port}\n", f"http://{ip}:8000/page.html"],
                       host=lab.client_host))


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


def ports_all_to_one_app(lab):
    servers = {name: lab.server(["recv:5", f"send:{size}", "close"], port=port, name=name)
               for name, (port, size) in {"app-a": (9000, 111), "app-b": (9001, 222)}.items()}
    lab.try_bind("second-bind", lab.server_host, "0.0.0.0", 9002)  # a free port: the bind succeeds
    clients = [lab.client(servers["app-a"], ["send:5", "recv-eof", "close"], name="client-app-a"),
               lab.client(servers["app-b"], ["send:5", "recv-eof", "close"], name="client-app-b")]
    lab.wait(*clients, *servers.values())
    third = lab.server(["recv:5", "send:33", "close"], port=9003, name="app-c")
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


def cross_lan_with_gateway(lab):
    server = lab.server(["recv-eof", "close"], port=9000)
    lab.wait(lab.client(None, ["send:10"], to=(lab.ip(lab.server_host), 9001), name="no-gateway"))
    lab.wait(lab.client(server, ["send:100", "close"]), server)


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


def ipv6_over_ipv4(lab):
    server = lab.server(["recv-eof", "quickack", "sleep:0.2", "close"])
    lab.wait(lab.client(server, ["send:1000", "close"]), server)


SABOTAGE = {
    "handshake": (handshake_losing_the_syn_ack, "three segments open it (client side)"),
    "close-merged": (close_merged_with_a_pause, "close kind"),
    "half-close": (half_close_without_data, "half_close_bytes: what the server sent after the client's FIN"),
    "close-server": (close_server_with_keep_alive, "close initiator: the server"),
    "simultaneous-close": (simultaneous_without_hold, "close kind"),
    "close-on-exit": (exit_with_rst, "no RST"),
    "close-unread-rst": (unread_rst_but_read, "close kind"),
    "linger-rst": (linger_without_linger, "close kind"),
    "refused": (refused_but_listening, "connect() fails with connection refused"),
    "ports": (ports_all_to_one_app, "a second bind to port 9000 fails"),
    "time-wait": (time_wait_on_the_client, "binding the port again fails"),
    "lan-ethernet": (ethernet_with_static_neighbours, "ARP request: who has the server's IP, tell the client"),
    "cross-lan": (cross_lan_with_gateway, "without a default gateway: Network is unreachable"),
    "udp-no-handshake": (udp_over_tcp, "no TCP segment at all: no SYN, no FIN"),
    "loss-recovery": (loss_without_loss, "the trace shows retransmissions by the sender"),
    "browser-server": (browser_with_http10, "one TCP connection carries them all"),
    "ipv6-handshake": (ipv6_over_ipv4, "the client's address is IPv6 (128 bits)"),
}


@pytest.mark.parametrize("experiment", sorted(SABOTAGE))
def test_breaking_the_claim_fails_the_key_assertion(experiment, tmp_path, monkeypatch):
    exp = get(experiment)
    sabotage, key = SABOTAGE[experiment]
    monkeypatch.setattr(exp.module, "run", sabotage)
    result = runner.run_experiment(exp, exp.topologies[0], tmp_path / "run")
    assert not result.passed
    by_name = {a.name: a for a in result.assertions}
    assert key in by_name, f"{key!r} not asserted; assertions: {list(by_name)}"
    assert not by_name[key].passed, by_name[key]


def test_a_run_that_breaks_down_is_a_failed_result_not_an_abort(tmp_path, monkeypatch):
    exp = get("handshake")

    def stuck(lab):
        lab.wait_socket_state(lab.server_host, "closing", 1, timeout=0.2)  # never happens

    monkeypatch.setattr(exp.module, "run", stuck)
    result = runner.run_experiment(exp, "lan", tmp_path / "run")
    assert not result.passed
    (only,) = result.assertions
    assert only.name == "the experiment ran to its end" and "reached closing" in only.detail
