"""Claim files, live: students' programs (C built by the claim's build, Python, bash) run as a user other
than root on real emulated networks, graded from the captures, the kernel's states and the programs'
observed exit and output. docs/grading.md's worked example runs here as written; real wrong programs
fail with the reason in one line; every [expect] key can fail; skeletons of catalog experiments pass.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import NETBED, REPO, netbed

from netbed.claims.skeleton import EXPECT, skeleton

pytestmark = pytest.mark.netbed

DOC = REPO / "docs" / "grading.md"
PROGRAMS = Path(__file__).with_name("claim_programs")
NOBODY = 65534  # programs run as the owner of the claim file's folder: here, not root


@pytest.fixture
def tmp_path(request):
    """A folder `nobody` can reach (pytest's own live under /tmp/pytest-of-root, mode 0700), removed after
    the test — kept when it failed, with its run folders, to be looked at."""
    failed = request.session.testsfailed
    folder = Path(tempfile.mkdtemp(prefix="netbed-claims-"))
    folder.chmod(0o755)
    yield folder
    if request.session.testsfailed == failed:
        shutil.rmtree(folder, ignore_errors=True)


def doc_blocks() -> dict[str, str]:
    """The doc's code blocks that open with a file name (`/* alice/server.c — …`, `# http10.toml — …`)."""
    files = {}
    for block in re.findall(r"```(?:c|python|toml)\n(.*?)```", DOC.read_text(), flags=re.S):
        named = re.match(r"(?:#|/\*) ([\w./-]+\.(?:c|py|toml))\b", block)
        if named:
            files[named.group(1)] = block
    return files


def owned_by_nobody(folder: Path) -> Path:
    """Hand a folder (and everything in it) to `nobody`, as a student's folder belongs to its student."""
    folder.chmod(0o755)
    for path in [folder, *folder.rglob("*")]:
        shutil.chown(path, NOBODY, NOBODY)
    return folder


def class_folder(base: Path) -> Path:
    """docs/grading.md's class/: alice's and bob's servers, the teacher's client and two claim files each."""
    blocks = doc_blocks()
    alice = blocks["alice/server.c"]
    function = re.compile(r"static int read_request\(int fd\) \{.*?\n\}\n", flags=re.S)
    bob_function = blocks["bob/server.c"].split("\n", 1)[1]  # without its naming comment line
    bob = function.sub(lambda _m: bob_function, alice, count=1)
    assert bob != alice and "c != '\\n'" in bob
    root = base / "class"
    for student, server in (("alice", alice), ("bob", bob)):
        (root / student).mkdir(parents=True)
        (root / student / "server.c").write_text(server)
        for name in ("client.py", "http10.toml", "half-close.toml"):
            (root / student / name).write_text(blocks[name])
    return owned_by_nobody(root)


def doc_table_rows() -> list[list[str]]:
    """The verdict table printed in the doc: [file, verdict, reason] per row."""
    text = DOC.read_text()
    table = text[text.index("claim file             verdict"):].split("\n\n", 1)[0]
    return [[r.split()[0], r.split()[1], r.split(None, 3)[3] if len(r.split()) > 3 else ""]
            for r in table.splitlines()[1:]]


def table_rows(stdout: str) -> list[list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("claim file"))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        words = line.split(None, 3)
        rows.append([words[0], words[1], words[3] if len(words) > 3 else ""])
    return rows


def test_the_worked_example_of_the_doc_grades_as_the_doc_says(tmp_path):
    root = class_folder(tmp_path)
    grades = tmp_path / "grades.xml"
    res = netbed("run", str(root), "--junit", str(grades), "--out", str(tmp_path / "runs"))
    assert res.returncode == 1, res.stdout + res.stderr  # bob fails
    assert table_rows(res.stdout) == doc_table_rows(), res.stdout
    assert "2/4 passed" in res.stdout and f"junit: {grades}" in res.stdout

    cases = ET.parse(grades).getroot().findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("alice", "half-close (half-close.toml)"), ("alice", "http10-server-closes-first (http10.toml)"),
        ("bob", "half-close (half-close.toml)"), ("bob", "http10-server-closes-first (http10.toml)")]
    assert [c.find("failure") for c in cases[:2]] == [None, None]
    for case in cases[2:]:  # the doc's first failure of each of bob's cases, on every run
        assert case.find("failure").get("message") == "close: expected 'four-way', observed 'reset'"
    doc_xml = DOC.read_text().split("```xml\n", 1)[1].split("```", 1)[0]
    assert doc_xml.count("<failure message=\"close: expected 'four-way', observed 'reset'\"") == 2

    # the programs ran as the folder's owner: the build's output belongs to nobody
    assert (root / "alice" / "server").stat().st_uid == NOBODY
    shutil.rmtree(root)  # the claim files and programs are gone: the run folders carry what a re-check needs
    # `netbed report` reads the run folders back: the same verdicts
    report = json.loads(netbed("report", str(tmp_path / "runs"), "--json").stdout)
    assert sorted(r["passed"] for r in report["results"]) == [False, False, True, True]
    # and every run folder re-checks offline to the very same verdict
    for run in sorted((tmp_path / "runs").iterdir()):
        saved = json.loads((run / "result.json").read_text())
        again = json.loads(netbed("check", str(run), "--json").stdout)
        assert (again["passed"], again["assertions"]) == (saved["passed"], saved["assertions"]), run


def test_two_runs_of_one_class_at_once_build_in_turn_and_agree(tmp_path):
    """Each claim holds its folder while it builds and runs: the other run never executes a half-built
    ./server (sabotage: without the lock, one run says 'Permission denied' or 'not executable')."""
    root = class_folder(tmp_path)
    runs = [subprocess.Popen([*NETBED, "run", str(root), "--out", str(tmp_path / f"runs{n}")], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for n in (1, 2)]
    for proc in runs:
        out, _ = proc.communicate(timeout=600)
        assert table_rows(out) == doc_table_rows(), out


def test_one_claim_file_prints_its_assertions_and_ladder(tmp_path):
    root = class_folder(tmp_path)
    page = tmp_path / "report.html"
    res = netbed("run", str(root / "alice" / "http10.toml"), "--out", str(tmp_path / "run"), "--html", str(page))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "alice/http10-server-closes-first" in page.read_text() and f"report: {page}" in res.stdout
    assert res.stdout.startswith("PASS  alice/http10-server-closes-first on multi-lan")
    for line in ("✓ server_states: SYN_RECEIVED → ESTABLISHED → FIN_WAIT_1 → FIN_WAIT_2 → TIME_WAIT",
                 "✓ close: 'four-way'", "✓ client_bytes: 18", "✓ server_bytes: 4141"):
        assert line in res.stdout
    assert "F. seq=4142" in res.stdout  # the ladder diagram: the server's FIN after 45 + 4096 bytes
    for name in ("client.pcap", "server.pcap", "r1.pcap", "ladder.svg", "manifest.json", "states.txt"):
        assert (tmp_path / "run" / name).is_file(), name
    shown = netbed("show", str(tmp_path / "run"))
    assert shown.returncode == 0 and "re-checked from the saved captures" in shown.stdout


def test_a_claim_on_a_custom_mininet_topology_runs_across_its_router(tmp_path):
    """custom = "topo.py", topo = "linuxrouter": Mininet's own example, built as `mn --custom` builds it; the
    client on h1 reaches the server on h3 through r0, seen in both captures."""
    root = class_folder(tmp_path)
    alice = root / "alice"
    example = Path("/usr/lib/python3/dist-packages/mininet/examples/linuxrouter.py").read_text()
    (alice / "topo.py").write_text(example + "\ntopos = {'linuxrouter': NetworkTopo}\n")  # as for mn --custom
    text = (alice / "http10.toml").read_text()
    assert 'topology = "multi-lan"' in text
    # the ladder line is left out: on this topology the server's FIN rides on its last data segment (FP.),
    # as the lecture allows ("步骤1的FIN随数据一起发送"); every other expectation must hold as on multi-lan
    routed = re.sub(r"^ladder = .*\n", "", text, flags=re.M)
    assert routed != text
    (alice / "routed.toml").write_text(routed.replace('topology = "multi-lan"',
                                                      'custom = "topo.py"\ntopo = "linuxrouter"'))
    owned_by_nobody(root)
    res = netbed("run", str(alice / "routed.toml"), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "on linuxrouter" in res.stdout.splitlines()[0]
    saved = json.loads((tmp_path / "run" / "evidence.json").read_text())
    assert {n["name"] for n in saved["topology"]["nodes"]} >= {"h1", "h3", "r0"}
    shown = netbed("check", str(tmp_path / "run"))
    assert shown.returncode == 0, shown.stdout + shown.stderr


def case(base: Path, name: str, claim: str, files: dict[str, str]) -> None:
    """A student's folder: the claim file and copies of the programs it runs."""
    folder = base / name
    folder.mkdir(parents=True)
    (folder / "claim.toml").write_text(claim)
    for target, source in files.items():
        shutil.copy2(PROGRAMS / source if (PROGRAMS / source).exists() else source, folder / target)


GOOD_SERVER = "gcc -O2 -o server server.c"
# (folder, claim file, programs, the reason the table must give)
WRONG = [
    ("crash", f'build = "{GOOD_SERVER}"\n[server]\nrun = "./server {{port}}"\n'
              '[client]\nrun = "./client.sh {server_ip} {port}"\ntimeout = 3\n[expect]\nclose = "four-way"\n',
     {"server.c": "crash_server.c", "client.sh": "http_client.sh"},
     "server: runs through the exchange without crashing or exiting early: crashed: killed by SIGSEGV "),
    ("wrong-port", f'build = "{GOOD_SERVER}"\n[server]\nport = 8000\nrun = "./server {{port}}"\n'
                   '[client]\nrun = "./client.sh {server_ip} {port}"\ntimeout = 3\n',
     {"server.c": "wrong_port_server.c", "client.sh": "http_client.sh"},
     "server: listens on tcp port 8000 where h1 can reach it: it listens on 0.0.0.0:8080 instead; "
     "it printed 'listening on port 8080'"),
    ("never-listens", '[server]\nrun = "python3 server.py {port}"\n'
                      '[client]\nrun = "./client.sh {server_ip} {port}"\ntimeout = 2\n',
     {"server.py": "never_listens.py", "client.sh": "http_client.sh"},
     "server: listens on tcp port 9000 where h1 can reach it: nothing listened on any port after 2.0 s; "
     "it printed 'server starting'"),
    ("wrong-address", '[server]\nrun = "python3 server.py {port}"\n'
                      '[client]\nrun = "./client.sh {server_ip} {port}"\ntimeout = 3\n',
     {"server.py": "loopback_server.py", "client.sh": "http_client.sh"},
     "server: listens on tcp port 9000 where h1 can reach it: listens on 127.0.0.1:9000, which h1 cannot reach"),
    ("exits-early", '[server]\nrun = "python3 server.py {port}"\n'
                    '[client]\nrun = "./client.sh {server_ip} {port}"\ntimeout = 3\n',
     {"server.py": "exits_early.py", "client.sh": "http_client.sh"},
     "server: runs through the exchange without crashing or exiting early: exited early (exit 0)"),
    ("hang", f'build = "{GOOD_SERVER}"\n[server]\nrun = "./server {{port}}"\n'
             '[client]\nrun = "./client.sh {server_ip} {port}"\ntimeout = 2\n[expect]\nclient_exit = 0\n',
     {"server.c": "", "client.sh": "hang_client.sh"},
     "client: runs to its end within 2 s: still running after 2 s: killed (SIGTERM); "
     "it had printed 'connecting to 10.0.0.3 port 9000'"),
    ("wrong-destination", f'build = "{GOOD_SERVER}"\n[server]\nrun = "./server {{port}}"\n'
                          '[client]\nrun = "python3 client.py {server_ip} {port}"\ntimeout = 3\n',
     {"server.c": "", "client.py": "loopback_client.py"},
     "client: connects to the server at 10.0.0.3:9000: no connection to 10.0.0.3:9000 in the client-side "
     "capture; the kernel saw h1 connect to 127.0.0.1:9000"),
    ("no-half-close", f'build = "{GOOD_SERVER}"\n[server]\nrun = "./server {{port}}"\n'
                      '[client]\nrun = "./client.sh {server_ip} {port}"\n[expect]\ninitiator = "client"\n',
     {"server.c": "", "client.sh": "http_client.sh"},
     "initiator: expected 'client', observed 'server'"),
    ("right-bash-client", f'build = "{GOOD_SERVER}"\n[server]\nrun = "./server {{port}}"\n'
                          '[client]\nrun = "./client.sh {server_ip} {port}"\n[expect]\nhandshake = "complete"\n'
                          'initiator = "server"\nclient_bytes = 18\nserver_bytes = 4141\n'
                          'client_output = "HTTP/1.0 200 OK"\nclient_exit = 0\nconnections = 1\n',
     {"server.c": "", "client.sh": "http_client.sh"}, ""),
]


def seconds_blind(text: str) -> str:
    return re.sub(r"\d+\.\d+ s\b", "N s", text)


def test_wrong_programs_fail_with_the_reason_in_one_line_and_leave_nothing_behind(tmp_path):
    alice = tmp_path / "alice-server.c"
    alice.write_text(doc_blocks()["alice/server.c"])
    base = tmp_path / "class"
    for name, claim, files, _ in WRONG:
        case(base, name, claim, {t: (s or str(alice)) for t, s in files.items()})
    owned_by_nobody(base)
    res = netbed("run", str(base), "--out", str(tmp_path / "runs"), "--json")
    assert res.returncode == 1, res.stderr
    results = {Path(r["claim_file"]).parent.name: r for r in json.loads(res.stdout)["results"]}
    from netbed.report.grades import reason
    from netbed.verdict import RunResult

    doc = DOC.read_text()
    for name, _, _, expected in WRONG:
        got = reason(RunResult.from_json(results[name]))
        if expected:  # the doc's table quotes what netbed says, verbatim but for the seconds
            cell = doc.split(f"| `{expected}", 1)[1].split("` |", 1)[0]
            assert seconds_blind(expected + cell) == seconds_blind(got), name
        assert results[name]["passed"] is (expected == ""), (name, got)
        assert got.startswith(expected), (name, got)
        assert "\n" not in got and "Traceback" not in got
    # the right bash client ran as nobody, in its own folder (what it printed, from its observed output)
    client = json.loads(Path(results["right-bash-client"]["artifacts"]["evidence"]).read_text())["programs"]["client"]
    assert f"uid={NOBODY} cwd={base / 'right-bash-client'}" in client["stdout"]


def test_every_expect_key_can_fail(tmp_path):
    """Sabotage: the close-client skeleton with every [expect] key wrong — each is its own failed assertion."""
    folder = tmp_path / "sabotage"
    folder.mkdir()
    text = skeleton("close-client").split("[expect]\n")[0] + "[expect]\n" + "\n".join([
        'handshake = "refused"', 'close = "three-way"', 'initiator = "server"', "client_bytes = 1",
        "server_bytes = 5", "half_close_bytes = 7", 'client_states = ["TIME_WAIT", "ESTABLISHED"]',
        'server_states = ["FIN_WAIT_1"]', 'ladder = ["server > F."]', "client_exit = 3",
        'client_output = "not printed"', "connections = 2"]) + "\n"
    (folder / "claim.toml").write_text(text)
    owned_by_nobody(folder)
    res = netbed("run", str(folder / "claim.toml"), "--out", str(tmp_path / "run"), "--json")
    assert res.returncode == 1
    verdicts = {a["name"]: a["passed"] for a in json.loads(res.stdout)["assertions"]}
    keys = ["handshake", "close", "initiator", "client_bytes", "server_bytes", "half_close_bytes", "client_states",
            "server_states", "ladder", "client_exit", "client_output", "connections"]
    assert {k: verdicts[k] for k in keys} == dict.fromkeys(keys, False)
    assert all(ok for name, ok in verdicts.items() if name not in keys), verdicts  # the programs were fine


def test_skeletons_of_catalog_experiments_pass_as_claim_files(tmp_path):
    folder = tmp_path / "skeletons"
    folder.mkdir()
    for name in EXPECT:
        text = skeleton(name)
        for path, size in re.findall(r"^# file: (\S+), (\d+) bytes$", text, flags=re.M):  # pages it serves
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text("x" * int(size))
        (folder / f"{name}.toml").write_text(text)
    owned_by_nobody(folder)
    res = netbed("run", str(folder), "--out", str(tmp_path / "runs"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(EXPECT)}/{len(EXPECT)} passed" in res.stdout


def test_a_low_port_needs_no_root_and_changes_nothing_outside_the_host(tmp_path):
    knob = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    before = knob.read_text()
    folder = tmp_path / "web"
    folder.mkdir()
    (folder / "server.c").write_text(doc_blocks()["alice/server.c"])
    shutil.copy2(PROGRAMS / "http_client.sh", folder / "client.sh")
    (folder / "claim.toml").write_text(f'build = "{GOOD_SERVER}"\n[server]\nport = 80\nrun = "./server {{port}}"\n'
                                       '[client]\nrun = "./client.sh {server_ip} {port}"\n'
                                       '[expect]\nclient_output = "HTTP/1.0 200 OK"\n')
    owned_by_nobody(folder)
    res = netbed("run", str(folder / "claim.toml"), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "listens on 0.0.0.0:80" in res.stdout and f"uid={NOBODY}" in json.loads(
        (tmp_path / "run" / "evidence.json").read_text())["programs"]["client"]["stdout"]
    assert knob.read_text() == before


def test_a_build_that_fails_is_a_fail_with_the_compiler_saying_why_and_no_network(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "server.c").write_text("int main(void) { return undeclared; }\n")
    shutil.copy2(PROGRAMS / "http_client.sh", folder / "client.sh")
    (folder / "claim.toml").write_text(f'build = "{GOOD_SERVER}"\n[server]\nrun = "./server {{port}}"\n'
                                       '[client]\nrun = "./client.sh {server_ip} {port}"\n')
    owned_by_nobody(folder)
    res = netbed("run", str(folder / "claim.toml"), "--out", str(tmp_path / "run"))
    assert res.returncode == 1, res.stderr
    assert "✗ build: gcc -O2 -o server server.c: exit 1: it printed" in res.stdout and "undeclared" in res.stdout
    assert not list((tmp_path / "run").glob("*.pcap"))  # no network was built
    again = netbed("check", str(tmp_path / "run"))
    assert again.returncode == 1 and "✗ build: gcc" in again.stdout
