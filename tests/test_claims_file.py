"""Claim files without a network: what is accepted, what is refused (one line naming the file and the
key, exit 2, before anything is built), the ladder's binding rule, the verdict table and the JUnit XML."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import IS_ROOT, REPO, netbed
from test_expect import ACK, FIN, Conn, Seg

from netbed.claims import file as claimfile
from netbed.claims.skeleton import EXPECT, skeleton
from netbed.errors import NetbedError
from netbed.expect import Expect, check_ladder_lines
from netbed.report.grades import reason, table
from netbed.report.junit import junit_xml
from netbed.verdict import RunResult

GOOD = """\
name = "demo"
topology = "multi-lan"

[server]
port = 8000
run = "python3 server.py {port}"

[client]
run = "python3 client.py {server_ip} {port}"
timeout = 3

[expect]
handshake = "complete"
close = "four-way"
initiator = "server"
client_bytes = 18
client_states = ["SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK"]
ladder = ["server > F.", "client > .  ack=g+1"]
client_exit = 0
client_output = "HTTP/1.0 200"
connections = 1
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("server.py", "client.py"):
        (tmp_path / name).write_text("print('hi')\n")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "claim.toml"
    path.write_text(text)
    return path


def test_a_good_claim_file_is_read_with_defaults_and_placeholders(folder):
    claim = claimfile.load(write(folder, GOOD))
    assert (claim.name, claim.topology) == ("demo", "multi-lan")
    assert (claim.server.host, claim.client.host) == ("h4", "h1")  # the last host serves, the first is the client
    assert claim.server.port == 8000 and claim.client.timeout == 3
    assert list(claim.expect) == ["handshake", "close", "initiator", "client_bytes", "client_states", "ladder",
                                  "client_exit", "client_output", "connections"]
    values = {"port": "8000", "server_ip": "10.0.2.2", "client_ip": "10.0.1.1"}
    assert claim.client.argv(values) == ["python3", "client.py", "10.0.2.2", "8000"]
    assert claimfile.Claim.from_json(claim.to_json()) == claim  # what a run folder keeps rebuilds it


def test_double_braces_are_literal_braces_so_curl_formats_work(folder):
    curl = """run = "curl -s -w '%{{http_code}}' http://{server_ip}:{port}/" """
    claim = claimfile.load(write(folder, replace(GOOD, 'run = "python3 client.py {server_ip} {port}"', curl)))
    assert claim.client.argv({"server_ip": "10.0.0.3", "port": "80"}) == \
        ["curl", "-s", "-w", "%{http_code}", "http://10.0.0.3:80/"]


ISSUE_EXAMPLE = """\
name = "http10-server-closes-first"
topology = "multi-lan"              # a built-in topology, or: custom = "topo.py" and topo = "NAME"
build = "gcc -O2 -o server server.c"   # optional, run once in the file's folder, before the network exists

[server]
host = "h4"                          # optional: default the last host
port = 9000
run = "./server {port}"              # placeholders: {port} {server_ip} {server_ip6} {client_ip}

[client]
host = "h1"                          # optional: default the first host
run = "python3 client.py {server_ip} {port}"
timeout = 10                         # seconds for the whole exchange (default 10)

[expect]                             # every key optional; each becomes one assertion
handshake = "complete"
close = "four-way"                   # reset | simultaneous | three-way | four-way | open
initiator = "server"                 # client | server | both
client_bytes = 18                    # payload bytes client -> server, from the capture
server_bytes = 5000
half_close_bytes = 0
client_states = ["SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK"]   # in this order, gaps allowed
server_states = ["SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
ladder = ["server > F.", "client > .  ack=g+1"]   # netbed's ladder language, on the closing segments
client_exit = 0
client_output = "HTTP/1.0 200"       # a substring of the client's standard output
connections = 1                      # TCP connections between the two
"""


def test_the_contracts_own_example_is_accepted_as_written(tmp_path):
    claim = claimfile.load(write(tmp_path, ISSUE_EXAMPLE))
    assert (claim.server.host, claim.server.port, claim.client.host, claim.client.timeout) == ("h4", 9000, "h1", 10)
    assert list(claim.expect) == list(claimfile.EXPECT_KEYS)  # every key of the contract, each one assertion


def test_minimal_claim_file_takes_the_documented_defaults(folder):
    claim = claimfile.load(write(folder, '[server]\nrun = "python3 server.py"\n[client]\nrun = "python3 client.py"\n'))
    assert (claim.name, claim.topology, claim.server.port, claim.client.timeout) == ("claim", "lan", 9000, 10.0)
    assert (claim.server.host, claim.client.host, claim.expect) == ("h3", "h1", {})


def replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


BAD = [  # (edit of GOOD, key named in the line, words of the reason)
    (("close = ", "clsoe = "), "expect.clsoe", "unknown key (did you mean close?)"),
    (('close = "four-way"', 'close = "for-way"'), "expect.close", "is not one of"),
    (("port = 8000", 'port = "8000"'), "server.port", "must be an integer, not a string"),
    (("port = 8000", "port = 70000"), "server.port", "is not a port"),
    (("timeout = 3", "timeout = true"), "client.timeout", "must be a number, not a boolean"),
    (("timeout = 3", "timeout = 0"), "client.timeout", "not between"),
    (("client_bytes = 18", "client_bytes = -1"), "expect.client_bytes", "is negative"),
    (("client_bytes = 18", "client_bytes = 1.5"), "expect.client_bytes", "must be an integer"),
    (('"CLOSE_WAIT"', '"CLOSE_WIAT"'), "expect.client_states", "is not a TCP state (did you mean CLOSE_WAIT?)"),
    (('ladder = ["server > F.", "client > .  ack=g+1"]', 'ladder = ["server F."]'), "expect.ladder", "bad ladder line"),
    (('ladder = ["server > F.", "client > .  ack=g+1"]', 'ladder = ["client > . ack>g"]'), "expect.ladder",
     "g is used before it is bound"),
    (('ladder = ["server > F.", "client > .  ack=g+1"]', 'ladder = ["client > X"]'), "expect.ladder", "bad flags"),
    (('initiator = "server"', 'initiator = "nobody"'), "expect.initiator", "is not one of"),
    (('client_output = "HTTP/1.0 200"', "client_output = 200"), "expect.client_output", "must be a string"),
    (('topology = "multi-lan"', 'topology = "multilan"'), "topology", "did you mean multi-lan?"),
    (("port = 8000", 'port = 8000\nhost = "h9"'), "server.host", "has no host 'h9'"),
    (("timeout = 3", 'timeout = 3\nhost = "h4"'), "client.host", "is the server's host too"),
    (("{server_ip}", "{sever_ip}"), "client.run", "unknown placeholder {sever_ip}"),
    (("python3 client.py", "python3 nothere.py"), "client.run", "nothere.py does not exist"),
    (("python3 server.py", "./server"), "server.run", "the program ./server does not exist"),
    (("python3 server.py", "no-such-program-here"), "server.run", "is not installed"),
    (('run = "python3 server.py {port}"', """run = 'python3 "server.py'"""), "server.run", "cannot split"),
    (('name = "demo"', 'name = "demo"\ncolour = "red"'), "colour", "unknown key"),
    (('topology = "multi-lan"', 'custom = "topo.py"\ntopo = "mine"'), "custom", "topo.py does not exist"),
    (('topology = "multi-lan"', 'custom = "topo.py"'), "topo", "go together"),
    (("[client]", "[[client]]"), "client", "must be a table"),
]


@pytest.mark.parametrize(("edit", "key", "words"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_a_bad_claim_file_is_refused_in_one_line_naming_file_and_key(folder, edit, key, words):
    path = write(folder, replace(GOOD, *edit))
    with pytest.raises(NetbedError) as info:
        claimfile.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{claimfile.shown(path)}: {key}: "), message
    assert words in message, message


def test_not_toml_and_missing_tables_are_refused(folder):
    for text, words in (("[server\nrun = 1", "not valid TOML"),
                        ('[client]\nrun = "python3 client.py"', "server: missing"),
                        ('[server]\nrun = "python3 server.py"\n[client]\n', "client.run: missing")):
        with pytest.raises(NetbedError, match=words):
            claimfile.load(write(folder, text))


LINUXROUTER = Path("/usr/lib/python3/dist-packages/mininet/examples/linuxrouter.py")


def test_a_custom_topology_is_loaded_as_mn_loads_it_and_its_hosts_are_the_defaults(folder):
    (folder / "topo.py").write_text(LINUXROUTER.read_text() + "\ntopos = {'linuxrouter': NetworkTopo}\n")
    claim = claimfile.load(write(folder, replace(GOOD, 'topology = "multi-lan"',
                                                 'custom = "topo.py"\ntopo = "linuxrouter"')))
    assert (claim.custom, claim.topo, claim.topology) == ("topo.py", "linuxrouter", "linuxrouter")
    assert (claim.client.host, claim.server.host) == ("h1", "h3")  # Mininet's first and last host, not r0


def test_a_custom_topology_that_does_not_load_is_refused_naming_topo(folder):
    (folder / "topo.py").write_text("topos = {}\n")
    with pytest.raises(NetbedError, match=r"topo: unknown topology 'mine' for --topo"):
        claimfile.load(write(folder, replace(GOOD, 'topology = "multi-lan"', 'custom = "topo.py"\ntopo = "mine"')))


def test_with_a_build_the_programs_it_makes_may_be_missing_yet(folder):
    claim = claimfile.load(write(folder, replace(GOOD, "python3 server.py", "./server").replace(
        'name = "demo"', 'name = "demo"\nbuild = "gcc -o server server.c"')))
    assert claim.build_argv() == ["gcc", "-o", "server", "server.c"]
    assert claimfile.missing_program(claim.server.argv({}), folder) == \
        f"the program ./server does not exist in {claimfile.shown(folder)}"


def test_the_cli_refuses_before_building_anything(folder, tmp_path_factory):
    """Exit 2, one line on stderr, no run folder, and the build (which would leave a file) never ran."""
    out = tmp_path_factory.mktemp("out") / "run"
    text = replace(GOOD, 'name = "demo"', 'name = "demo"\nbuild = "touch built"').replace("clos", "clso", 1)
    path = write(folder, text)
    res = netbed("run", str(path), "--out", str(out))
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and "expect.clsoe: unknown key" in res.stderr
    assert res.stdout == "" and "Traceback" not in res.stderr
    assert not out.exists() and not (folder / "built").exists()


def test_a_junit_file_that_cannot_be_written_is_refused_before_the_runs(folder, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("out")
    res = netbed("run", str(write(folder, GOOD)), "--junit", str(elsewhere), "--out", str(elsewhere / "run"))
    assert res.returncode == 2 and res.stderr.strip() == \
        f"netbed: --junit {elsewhere} is a folder: name the JUnit file, e.g. {elsewhere / 'grades.xml'}"
    assert not (elsewhere / "run").exists()


def test_one_bad_file_in_a_folder_refuses_the_whole_run(tmp_path):
    for student in ("alice", "bob"):
        (tmp_path / student).mkdir()
        (tmp_path / student / "server.py").write_text("")
        (tmp_path / student / "client.py").write_text("")
        (tmp_path / student / "claim.toml").write_text(GOOD)
    (tmp_path / "bob" / "claim.toml").write_text(replace(GOOD, "port = 8000", "port = 'x'"))
    res = netbed("run", str(tmp_path), "--out", str(tmp_path / "runs"))
    assert res.returncode == 2
    assert "bob/claim.toml: server.port: must be an integer" in res.stderr
    assert not (tmp_path / "runs").exists()


def test_junit_is_for_claim_files_and_list_claims_refuses_what_a_claim_cannot_say():
    res = netbed("run", "handshake", "--junit", "x.xml")
    assert res.returncode == 2 and "--junit is for claim files" in res.stderr
    for name in ("udp-no-handshake", "ports", "simultaneous-close", "refused"):  # not one server and one client
        res = netbed("list", "--claims", name)
        assert res.returncode == 2 and res.stdout == "", name
        assert res.stderr.startswith(f"netbed: {name} ") and res.stderr.count("\n") == 1, res.stderr
    res = netbed("list", "--claims", "no-such-experiment")
    assert res.returncode == 2 and "unknown experiment" in res.stderr


def test_every_skeleton_is_a_valid_claim_file_with_the_experiments_expectations(tmp_path):
    for name, expected in EXPECT.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(skeleton(name))
        claim = claimfile.load(path)
        assert claim.name == name and claim.expect == expected
        assert ("peer.py" in claim.server.run and "peer.py" in claim.client.run) or \
            ("httpd.py" in claim.server.run and claim.client.run.startswith("curl"))


# -- the ladder's binding rule ---------------------------------------------------------------------

def test_a_name_first_met_with_an_offset_is_bound_so_that_it_holds():
    fin, ack = Seg(False, FIN | ACK, 500, 100), Seg(True, ACK, 100, 501)
    assert Expect().ladder("close", Conn(), [fin, ack], ["server > F.", "client > .  ack=g+1"])
    # bound once, then checked: g+1 from the ACK must agree with seq=g of a later line
    assert not Expect().ladder("close", Conn(), [ack, fin], ["client > .  ack=g+1", "server > F. seq=g+1"])
    assert Expect().ladder("close", Conn(), [ack, fin], ["client > .  ack=g+1", "server > F. seq=g"])


def test_ladder_lines_are_checked_before_any_run():
    check_ladder_lines(["server > F.", "client > .  ack=g+1", "server > R. len=0"])
    for bad in (["server F."], ["client > F. sequence=1"], ["client > Q."], ["client > . ack<x"]):
        with pytest.raises(ValueError):
            check_ladder_lines(bad)


# -- verdict table and JUnit -------------------------------------------------------------------------

def result(name: str, student: str, assertions: list[tuple[str, bool, str]]) -> tuple[str, RunResult]:
    """(the claim file's label, its result), as `netbed run DIR` pairs them."""
    return f"{student}/{name}.toml", RunResult.from_json({
        "experiment": name, "topology": "lan", "passed": all(a[1] for a in assertions), "duration": 1.25,
        "artifacts": {"dir": f"/runs/{student}-{name}"},
        "assertions": [{"name": n, "passed": p, "detail": d} for n, p, d in assertions]})


LADDER_DETAIL = "   expected     observed\n   server > F.  server > F. seq=1\n ✗ client > .  client > R. seq=2"
RESULTS = [
    result("http10", "alice", [("close", True, "'four-way'")]),
    result("http10", "bob", [("handshake", True, "'complete'"),
                             ("close", False, "expected 'four-way', observed 'reset'"),
                             ("ladder", False, LADDER_DETAIL)]),
]


def test_the_table_gives_one_row_per_claim_file_with_the_first_failure_as_reason():
    text = table(RESULTS)
    rows = text.splitlines()
    assert rows[0].split() == ["claim", "file", "verdict", "time", "reason"]
    assert rows[1].split() == ["alice/http10.toml", "PASS", "1.2s"]
    assert rows[2].split(maxsplit=3) == ["bob/http10.toml", "FAIL", "1.2s",
                                         "close: expected 'four-way', observed 'reset'"]
    assert "1/2 passed; run folders under /runs" in text
    assert reason(result("x", "y", [("ladder", False, LADDER_DETAIL)])[1]) == \
        "ladder: ✗ client > .  client > R. seq=2"  # the marked row of a ladder, not its header


def test_junit_has_a_case_per_claim_file_and_a_failure_per_failed_assertion():
    cases = [(label.split("/")[0], f"http10 ({label.split('/')[1]})", f"/class/{label}", r) for label, r in RESULTS]
    root = ET.fromstring(junit_xml(cases).split("\n", 1)[1])
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time"), c.get("file")) for c in cases] == \
        [("alice", "http10 (http10.toml)", "1.250", "/class/alice/http10.toml"),
         ("bob", "http10 (http10.toml)", "1.250", "/class/bob/http10.toml")]
    assert cases[0].find("failure") is None
    failures = cases[1].findall("failure")
    assert [f.get("message") for f in failures] == [
        "close: expected 'four-way', observed 'reset'", "ladder: ✗ client > .  client > R. seq=2"]
    assert failures[1].text == LADDER_DETAIL  # the full side-by-side table, not only its first line
    assert "run folder: /runs/bob-http10" in cases[1].find("system-out").text


def test_the_junit_class_is_the_students_folder():
    from netbed.report.junit import classname

    assert classname(Path("/class/alice"), Path("/class")) == "alice"
    assert classname(Path("/class/year2/bob"), Path("/class")) == "year2.bob"


@pytest.mark.skipif(not IS_ROOT, reason="giving a folder to nobody (chown) needs root")
def test_programs_run_as_the_folders_owner_through_setpriv_never_a_shell(tmp_path):
    from netbed.claims.programs import Owner

    folder = tmp_path / "alice"
    folder.mkdir()
    os.chown(folder, 65534, 65534)
    owner = Owner.of(folder)
    assert (owner.uid, owner.gid, owner.user) == (65534, 65534, "nobody")
    argv = owner.wrap(["./server", "9000"], folder)
    assert argv[:4] == ["setpriv", "--reuid=65534", "--regid=65534", "--init-groups"]
    assert argv[4:7] == ["env", "-C", str(folder)] and argv[-5:] == ["stdbuf", "-o0", "-e0", "./server", "9000"]
    os.chown(folder, 0, 0)
    assert Owner.of(folder).wrap(["./server"], folder)[0] == "env"  # root owns it: no change of user


def test_a_build_that_hangs_is_stopped_whole_at_its_timeout(folder, monkeypatch):
    from netbed.claims import grade

    monkeypatch.setattr(grade, "BUILD_TIMEOUT", 1.0)
    hang = """build = "sh -c 'echo compiling; sleep 31.4159 & sleep 31.4159'" """  # a child, and a hang
    claim = claimfile.load(write(folder, replace(GOOD, 'name = "demo"', 'name = "demo"\n' + hang)))
    built = grade.build(claim)
    assert built["timed_out"] and built["exit"] is None and built["stdout"] == "compiling\n"
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep 31.4159"]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_a_bare_name_is_an_experiment_unless_only_a_folder_has_it(tmp_path, monkeypatch):
    from netbed.claims.grade import is_claim_target

    monkeypatch.chdir(tmp_path)
    (tmp_path / "handshake").mkdir()
    (tmp_path / "class").mkdir()
    assert not is_claim_target("handshake") and is_claim_target("class")
    assert is_claim_target("x.toml") and is_claim_target("class/") and not is_claim_target(None)


def test_shown_paths_are_relative_to_the_working_folder_where_they_can_be(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert claimfile.shown(tmp_path / "a" / "b.toml") == os.path.join("a", "b.toml")
    assert claimfile.shown(Path("/elsewhere/c.toml")) == "/elsewhere/c.toml"


def test_the_docs_skeleton_is_what_netbed_list_claims_prints():
    doc = (REPO / "docs" / "grading.md").read_text()
    shown = doc.split("$ .venv/bin/netbed list --claims close-client\n", 1)[1].split("```", 1)[0]
    printed = skeleton("close-client").replace(str(REPO), "/path/to/netbed")
    keep = [line for line in shown.splitlines() if not line.startswith("# The lecture")]
    assert keep == [line for line in printed.splitlines() if not line.startswith("# The lecture")]

