"""`netbed cluster up N | down | status`: N emulated servers on this machine, for Cluster Edition.

Each emulated server is what Mininet Cluster Edition expects of a real machine, as far as one machine
can give it: a network namespace of its own (its own interfaces, routes and tunnel devices), its own
UTS namespace (hostname), PID namespace (its processes, with sshd as their init: when sshd dies,
everything the server ran dies with it) and mount namespace (its own /proc), running its own sshd
with its own host key. A bridge in the root namespace joins them, with MTU 1600 so that a VXLAN
tunnel (50 bytes of headers) still carries 1,500-byte frames, as on a LAN with jumbo frames.

Everything it creates is named with PREFIX and recorded in STATE_DIR, so `down` removes exactly
that and nothing else. The addresses are in SUBNET, on this machine only.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from netbed.errors import NetbedError

STATE_DIR = Path(os.environ.get("NETBED_CLUSTER_DIR", "/run/netbed-cluster"))
PREFIX = "nbc"  # every namespace and interface this module makes starts with it
BRIDGE = f"{PREFIX}-br0"
SUBNET = ipaddress.IPv4Network(os.environ.get("NETBED_CLUSTER_SUBNET", "10.251.0.0/24"))
UNDERLAY_MTU = 1600  # room for VXLAN's 50 bytes on top of 1,500-byte frames
MAX_SERVERS = 32
SSH_WAIT = 10.0  # seconds an sshd may take to listen
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    pid: int  # `ip netns exec … unshare …`: its child, sshd, is init of the server's PID namespace

    def to_json(self) -> dict:
        return {"name": self.name, "address": self.address, "pid": self.pid}


def key_path() -> Path:
    """The client key every emulated server trusts (what `--cluster` logs in with)."""
    return STATE_DIR / "id_ed25519"


def known_hosts_path() -> Path:
    return STATE_DIR / "known_hosts"


def servers() -> list[Server]:
    path = STATE_DIR / "servers.json"
    if not path.exists():
        return []
    return [Server(**s) for s in json.loads(path.read_text())]


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise NetbedError(f"{' '.join(argv)}: {(out.stderr or out.stdout).strip()}")
    return out


def _sshd_config(name: str, address: str, folder: Path) -> str:
    return "\n".join([
        f"ListenAddress {address}", "Port 22",
        f"HostKey {folder / 'ssh_host_ed25519_key'}",
        f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {STATE_DIR / 'authorized_keys'}",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "UseDNS no", "PrintMotd no", "PrintLastLog no",
        # Cluster Edition keeps one session per node (its shell) over one shared connection
        "MaxSessions 10000", "MaxStartups 1000:30:2000",
        "AcceptEnv LANG LC_* NETBED_RUN", "Subsystem sftp internal-sftp", "",
    ])


def up(count: int) -> list[Server]:
    """Start `count` emulated servers; raise (leaving nothing) if any step fails."""
    if not 1 <= count <= MAX_SERVERS:
        raise NetbedError(f"netbed cluster up: N must be 1..{MAX_SERVERS}, not {count}")
    if os.geteuid() != 0:
        raise NetbedError("netbed cluster up needs root: run it with sudo")
    if shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        raise NetbedError("sshd is missing: run `sudo make setup` (Debian package openssh-server)")
    if servers():
        raise NetbedError("an emulated cluster is up already: `netbed cluster down` first")
    # a namespace goes when its last process has exited, which can be a moment after `ip netns del`:
    # delete the root-side veths now rather than leave them to that moment
    for line in _run(["ip", "-o", "link"], check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"{PREFIX}-v"):
            _run(["ip", "link", "del", name], check=False)
    if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        raise NetbedError(f"{BRIDGE} exists but no cluster is recorded: `netbed cluster down` removes it")
    try:
        return _up(count)
    except BaseException:
        down()
        raise


def _up(count: int) -> list[Server]:
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    if not key_path().exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netbed-cluster", "-f", str(key_path())])
    shutil.copy(f"{key_path()}.pub", STATE_DIR / "authorized_keys")
    gateway = next(SUBNET.hosts())
    _run(["ip", "link", "add", BRIDGE, "mtu", str(UNDERLAY_MTU), "type", "bridge"])
    _run(["ip", "addr", "add", f"{gateway}/{SUBNET.prefixlen}", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])
    made: list[Server] = []
    known = []
    addresses = list(SUBNET.hosts())[1:]
    for k in range(1, count + 1):
        name, address = f"{PREFIX}-s{k}", str(addresses[k - 1])
        folder = STATE_DIR / name
        folder.mkdir(mode=0o700, exist_ok=True)
        hostkey = folder / "ssh_host_ed25519_key"
        if not hostkey.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(hostkey)])
        known.append(f"{address} " + Path(f"{hostkey}.pub").read_text().split(" ", 2)[0] + " "
                     + Path(f"{hostkey}.pub").read_text().split()[1])
        # its own /etc/hosts (bound in its mount namespace): sudo resolves the server's hostname
        # without a DNS timeout
        (folder / "hosts").write_text(f"127.0.0.1 localhost\n{address} {name}\n")
        (folder / "sshd_config").write_text(_sshd_config(name, address, folder))
        _run(["ip", "netns", "add", name])
        veth = f"{PREFIX}-v{k}"
        _run(["ip", "link", "add", veth, "mtu", str(UNDERLAY_MTU), "type", "veth", "peer", "name", "eth0",
              "mtu", str(UNDERLAY_MTU), "netns", name])
        _run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
        inside = ["ip", "netns", "exec", name]
        _run(inside + ["ip", "link", "set", "lo", "up"])
        _run(inside + ["ip", "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0"])
        _run(inside + ["ip", "link", "set", "eth0", "up"])
        _run(inside + ["ip", "route", "add", "default", "via", str(gateway)])
        # own UTS, PID and mount namespaces; sshd -D is the PID namespace's init (--kill-child: if
        # this process is killed, so is sshd, and with it every process the server runs)
        proc = subprocess.Popen(
            inside + ["unshare", "--uts", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc",
                      "sh", "-c", f'hostname "$1" && mount --bind "$2" /etc/hosts && exec {SSHD} -D -e -f "$3"',
                      "sh", name, str(folder / "hosts"), str(folder / "sshd_config")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "w"),
            start_new_session=True, close_fds=True)
        server = Server(name, address, proc.pid)
        made.append(server)
        _save(made)
    known_hosts_path().write_text("\n".join(known) + "\n")
    for server in made:
        _wait_sshd(server)
    return made


def _save(made: list[Server]) -> None:
    (STATE_DIR / "servers.json").write_text(json.dumps([s.to_json() for s in made], indent=1))


def _wait_sshd(server: Server) -> None:
    deadline = time.monotonic() + SSH_WAIT
    while time.monotonic() < deadline:
        out = _run(["ip", "netns", "exec", server.name, "ss", "-ltnH", "sport = :22"], check=False)
        if out.stdout.strip():
            return
        time.sleep(0.05)
    log = (STATE_DIR / server.name / "sshd.log").read_text().strip()
    raise NetbedError(f"{server.name}: sshd does not listen after {SSH_WAIT:g} s: {log[-200:]}")


def down() -> list[str]:
    """Stop every emulated server and remove the bridge: only what `up` recorded or named."""
    removed = []
    for server in servers():
        _stop(server.pid)
        removed.append(server.name)
    for name in _run(["ip", "netns", "list"], check=False).stdout.split("\n"):
        name = name.split(" ")[0]
        if name.startswith(f"{PREFIX}-s"):
            _run(["ip", "netns", "del", name], check=False)
            if name not in removed:
                removed.append(name)
    # a namespace goes when its last process has exited, which can be a moment after `ip netns del`:
    # delete the root-side veths now rather than leave them to that moment
    for line in _run(["ip", "-o", "link"], check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"{PREFIX}-v"):
            _run(["ip", "link", "del", name], check=False)
    if _run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        _run(["ip", "link", "del", BRIDGE], check=False)
    (STATE_DIR / "servers.json").unlink(missing_ok=True)
    return removed


def _stop(pid: int) -> None:
    """Kill the server's unshare (its sshd, init of the server's PID namespace, dies with it)."""
    if not _is_server_process(pid):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(200):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return
        time.sleep(0.01)


def _is_server_process(pid: int) -> bool:
    """pids get reused: only kill a process that is still one of ours (unshare of an nbc server)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"unshare" in cmdline[0] and any(a.startswith(f"{PREFIX}-s".encode()) for a in cmdline)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def status() -> list[tuple[Server, bool]]:
    """Each recorded server and whether its sshd still runs."""
    return [(s, _is_server_process(s.pid) and not _zombie(s.pid)) for s in servers()]


def server_list(found: list[Server]) -> str:
    """The comma-separated list `--cluster` takes."""
    return ",".join(s.address for s in found)


def cluster_spec(servers_arg: str, placement: str = "block"):
    """The ClusterSpec `--cluster SERVERS` means: the emulated cluster's key and known hosts for its
    servers, the user's own ssh setup (and user name) for real machines."""
    from mininet.examples.cluster import findUser

    from netbed.network.cluster import ClusterSpec

    names = [s.strip() for s in servers_arg.split(",") if s.strip()]
    emulated = {s.address for s in servers()}
    if any(n in emulated for n in names):  # the emulated cluster's key; a stranger among them fails in one line
        options = ["-i", str(key_path()), "-o", "IdentitiesOnly=yes",
                   "-o", f"UserKnownHostsFile={known_hosts_path()}", "-o", "StrictHostKeyChecking=yes"]
        return ClusterSpec(names, placement, user="root", ssh_options=options)
    return ClusterSpec(names, placement, user=os.environ.get("NETBED_CLUSTER_USER") or findUser())
