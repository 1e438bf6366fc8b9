"""The pytest plugin as a user meets it: the documented example passes, a broken claim fails with the
ladder and the run folder, a machine that cannot emulate skips with the reason.

The user's side runs in a separate pytest, in a folder of its own with no netbed conftest or ini,
so the plugin arrives the way it would in someone else's repository: through the entry point.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import pytest
from conftest import IS_ROOT, REPO, session_processes
from test_expect import Conn, Seg  # hand-made segments, as the ladder's own tests make them

from netbed.expect import Expect, assert_ladder, assert_passed
from netbed.experiment import Experiment
from netbed.trace.constants import ACK, FIN

DOC = REPO / "docs" / "writing-experiments.md"
EXAMPLE = "test_close.py"
REUSE_EXAMPLE = "test_catalog_check.py"
CATALOG_EXAMPLE = "experiments/my_close.py"
PROMPT_CLOSE = '["recv-eof", "close"]'
PAUSED_CLOSE = '["recv-eof", "quickack", "sleep:0.2", "close"]'  # as tests/test_catalog_live.py breaks it


def doc_files() -> dict[str, str]:
    """The doc's code blocks that open with a file name (`# test_close.py — …`), by that name."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S):
        named = re.match(r"# (\S+\.py)\b", block)
        if named:
            files[named.group(1)] = block
    return files


def user_folder(tests: dict[str, str]) -> Path:
    """A folder anyone may read (setpriv's nobody too) holding the given test files."""
    folder = Path(tempfile.mkdtemp(prefix="netbed-plugin-"))
    folder.chmod(0o755)
    for name, text in tests.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    return folder


@pytest.fixture
def folder_of():
    made = []

    def make(tests: dict[str, str]) -> Path:
        made.append(user_folder(tests))
        return made[-1]

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


def run_user_pytest(folder: Path, *args: str, prefix: tuple[str, ...] = (),
                    timeout: float = 300) -> subprocess.CompletedProcess:
    """pytest in the user's folder, as they would type it (plus -rs so skip reasons are printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", HOME=str(folder))
    basetemp = [] if prefix else ["--basetemp", str(folder / "tmp")]  # nobody cannot write there
    argv = [*prefix, sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider", "-rs", "--color=no",
            *basetemp, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=folder, env=env)


def run_folders(folder: Path, topology: str) -> list[Path]:
    """The run folders a user's pytest left under its --basetemp (not pytest's `…current` links)."""
    return [p for p in (folder / "tmp").glob(f"*/netbed-{topology}") if not p.parent.is_symlink()]


def load_doc_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(doc_files()[name], f"{DOC.name}:{name}", "exec"), module.__dict__)  # our own doc, run as a module
    return module


# --- pure: the pieces, without a network --------------------------------------------------------

def test_the_entry_point_registers_the_plugin_with_pytest():
    found = {e.name: e for e in importlib.metadata.entry_points(group="pytest11")}
    assert "netbed" in found, "reinstall netbed (bash scripts/install.sh) so pytest finds its plugin"
    plugin = found["netbed"].load()
    assert plugin.__name__ == "netbed.pytest_plugin" and callable(plugin.netbed_lab)


def test_the_doc_has_the_worked_example_and_the_catalog_module():
    files = doc_files()
    assert {EXAMPLE, REUSE_EXAMPLE, CATALOG_EXAMPLE} <= set(files)
    assert "def test_" in files[EXAMPLE] and "netbed_lab" in files[EXAMPLE]
    assert PROMPT_CLOSE in files[EXAMPLE]  # the failing variant below replaces it
    body = [line for line in files[EXAMPLE].splitlines() if line.strip() and not line.startswith("#")]
    assert len(body) <= 16, "the worked example should stay about ten lines"


def test_the_docs_catalog_module_has_what_netbed_list_reads():
    mod = load_doc_module(CATALOG_EXAMPLE)
    exp = Experiment(mod.NAME, mod.CLAIM, mod.GLOSS, tuple(mod.TOPOLOGIES), mod)
    assert exp.name == "my-close" and set(exp.topologies) <= {"lan", "multi-lan", "wan"}
    assert callable(mod.run) and callable(mod.check) and isinstance(mod.ORDER, int)


THREE_WAY = ["client > F. seq=f", "server > F. seq=g ack=f+1", "client > .  ack=g+1"]
FOUR_WAY_SEGMENTS = [Seg(True, FIN | ACK, 100, 500), Seg(False, ACK, 500, 101), Seg(False, FIN | ACK, 500, 101),
                     Seg(True, ACK, 101, 501)]


def test_assert_ladder_raises_with_expected_beside_observed():
    with pytest.raises(AssertionError) as failure:
        assert_ladder(Conn(), FOUR_WAY_SEGMENTS, THREE_WAY, name="three segments")
    text = str(failure.value)
    assert text.splitlines()[0] == "✗ three segments"
    assert "expected" in text and "observed" in text
    assert "✗ server > F. seq=g ack=f+1" in text and "server > .  seq=500 ack=101" in text
    assert "(nothing)" in text  # the fourth, unexpected segment


def test_assert_ladder_passes_silently_on_a_matching_exchange():
    segs = [Seg(True, FIN | ACK, 100, 500), Seg(False, FIN | ACK, 500, 101), Seg(True, ACK, 101, 501)]
    assert_ladder(Conn(), segs, THREE_WAY)


def test_assert_ladder_without_a_connection_says_so():
    with pytest.raises(AssertionError, match="no connection"):
        assert_ladder(None, [], THREE_WAY)


def test_assert_passed_names_every_failed_assertion_and_only_those():
    expect = Expect()
    expect.equal("close kind", "three-way", "four-way")
    expect.equal("close initiator", "client", "client")
    expect.ladder("the close", Conn(), FOUR_WAY_SEGMENTS, THREE_WAY)
    with pytest.raises(AssertionError) as failure:
        assert_passed(expect)
    text = str(failure.value)
    assert "✗ close kind: expected 'three-way', observed 'four-way'" in text
    assert "✗ the close" in text and "close initiator" not in text


def test_assert_passed_refuses_an_expectation_that_asserted_nothing():
    with pytest.raises(AssertionError, match="nothing was asserted"):
        assert_passed(Expect())


def test_without_root_the_worked_example_is_skipped_with_the_reason(folder_of):
    folder = folder_of({EXAMPLE: doc_files()[EXAMPLE]})
    if IS_ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is missing: cannot drop root to try the unprivileged path")
        res = run_user_pytest(folder, prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"))
    else:
        res = run_user_pytest(folder)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "1 skipped" in out
    # at the user's test file (pytest folds skips made by a marker, so without a line number)
    assert re.search(r"SKIPPED \[1\] test_close\.py(:\d+)?: netbed: building emulated networks needs root: "
                     r"run it with sudo", out), out


def test_the_netbed_marker_is_registered_and_selects_every_live_test(folder_of):
    marked = "import pytest\n\n\n@pytest.mark.netbed\ndef test_builds_its_own_network():\n    pass\n"
    folder = folder_of({EXAMPLE: doc_files()[EXAMPLE], "test_marked.py": marked})
    res = run_user_pytest(folder, "--strict-markers", "-m", "not netbed")
    out = res.stdout + res.stderr
    assert "2 deselected" in out, out  # the fixture's user, unmarked by its author, too
    assert "not found in `markers`" not in out


# --- live: real networks ------------------------------------------------------------------------

@pytest.mark.netbed
def test_the_worked_example_passes_as_root(folder_of):
    files = doc_files()
    folder = folder_of({EXAMPLE: files[EXAMPLE], REUSE_EXAMPLE: files[REUSE_EXAMPLE]})
    res = run_user_pytest(folder, "--junitxml", str(folder / "report.xml"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 passed" in res.stdout
    assert len(run_folders(folder, "wan")) == 1  # the catalog's check, reused on three routers
    runs = run_folders(folder, "lan")
    assert len(runs) == 1, runs
    for name in ("client.pcap", "server.pcap", "evidence.json", "ladder.txt", "ladder.svg"):
        assert (runs[0] / name).is_file(), name
    assert " F." in (runs[0] / "ladder.txt").read_text()
    assert f'<property name="netbed_run_folder" value="{runs[0]}"' in (folder / "report.xml").read_text()


@pytest.mark.netbed
def test_a_broken_claim_fails_with_the_ladder_diff_and_the_run_folder(folder_of):
    example = doc_files()[EXAMPLE]
    broken = example.replace(PROMPT_CLOSE, PAUSED_CLOSE)
    failing_inside = (
        "\n\ndef test_failing_while_the_lab_is_open(netbed_lab):\n"
        "    lab = netbed_lab('multi-lan', lans=2, hosts=1)\n"
        "    lab.server(['recv-eof', 'close'])\n"
        "    raise RuntimeError('the test broke before asking for the evidence')\n"
    )
    folder = folder_of({EXAMPLE: broken + failing_inside})
    res = run_user_pytest(folder)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "2 failed" in out, out
    # the ladder diff: the server's bare ACK where its FIN+ACK was expected
    assert re.search(r"✗ server > F\. seq=g ack=f\+1 +server > \. +seq=\d+ ack=\d+ len=0", out), out
    assert "expected" in out and "observed" in out
    # each failure names its run folder; the evidence was saved for the first, pcaps for both
    assert out.count("netbed run folder") == 2, out
    [closed], [inside] = run_folders(folder, "lan"), run_folders(folder, "multi-lan")
    assert f"run folder: {closed}" in out and f"run folder: {inside}" in out
    assert (closed / "evidence.json").is_file() and (closed / "client.pcap").is_file()
    assert (inside / "client.pcap").is_file() and (inside / "r1.pcap").is_file()
    assert "the test failed inside the lab" in out
    # and the lab that was left open while failing took all its processes with it
    assert session_processes() == []


@pytest.mark.netbed
def test_the_docs_catalog_module_passes_its_own_check_on_a_live_lan(netbed_lab):
    mod = load_doc_module(CATALOG_EXAMPLE)
    mod.run(netbed_lab(mod.TOPOLOGIES[0]))
    expect = Expect()
    mod.check(netbed_lab.evidence(), expect)
    assert_passed(expect)
    assert (netbed_lab.out / "ladder.txt").is_file()
