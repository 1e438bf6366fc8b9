"""Can this root build emulated networks? A container started without `--privileged` says yes to
`id -u` and no to everything netbed does.

Inside such a container uid 0 lacks CAP_NET_ADMIN and CAP_SYS_ADMIN, and Docker's seccomp profile
refuses `unshare(CLONE_NEWNET)`. Nothing fails cleanly: Mininet's `mnexec -n` prints "unshare:
Operation not permitted" and Mininet waits forever for the node's shell. So the check is made up
front, from the kernel's own word: the effective capability set, whether `/proc/sys` can be written
(Docker and podman mount it read-only without `--privileged`, even when every capability is added,
and every node's sysctls are written there), then one real (and empty) network namespace, which
also catches a seccomp or LSM refusal that the capability bits cannot show.
Call it after `preflight.require_root()`: for an ordinary user the root message is the useful one.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from netbed.errors import NetbedError

# capability -> bit in /proc/<pid>/status CapEff (linux/capability.h)
NEEDED = {
    "CAP_NET_ADMIN": 12,  # veth pairs, bridges, addresses, routes, qdiscs
    "CAP_NET_RAW": 13,  # tcpdump
    "CAP_SYS_ADMIN": 21,  # network and mount namespaces, bpftrace
    "CAP_SETGID": 6,  # tcpdump -Z root still calls setgroups(), refused without it
}
HINT = "a container started without --privileged? Start it with `docker run --privileged ...`"
PROC_SYS = "/proc/sys"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def effective_capabilities(status: str) -> int:
    """The CapEff mask from the text of /proc/<pid>/status."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split(":", 1)[1].strip(), 16)
    raise ValueError("no CapEff line in the process status")


def missing_capabilities(status: str) -> list[str]:
    mask = effective_capabilities(status)
    return [name for name, bit in NEEDED.items() if not mask >> bit & 1]


def _die_with_parent() -> None:
    """In the probe's child, before exec: SIGKILL it when netbed dies. The check runs before netbed
    handles SIGTERM (nothing is created yet), so a SIGTERM then ends netbed at once; without this
    the probe, which carries the run's environment, would outlive it (seen on a loaded machine)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _leave(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def try_network_namespace() -> str | None:
    """Create an empty network namespace and leave it at once; None if that worked, else why not."""
    if shutil.which("unshare") is None:
        return None  # util-linux is everywhere netbed installs; without it there is nothing to try
    # SIGTERM/SIGHUP while probing: leave as an exception, so subprocess.run kills and reaps the probe
    # before netbed exits (SIGINT does so already); then SIGKILL is the only way out, see _die_with_parent
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _leave) for sig in (signal.SIGTERM, signal.SIGHUP)} if main else {}
    try:
        # the interpreter itself as the command: it is there even when PATH is not
        proc = subprocess.run(["unshare", "--net", sys.executable, "-c", ""], capture_output=True, text=True,
                              timeout=10, preexec_fn=_die_with_parent)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"unshare exited with {proc.returncode}"


def proc_sys_read_only(path: str = PROC_SYS) -> bool:
    """Is the sysctl tree mounted read-only (ST_RDONLY), as a container without --privileged has it?"""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return True  # no /proc/sys at all: nothing netbed sets could be set


def privilege_problem(status: str | None = None,
                      probe: Callable[[], str | None] = try_network_namespace,
                      sysctls_read_only: Callable[[], bool] = proc_sys_read_only) -> str | None:
    """One line saying why this root cannot emulate, or None when it can."""
    if status is None:
        status = Path("/proc/self/status").read_text()
    missing = missing_capabilities(status)
    if missing:
        return f"root here lacks {', '.join(missing)}, which building emulated networks needs — {HINT}"
    if sysctls_read_only():
        return (f"{PROC_SYS} is read-only here, and every emulated node's sysctls (IPv6, forwarding) are "
                f"written there — {HINT}")
    refused = probe()
    if refused:
        return f"root here cannot create a network namespace ({refused}) — {HINT}"
    return None


def require_privileges() -> None:
    problem = privilege_problem()
    if problem:
        raise NetbedError(problem)
