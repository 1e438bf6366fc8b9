"""The HTML report: one self-contained page over run folders, checked as text and in a real browser.

The run folders are written by hand (see test_report_show.write_run), so no network and no root are
needed; only the browser test needs Debian's chromium and is skipped, saying so, without it.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape
from test_report_show import write_run

from netbed import runner, verdict
from netbed.cli import main
from netbed.report.folder import results_from_dirs
from netbed.report.html import inline_svg, render_page, write_page
from netbed.verdict import result_of_dir

# (experiment, topology, duration): two PASS (handshake), two FAIL (half-close and close-client need
# evidence this hand-made exchange lacks, so they fail with expected-vs-observed details)
RUNS = [("handshake", "lan", 1.4), ("handshake", "wan", 2.1), ("half-close", "lan", 1.8), ("close-client", "wan", 1.6)]


def write_runs(base: Path) -> list[Path]:
    """Run folders as `netbed run` leaves them, ladder.svg and result.json (with its duration) included."""
    folders = []
    for experiment, topology, duration in RUNS:
        folder = write_run(base / f"20250101-120000-{experiment}-{topology}", experiment=experiment)
        evidence = json.loads((folder / "evidence.json").read_text())
        evidence["topology"]["name"] = topology
        (folder / "evidence.json").write_text(json.dumps(evidence))
        result = verdict.check_dir(folder)
        result.duration = duration
        runner.write_result(folder, result)
        folders.append(folder)
    return folders


class Elements(HTMLParser):
    """Start tags with their attributes, in document order (enough to count cells, links and SVGs)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def with_class(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and cls in a.get("class", "").split()]

    def all(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, str]:
    write_runs(tmp_path / "runs")
    html_file = write_page(results_from_dirs([tmp_path / "runs"]), tmp_path / "report.html")
    return html_file, html_file.read_text()


def test_verdict_table_has_a_pass_or_fail_cell_per_run_linking_to_its_section(page):
    _, text = page
    dom = Elements(text)
    assert len(dom.with_class("td", "rp-pass")) == 2 and len(dom.with_class("td", "rp-fail")) == 2
    assert len(dom.with_class("td", "rp-none")) == 2  # half-close not on wan, close-client not on lan
    ids = {a["id"] for _, a in dom.tags if "id" in a}
    cell_links = [a["href"] for a in dom.all("a") if a.get("href", "").startswith("#run-")]
    assert len(cell_links) == 4 and {h[1:] for h in cell_links} <= ids
    assert re.search(r"PASS <small class=\"rp-dur\">2\.1 s</small>", text)


def test_each_experiment_shows_its_lecture_claim_and_gloss(page):
    from netbed.experiment import get

    _, text = page
    for name in ("handshake", "half-close", "close-client"):
        exp = get(name)
        assert f'<p class="rp-claim" lang="zh">「{escape(exp.claim)}」</p>' in text
        assert f'<p class="rp-gloss">{escape(exp.gloss)}</p>' in text
        if exp.forcing:
            assert f'<p class="rp-forcing"><b>Forced:</b> {escape(exp.forcing)}</p>' in text
        if exp.netbed:
            assert f'<p class="rp-netbed"><b>netbed, not the lecture:</b> {escape(exp.netbed)}</p>' in text


def test_page_is_self_contained_and_links_only_to_its_own_sections_and_the_pcaps(page):
    html_file, text = page
    dom = Elements(text)
    assert not dom.all("script") and not dom.all("link") and not dom.all("img") and not dom.all("iframe")
    assert not [a for _, a in dom.tags if "src" in a]
    svgs = len(dom.all("svg"))  # 4 ladders and the figures of the runs that carried data
    assert re.findall(r"https?://[^\"' )]+", text) == ["http://www.w3.org/2000/svg"] * svgs  # SVG namespace only
    for href in (a["href"] for a in dom.all("a")):
        if href.startswith("#"):
            continue
        assert not href.startswith("/") and (html_file.parent / href).is_file(), href


def test_pcap_links_are_relative_to_where_the_page_is_written(tmp_path):
    folders = write_runs(tmp_path / "runs")
    html_file = write_page(results_from_dirs(folders[:1]), tmp_path / "site" / "report.html")
    hrefs = [a["href"] for a in Elements(html_file.read_text()).all("a") if a["href"].endswith(".pcap")]
    assert hrefs == [f"../runs/{folders[0].name}/client.pcap", f"../runs/{folders[0].name}/server.pcap"]
    assert "open in Wireshark" in html_file.read_text()


def test_one_inline_ladder_svg_per_run_and_the_first_of_each_experiment_unfolded(page):
    _, text = page
    dom = Elements(text)
    assert len(dom.all("svg")) == len(RUNS) + len(dom.with_class("details", "rp-figure"))
    folded = [a for a in dom.with_class("details", "rp-ladder") if "open" not in a]
    assert len(folded) == 1  # handshake on wan: passed, same exchange as on lan
    assert "<?xml" not in text


def test_failed_assertion_shows_expected_above_observed(page):
    _, text = page
    assert re.search(r'<li class="rp-bad">.*?<th>expected</th><td>200000</td></tr>'
                     r'<tr class="rp-observed"><th>observed</th><td>0</td>', text)


def test_a_failed_ladder_is_drawn_row_by_row_from_its_values(tmp_path):
    from test_verdict import FOUR_WAY, THREE_WAY, Conn

    from netbed.expect import Expect

    result = verdict.check_dir(write_run(tmp_path / "run"))
    expect = Expect()
    expect.ladder("the close", Conn(), FOUR_WAY, THREE_WAY)
    result.assertions, result.passed = expect.assertions, False
    text = render_page([result], tmp_path)
    rows = re.findall(r'<tr( class="rp-differs")?><th>(✗?)</th><td>([^<]*)</td><td>([^<]*)</td></tr>', text)
    assert [(bool(cls), mark) for cls, mark, _, _ in rows] == [(False, ""), (True, "✗"), (True, "✗"), (True, "✗")]
    assert rows[1][2:] == ("server &gt; F. seq=g ack=f+1", "server &gt; .  seq=500 ack=101 len=0")
    assert rows[3][2] == "(nothing)"


def test_the_page_draws_values_and_never_reads_them_out_of_text(tmp_path):
    from netbed.expect import Assertion

    result = verdict.check_dir(write_run(tmp_path / "run"))
    result.assertions = [Assertion("free text", False, "expected 1, observed 2")]  # no values: shown as written
    text = render_page([result], tmp_path)
    assert "rp-diff" not in text.split("</style>")[1]
    assert '<span class="rp-detail rp-mono">expected 1, observed 2</span>' in text


def test_state_timeline_merges_both_sides_from_time_zero(page):
    _, text = page
    table = text[text.index('<table class="rp-states">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<td class="rp-t">([\d.]+)</td><td>(\w*\*?)</td><td>(\w*)</td>', table)
    assert rows[0] == ("0.000", "SYN_SENT", "")
    assert [c for _, c, _ in rows if c] == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT*"]
    assert [s for _, _, s in rows if s] == ["SYN_RECEIVED", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    assert [float(t) for t, _, _ in rows] == sorted(float(t) for t, _, _ in rows)


def test_everything_from_a_run_folder_is_escaped_and_its_svg_defused(tmp_path):
    run = write_run(tmp_path / "run")
    result = verdict.check_dir(run)
    result.experiment = "<script>alert(1)</script>"
    result.assertions[0] = dataclasses.replace(result.assertions[0], passed=False, kind="equal",
                                               expected="<b>&amp;</b>", observed='"<i>"')
    (run / "ladder.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="alert(2)">'
        '<script>alert(3)</script><a xlink:href="javascript:alert(4)"><text>hi</text></a>'
        '<foreignObject><div>x</div></foreignObject></svg>')
    text = render_page([result], tmp_path)
    assert "<script" not in text and "alert(" not in text.replace("&lt;script&gt;alert(1)", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<td>&lt;b&gt;&amp;amp;&lt;/b&gt;</td>" in text and "<td>&#34;&lt;i&gt;&#34;</td>" in text
    assert "<text>hi</text>" in text and "foreignObject" not in text


def test_a_missing_or_broken_ladder_is_said_not_inlined(tmp_path):
    (tmp_path / "broken.svg").write_text("<svg")
    (tmp_path / "html.svg").write_text("<html><body/></html>")
    assert inline_svg(tmp_path / "absent.svg") is None
    assert inline_svg(tmp_path / "broken.svg") is None
    assert inline_svg(tmp_path / "html.svg") is None


def test_a_page_of_an_interrupted_run_says_it_is_incomplete(tmp_path):
    run = write_run(tmp_path / "run")
    text = render_page([verdict.check_dir(run)], tmp_path, planned=51)
    assert "Incomplete: 1 of the 51 planned runs finished" in text


def test_a_folder_whose_experiment_is_gone_is_reported_with_its_saved_verdict_where_it_now_is(tmp_path):
    run = write_run(tmp_path / "run", experiment="retired-experiment")
    (run / "result.json").write_text(json.dumps({
        "experiment": "retired-experiment", "topology": "lan", "passed": False, "duration": 3.0,
        "assertions": [{"name": "the old claim", "passed": False, "detail": "expected 1, observed 2"}],
        "artifacts": {"dir": "/elsewhere/run", "pcaps": {"client": "/elsewhere/run/client.pcap"}}}))
    result, source = result_of_dir(run)
    assert result.passed is False and result.duration == 3.0 and source == "result.json"
    assert result.artifacts == {"dir": str(run), "pcaps": {"client": str(run / "client.pcap")}}
    assert "not installed here" in render_page([result], tmp_path)


def test_report_command_rewrites_the_page_offline_and_prints_the_verdict_table(tmp_path, capsys):
    write_runs(tmp_path / "runs")
    assert main(["report", str(tmp_path / "runs"), "--html", str(tmp_path / "r.html")]) == 1  # two FAILs
    out = capsys.readouterr().out
    assert "experiment    topology   verdict    time  failed assertions" in out
    assert "2/4 passed; run folders under" in out and f"report: {tmp_path / 'r.html'}" in out
    dom = Elements((tmp_path / "r.html").read_text())
    assert len(dom.all("svg")) == 4 + len(dom.with_class("details", "rp-figure"))  # ladders, figures


def test_report_command_json_is_pure_json(tmp_path, capsys):
    write_runs(tmp_path / "runs")
    assert main(["report", str(tmp_path / "runs"), "--json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert [r["passed"] for r in data["results"]].count(True) == 2 and captured.err == ""


@pytest.mark.parametrize("args, message", [
    (["report", "/nonexistent"], "no such folder: /nonexistent"),
    (["report", "/"], "is neither a netbed run folder nor a folder of run folders"),
    (["report", "{runs}", "--html", "{tmp}"], "is a folder: name the page's file"),
])
def test_report_command_bad_input_is_one_line(tmp_path, capsys, args, message):
    write_runs(tmp_path / "runs")
    args = [a.format(runs=tmp_path / "runs", tmp=tmp_path) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


# --- in a real browser ----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

# Run inside the page (a test-only copy) after layout: what the browser actually drew, written into
# the DOM so that --dump-dom hands it back.
PROBE = """<script>
const box = e => e.getBoundingClientRect();
const cells = [...document.querySelectorAll('table.rp-verdicts td.rp-verdict')].map(td => ({
  text: td.innerText.trim().split(/\\s+/)[0], bg: getComputedStyle(td).backgroundColor, top: box(td).top}));
const svgs = [...document.querySelectorAll('details.rp-ladder[open] svg')]
  .map(s => ({w: box(s).width, h: box(s).height}));
const out = document.createElement('pre');
out.id = 'probe';
out.textContent = JSON.stringify({cells, svgs, pageWidth: document.documentElement.scrollWidth});
document.body.appendChild(out);
</script>"""


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=180)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium, "
                                              "or `make setup`)")
def test_report_renders_in_headless_chromium_with_its_table_and_diagrams(page, tmp_path):
    html_file, text = page
    shot = tmp_path / "report.png"
    res = chromium(f"--screenshot={shot}", "--window-size=1280,2000", html_file.as_uri(), profile=tmp_path / "p1")
    assert shot.is_file(), res.stderr[-2000:]
    assert png_size(shot) == (1280, 2000)
    assert shot.stat().st_size > 40_000  # a blank or error page is a few kB; this one has text and diagrams

    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    res = chromium("--dump-dom", "--window-size=1280,2000", probe.as_uri(), profile=tmp_path / "p2")
    dom = Elements(res.stdout)
    assert len(dom.with_class("td", "rp-pass")) == 2 and len(dom.with_class("td", "rp-fail")) == 2, res.stderr[-2000:]
    # one inline ladder per run (and the figures of runs that carried data), parsed as SVG by the browser
    assert len(dom.all("svg")) == len(RUNS) + len(dom.with_class("details", "rp-figure"))
    drawn = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.DOTALL)[1].replace("&quot;", '"'))
    assert sorted(c["text"] for c in drawn["cells"]) == ["FAIL", "FAIL", "PASS", "PASS"]
    colours = {c["text"]: c["bg"] for c in drawn["cells"]}
    assert colours["PASS"] == "rgb(227, 244, 230)" and colours["FAIL"] == "rgb(253, 232, 230)"
    assert all(c["top"] < 2000 for c in drawn["cells"])  # the table is in the screenshot
    assert len(drawn["svgs"]) == 3 and all(500 <= s["w"] <= 800 and s["h"] > 300 for s in drawn["svgs"])
    assert drawn["pageWidth"] <= 1280  # nothing wider than the window: no sideways scrolling


# --- the browser comes from the install step ------------------------------------------------------

@pytest.mark.parametrize("in_archive", [True, False], ids=["debian", "ubuntu"])
def test_setup_installs_chromium_where_the_archive_has_it_and_goes_on_without_it(tmp_path, in_archive):
    from test_packaging import StubMachine, _system_python_is_ready, browser_packages

    if not _system_python_is_ready():
        pytest.skip("/usr/bin/python3 lacks Debian's mininet or python3-venv: run `sudo make setup` first")
    m = StubMachine(tmp_path, absent=("chromium", "make"), archive=("chromium",) if in_archive else ())
    out = m.install(NETBED_WITH_BROWSER="1")
    assert out.returncode == 0, out.stderr
    assert sorted(m.installed()) == sorted((["chromium", "make"] if in_archive else ["make"]) + browser_packages())
    assert len(m.apt("update")) == 1
    assert ("browser test will be skipped" in out.stderr) is not in_archive
