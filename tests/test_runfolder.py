"""Run folders never trace back: privileges before the disk; a file, a read-only mount, a folder
another user owns, a disk that fills up while writing — one line, exit code 2, nothing left running,
a half-written folder marked INCOMPLETE."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import NETBED, REPO, netbed

pytestmark = pytest.mark.netbed


def one_line(res: subprocess.CompletedProcess, message: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


@pytest.fixture()
def shared_dir():
    """A folder any user may enter (pytest's tmp_path is root's alone), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="netbed-runfolder-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.parametrize("args", [["run", "handshake"], ["lab", "lan"], ["topo", "--topo", "single,2"],
                                  ["run", "handshake", "--out", "elsewhere"]])
def test_a_user_without_root_is_told_before_anything_touches_the_disk(shared_dir, args):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    runs = shared_dir / "runs"
    runs.mkdir()  # a checkout whose runs/ belongs to root, as after `sudo make demo`
    res = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *NETBED, *args],
                         capture_output=True, text=True, cwd=shared_dir, timeout=60)
    one_line(res, "building emulated networks needs root: run it with sudo")
    assert sorted(p.name for p in shared_dir.iterdir()) == ["runs"] and not any(runs.iterdir())


def test_out_that_is_a_file_or_under_a_file_is_one_line(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me\n")
    one_line(netbed("run", "handshake", "--out", str(afile)), f"--out {afile} is a file, not a folder")
    one_line(netbed("run", "handshake", "--out", str(afile / "run")), f"{afile} is a file, not a folder")
    one_line(netbed("lab", "--topo", "minimal", "--out", str(afile)), f"--out {afile} is a file, not a folder")
    (tmp_path / "runs").write_text("")  # the default folder's name taken by a file
    res = subprocess.run([*NETBED, "run", "handshake"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    one_line(res, "run folder runs is a file, not a folder")
    assert afile.read_text() == "keep me\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "runs"]


def in_private_mount(tmp_path: Path, mount_options: str, *commands: list[str]) -> list[dict]:
    """Run netbed commands with a tmpfs mounted on tmp_path/disk in a mount namespace of their own: the
    machine's mounts are untouched and the tmpfs vanishes with the namespace. Returns, per command, its
    exit code, its stderr, and the files the disk held right after it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = ["set -e", f"mount -t tmpfs -o {mount_options} netbed-test {disk}", "set +e"]
    for n, argv in enumerate(commands):
        quoted = " ".join(shlex.quote(a) for a in [*NETBED, *argv])
        script += [f"{quoted} >/dev/null 2>{tmp_path}/err-{n}; echo $? >{tmp_path}/rc-{n}",
                   f"cd {disk} && find . -mindepth 1 >{tmp_path}/files-{n}; cd {REPO}"]
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    return [{"rc": int((tmp_path / f"rc-{n}").read_text()), "err": (tmp_path / f"err-{n}").read_text(),
             "files": [f[2:] for f in (tmp_path / f"files-{n}").read_text().splitlines()]}
            for n in range(len(commands))]


def test_a_read_only_out_is_one_line_before_the_run(tmp_path):
    (said,) = in_private_mount(tmp_path, "ro,size=1m", ["run", "handshake", "--out", str(tmp_path / "disk/run")])
    assert said["rc"] == 2 and said["err"].count("\n") == 1, said
    assert f"{tmp_path / 'disk'} is on a read-only file system" in said["err"]


def live_records(out: Path) -> list[str]:
    from netbed import runstate

    return [r.id for r in runstate.records() if str(out) in " ".join(r.command)]


@pytest.mark.parametrize("size, fills", [("64k", True), ("64m", False)])  # 64m: the sabotage, room enough
def test_a_disk_that_fills_up_while_writing_is_one_line_and_a_marked_folder(tmp_path, size, fills):
    out = tmp_path / "disk" / "run"
    ran, checked = in_private_mount(tmp_path, f"size={size}", ["run", "half-close", "--out", str(out)],
                                    ["check", str(out)])
    if fills:
        assert ran["rc"] == 2 and ran["err"].count("\n") == 1 and "Traceback" not in ran["err"], ran
        assert f"cannot write run folder {out}: No space left on device" in ran["err"]
        assert "it is left marked INCOMPLETE" in ran["err"]
        assert "run/INCOMPLETE" in ran["files"]
        assert checked["rc"] == 2 and f"{out} is an incomplete run folder" in checked["err"], checked
    else:
        assert ran["rc"] == 0, ran
        assert "run/INCOMPLETE" not in ran["files"] and "run/result.json" in ran["files"]
        assert checked["rc"] == 0, checked
    assert live_records(out) == []  # the run unregistered itself: its processes and namespaces are gone


def test_a_lab_whose_disk_fills_up_is_one_line_and_a_marked_folder(tmp_path):
    script = tmp_path / "session.cli"
    script.write_text("h1 python3 -m http.server 80 &\nh1 while ! ss -ltn | grep -q ':80 '; do sleep 0.1; done\n"
                      "h2 curl -s -o /dev/null h1\n")
    out = tmp_path / "disk" / "lab"
    (ran,) = in_private_mount(tmp_path, "size=16k", ["lab", "--topo", "single,2", "--script", str(script),
                                                     "--out", str(out)])
    # Mininet's CLI says "*** Starting CLI:" on stderr; netbed's own word is one line, the last
    said = [line for line in ran["err"].splitlines() if line.startswith("netbed:")]
    assert ran["rc"] == 2 and len(said) == 1 and "Traceback" not in ran["err"], ran
    assert ran["err"].splitlines()[-1] == said[0]
    assert f"cannot write lab folder {out}: No space left on device" in ran["err"]
    assert "lab/INCOMPLETE" in ran["files"]
    assert live_records(out) == []


def test_offline_commands_leave_out_or_refuse_an_incomplete_folder(tmp_path):
    runs = tmp_path / "runs"
    broken = runs / "20260101-000000-handshake-lan"
    broken.mkdir(parents=True)
    (broken / "evidence.json").write_text("")  # cut off where the disk filled up
    (broken / "INCOMPLETE").write_text("the run stopped while writing: No space left on device\n")
    for command in ("check", "show", "report"):
        one_line(netbed(command, str(broken)), f"{broken} is an incomplete run folder (the run stopped while "
                                               "writing: No space left on device)")
    # a folder of run folders: the incomplete one is left out (here nothing else is there)
    one_line(netbed("report", str(runs)), "is neither a netbed run folder nor a folder of run folders")
