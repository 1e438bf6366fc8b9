"""Where users run netbed besides their own shell — the Vagrant lab, the CI container, the GitHub
workflow — and the one install step and CI entry they all go through. Everything here is checked
without building a VM, an image or a network: the install step runs against stand-in commands."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "scripts" / "install.sh"
VAGRANTFILE = REPO / "Vagrantfile"
DOCKERFILE = REPO / "Dockerfile"
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def _need(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed: {why}")
    return path


# -- Vagrant lab ----------------------------------------------------------------------------------

# Evaluates the Vagrantfile against a stand-in for Vagrant that records every setting and call, so
# the test reads the configuration Vagrant would see, not the text.
_VAGRANT_RECORDER = r"""
require "json"
LOG = []
class Recorder
  def initialize(path) @path = path end
  def method_missing(name, *args, **kw, &block)
    name = name.to_s
    if name.end_with?("=")
      LOG << { "path" => (@path + [name.chomp("=")]).join("."), "value" => args[0] }
      return args[0]
    end
    path = @path + [name]
    LOG << { "path" => path.join("."), "args" => args, "kw" => kw } unless args.empty? && kw.empty?
    child = Recorder.new(path + args.first(1).map(&:to_s))
    block.call(child, Recorder.new(["override"] + args.first(1).map(&:to_s))) if block
    child
  end
  def respond_to_missing?(*) true end
end
module Vagrant
  def self.configure(_version) yield Recorder.new([]) end
end
load ARGV[0]
puts JSON.generate(LOG)
"""


def _evaluate_vagrantfile(**netbed_env: str) -> dict:
    ruby = _need("ruby", "cannot evaluate the Vagrantfile (apt-get install ruby)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETBED_")}  # the defaults
    env.update(netbed_env)
    out = subprocess.run([ruby, "-e", _VAGRANT_RECORDER, str(VAGRANTFILE)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    log = json.loads(out.stdout)
    return {
        "settings": {e["path"]: e["value"] for e in log if "value" in e},
        "calls": [e for e in log if "args" in e],
    }


@pytest.fixture(scope="module")
def vagrant_config() -> dict:
    return _evaluate_vagrantfile()


def _calls(config: dict, path: str) -> list[dict]:
    return [c for c in config["calls"] if c["path"] == path]


def test_vagrantfile_is_valid_ruby():
    ruby = _need("ruby", "cannot check the Vagrantfile's syntax (apt-get install ruby)")
    out = subprocess.run([ruby, "-c", str(VAGRANTFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Syntax OK" in out.stdout, out.stderr


def test_vagrant_lab_is_an_ubuntu_lts_box():
    box = re.search(r'config\.vm\.box = .*"([^"\n]+)"', VAGRANTFILE.read_text())
    assert box, "config.vm.box is not set"
    release = re.search(r"ubuntu-?(\d\d)\.?04", box.group(1))
    assert release and int(release.group(1)) % 2 == 0, f"{box.group(1)} is not an Ubuntu LTS box"


def test_vagrant_lab_gives_both_providers_two_cpus_and_enough_memory(vagrant_config):
    settings = vagrant_config["settings"]
    assert settings["vm.box"].startswith(("bento/ubuntu-", "cloud-image/ubuntu-"))
    for provider in ("virtualbox", "libvirt"):
        assert settings[f"vm.provider.{provider}.cpus"] >= 2
        assert settings[f"vm.provider.{provider}.memory"] >= 2048


def test_vagrant_lab_provisions_with_the_install_script_and_its_ovs_and_netem_extras(vagrant_config):
    (provision,) = _calls(vagrant_config, "vm.provision")
    assert provision["kw"]["type"] == "shell"
    assert "bash /vagrant/scripts/install.sh" in provision["kw"]["inline"]
    assert provision["kw"]["env"] == {"NETBED_WITH_OVS": "1", "NETBED_WITH_NETEM": "1"}
    assert INSTALL.is_file()
    script = INSTALL.read_text()
    assert "NETBED_WITH_OVS" in script and "NETBED_WITH_NETEM" in script


def test_vagrant_lab_runs_without_kvm_when_asked_and_keeps_libvirts_cpu_default(vagrant_config):
    """Where KVM is missing the libvirt provider takes QEMU's software emulation on request; by default it
    sets neither driver nor CPU mode, so libvirt's own defaults (KVM, host-model: SSE4.2) hold."""
    defaults = vagrant_config["settings"]
    assert "vm.provider.libvirt.driver" not in defaults and "vm.provider.libvirt.cpu_mode" not in defaults
    settings = _evaluate_vagrantfile(NETBED_VM_DRIVER="qemu", NETBED_VM_CPU_MODE="host-passthrough")["settings"]
    assert settings["vm.provider.libvirt.driver"] == "qemu"
    assert settings["vm.provider.libvirt.cpu_mode"] == "host-passthrough"


def test_vagrant_lab_mounts_the_repository_at_vagrant_without_the_hosts_venv(vagrant_config):
    (shared,) = _calls(vagrant_config, "vm.synced_folder")
    assert shared["args"] == [".", "/vagrant"]
    (copied,) = _calls(vagrant_config, "override.libvirt.vm.synced_folder")
    assert copied["args"] == [".", "/vagrant"]
    assert ".venv/" in copied["kw"]["rsync__exclude"]


# -- the CI container -----------------------------------------------------------------------------

def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        word, _, rest = (pending + line).strip().partition(" ")
        instructions.append((word.upper(), " ".join(rest.split())))
        pending = ""
    return instructions


def _stages() -> dict[str, list[tuple[str, str]]]:
    """The Dockerfile's stages by name (in order), each with its instructions after FROM."""
    stages: dict[str, list[tuple[str, str]]] = {}
    for word, args in _dockerfile():
        if word == "FROM":
            base, _, name = args.partition(" AS ")
            stages[name or base] = [("FROM", base)]
        elif stages:
            stages[list(stages)[-1]].append((word, args))
    return stages


def test_container_recipe_starts_from_debian_or_an_ubuntu_lts():
    stages = _stages()
    first = next(iter(stages.values()))[0][1]
    assert re.fullmatch(r"debian:(bookworm|12)(-slim)?|ubuntu:2[02468]\.04", first), first
    for name, steps in list(stages.items())[1:]:
        assert steps[0][1] in stages, f"stage {name} builds on {steps[0][1]}, not on an earlier stage"


def test_the_default_ci_image_leaves_chromium_to_a_browser_stage():
    stages = _stages()
    default = list(stages)[-1]
    chain = [default]
    while stages[chain[-1]][0][1] in stages:
        chain.append(stages[chain[-1]][0][1])
    envs = " ".join(args for name in chain for word, args in stages[name] if word == "ENV")
    assert "NETBED_WITH_BROWSER=0" in envs and "NETBED_WITH_BROWSER=1" not in envs
    assert "browser" in stages
    assert ("ENV", "NETBED_WITH_BROWSER=1") in stages["browser"]
    assert any(word == "CMD" for word, _ in stages["browser"])


def test_container_installs_only_through_the_install_script():
    steps = _dockerfile()
    runs = [args for word, args in steps if word == "RUN"]
    assert runs and all("scripts/install.sh" in run for run in runs), runs
    assert not any(re.search(r"apt-get install|pip install", run) for run in runs), runs
    assert "--system-only" not in runs[-1], "the last install step must install the project too"
    words = [word for word, _ in steps]
    assert "WORKDIR" in words and words.index("WORKDIR") < words.index("COPY")
    assert ("COPY", ". .") in steps


def test_container_runs_make_test_by_default():
    word, args = _dockerfile()[-1]
    assert word == "CMD" and json.loads(args) == ["make", "test"]


def test_container_build_leaves_the_hosts_venv_and_runs_out():
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()}
    assert {".venv", "runs"} <= ignored


# -- the GitHub workflow --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: cannot parse the workflow")
    return yaml.safe_load(WORKFLOW.read_text())


def _run_lines(job: dict) -> list[str]:
    return [" ".join(step["run"].split()) for step in job["steps"] if "run" in step]


def test_ci_workflow_runs_make_test_as_root_on_the_runner(workflow):
    jobs = [job for job in workflow["jobs"].values()
            if any(re.fullmatch(r"sudo (env (\w+=\S+ )+)?make test", run) for run in _run_lines(job))]
    assert len(jobs) == 1
    assert jobs[0]["runs-on"].startswith("ubuntu-")


def test_ci_workflow_runs_make_test_in_the_privileged_container_it_builds(workflow):
    for job in workflow["jobs"].values():
        builds = [shlex.split(run) for run in _run_lines(job) if run.startswith("docker build")]
        runs = [shlex.split(run) for run in _run_lines(job) if run.startswith("docker run")]
        if builds and runs:
            break
    else:
        pytest.fail("no job both builds the Dockerfile and runs it")
    (build,), (run,) = builds, runs
    image = build[build.index("-t") + 1]
    assert "--privileged" in run and "--rm" in run
    assert run[-3:] == [image, "make", "test"]


def test_ci_workflow_passes_actionlint():
    actionlint = _need("actionlint", "cannot lint the workflow")
    out = subprocess.run([actionlint, str(WORKFLOW)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# -- the install step and the CI entry ------------------------------------------------------------

def test_install_script_is_valid_bash():
    out = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_install_script_and_ci_entry_pass_shellcheck():
    shellcheck = _need("shellcheck", "cannot lint the shell scripts")
    out = subprocess.run([shellcheck, str(INSTALL), str(REPO / ".ci" / "run")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_install_script_rejects_an_unknown_option_in_one_line():
    out = subprocess.run(["bash", str(INSTALL), "--sytem-only"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "unknown option '--sytem-only'" in out.stderr


def test_ci_entry_runs_make_test():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert any(re.fullmatch(r"(exec )?make test", line) for line in lines if not line.startswith("#"))


@pytest.mark.parametrize("pytest_exit, make_fails", [(0, False), (1, True), (5, True)])
def test_make_test_fails_when_pytest_fails_or_collects_nothing(pytest_exit, make_fails):
    make = _need("make", "cannot run the Makefile")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    # -o setup: the install step is not what is tested here; pytest is replaced by its exit code
    out = subprocess.run([make, "-s", "-o", "setup", "test", f"PYTEST=sh -c 'exit {pytest_exit}' --"],
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert (out.returncode != 0) == make_fails, out.stderr
    if pytest_exit == 5:
        assert "collected no tests" in out.stderr


# The install step against stand-in commands: what it would install, on which machine, and that a
# second run installs nothing. Only /usr/bin/python3 is real (the script names it by path).
_APT_GET = r"""#!/usr/bin/python3
import os, sys
state, bin_dir = os.environ["STUB_STATE"], os.environ["STUB_BIN"]
with open(os.path.join(state, "apt-get.log"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
provides = {"openvswitch-switch": "ovs-vsctl", "kmod": "modprobe"}
if "install" in sys.argv:
    for package in sys.argv[sys.argv.index("install") + 1:]:
        if package.startswith("linux-modules-extra-"):
            open(os.path.join(state, "netem"), "w").close()
        if package in provides:
            os.symlink(os.path.join(state, provides[package]), os.path.join(bin_dir, provides[package]))
"""
_STUBS = {
    "id": 'echo 0',
    "uname": 'echo 6.8.0-31-generic',
    "apt-cache": 'for p in $STUB_ARCHIVE; do [ "$p" = "$2" ] && exit 0; done; exit 100',
    "modprobe": 'echo "$*" >> "$STUB_STATE/modprobe.log"; [ -e "$STUB_STATE/netem" ]',
    "ovs-vsctl": 'exit 0',
}


CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def browser_packages() -> list[str]:
    """What the install step adds for the browser besides chromium: the CJK font, unless this machine has it."""
    return [] if CJK_FONT.exists() else ["fonts-wqy-microhei"]


def _system_python_is_ready() -> bool:
    return subprocess.run(["/usr/bin/python3", "-c", "import mininet, venv, ensurepip"],
                          capture_output=True).returncode == 0


class StubMachine:
    """A PATH of stand-ins: every command install.sh looks for is present unless listed as absent."""

    def __init__(self, root: Path, absent: tuple[str, ...] = (), netem_in_kernel: bool = False,
                 archive: tuple[str, ...] = ()) -> None:
        self.bin, self.state = root / "bin", root / "state"
        self.bin.mkdir()
        self.state.mkdir()
        self.archive = archive
        wanted = re.findall(r"\[([\w-]+)\]=", INSTALL.read_text())
        for name in {*wanted, *_STUBS, "sort", "dirname"} - set(absent):
            real = shutil.which(name) if name in ("sort", "dirname") else None
            if real:
                (self.bin / name).symlink_to(real)
            else:
                self._stub(self.bin / name, name)
        for name in absent:  # what a package would bring, for the apt-get stand-in to put on PATH
            self._stub(self.state / name, name)
        (self.bin / "apt-get").write_text(_APT_GET)
        (self.bin / "apt-get").chmod(0o755)
        if netem_in_kernel:
            (self.state / "netem").touch()

    @staticmethod
    def _stub(path: Path, name: str) -> None:
        path.write_text("#!/bin/sh\n" + _STUBS.get(name, "exit 0") + "\n")
        path.chmod(0o755)

    def install(self, **env: str) -> subprocess.CompletedProcess:
        # The browser's font is looked for as a file of the real machine, which no stand-in can hide:
        # tests that are not about the browser leave it out (as the lean CI image does).
        full_env = {"PATH": str(self.bin), "STUB_STATE": str(self.state), "STUB_BIN": str(self.bin),
                    "STUB_ARCHIVE": " ".join(self.archive), "NETBED_WITH_BROWSER": "0", **env}
        return subprocess.run([shutil.which("bash"), str(INSTALL), "--system-only"], capture_output=True,
                              text=True, env=full_env, timeout=60)

    def apt(self, verb: str) -> list[str]:
        log = self.state / "apt-get.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line for line in lines if verb in line.split()]

    def installed(self) -> list[str]:
        return [word for line in self.apt("install") for word in line.split() if not word.startswith("-")
                and word != "install"]


@pytest.fixture
def machine(tmp_path):
    if not _system_python_is_ready():
        pytest.skip("/usr/bin/python3 lacks Debian's mininet or python3-venv: run `sudo make setup` first")
    return lambda **kw: StubMachine(tmp_path, **kw)


def test_install_on_a_ready_machine_installs_nothing_and_skips_the_extras(machine):
    m = machine()
    out = m.install()
    assert out.returncode == 0, out.stderr
    assert m.apt("update") == [] and m.apt("install") == []
    assert "system packages ready" in out.stdout


def test_install_installs_what_is_missing_with_one_apt_update(machine):
    m = machine(absent=("tcpdump", "make"))
    out = m.install()
    assert out.returncode == 0, out.stderr
    assert sorted(m.installed()) == ["make", "tcpdump"]
    assert len(m.apt("update")) == 1


def test_install_with_ovs_installs_open_vswitch_once(machine):
    m = machine(absent=("ovs-vsctl",))
    first = m.install(NETBED_WITH_OVS="1")
    assert first.returncode == 0, first.stderr
    assert m.installed() == ["openvswitch-switch"]
    again = m.install(NETBED_WITH_OVS="1")
    assert again.returncode == 0 and m.installed() == ["openvswitch-switch"] and "warning" not in again.stderr


def test_install_with_netem_adds_the_kernels_extra_modules_and_loads_netem(machine):
    m = machine(archive=("linux-modules-extra-6.8.0-31-generic",))
    out = m.install(NETBED_WITH_NETEM="1")
    assert out.returncode == 0, out.stderr
    assert m.installed() == ["linux-modules-extra-6.8.0-31-generic"]
    assert "-q sch_netem" in (m.state / "modprobe.log").read_text().splitlines()
    assert "warning" not in out.stderr
    again = m.install(NETBED_WITH_NETEM="1")
    assert again.returncode == 0 and len(m.apt("update")) == 1, "a second run must not touch apt"


def test_install_with_netem_on_a_kernel_that_has_it_installs_nothing(machine):
    m = machine(netem_in_kernel=True)
    out = m.install(NETBED_WITH_NETEM="1")
    assert out.returncode == 0, out.stderr
    assert m.apt("update") == [] and m.apt("install") == []


def test_install_with_netem_without_modprobe_installs_kmod_first(machine):
    m = machine(absent=("modprobe",), archive=("linux-modules-extra-6.8.0-31-generic",))
    out = m.install(NETBED_WITH_NETEM="1")
    assert out.returncode == 0, out.stderr
    assert m.installed() == ["kmod", "linux-modules-extra-6.8.0-31-generic"]
    assert len(m.apt("update")) == 1


def test_install_with_netem_the_archive_lacks_warns_and_carries_on(machine):
    m = machine()
    out = m.install(NETBED_WITH_NETEM="1")
    assert out.returncode == 0, out.stderr
    assert m.apt("install") == []
    assert "link delay and jitter will not work" in out.stderr
    assert "system packages ready" in out.stdout


def test_install_without_netem_asked_ignores_a_kernel_without_it(machine):
    m = machine()
    out = m.install()
    assert out.returncode == 0 and m.apt("update") == [] and not (m.state / "modprobe.log").exists()


def test_install_without_the_browser_leaves_chromium_and_its_font_out(machine):
    m = machine(absent=("chromium",), archive=("chromium",))
    out = m.install(NETBED_WITH_BROWSER="0")
    assert out.returncode == 0, out.stderr
    assert m.installed() == []
    out = m.install(NETBED_WITH_BROWSER="1")  # `make setup`'s default: the browser test's packages come
    assert out.returncode == 0, out.stderr
    assert sorted(m.installed()) == sorted(["chromium", *browser_packages()])
