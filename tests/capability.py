"""Skip a test only for want of a kernel capability, and let a run forbid even that.

The tests of netem (delay, jitter, netem loss) and of Open vSwitch cannot run on a kernel without
sch_netem or openvswitch (this project's CI kernel has neither). They skip for that reason alone,
named precisely. In the Vagrant VM, whose kernel has both, NETBED_REQUIRE_NETEM_OVS=1 turns such a
skip into a failure: "no test skipped for want of OVS or netem" is then enforced, not hoped for.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping

import pytest

from netbed.preflight import kernel_has_module

REQUIRE_ENV = "NETBED_REQUIRE_NETEM_OVS"
NETEM, OVS = "sch_netem", "openvswitch"


def missing(module: str, environ: Mapping[str, str] | None = None,
            has: Callable[[str], bool] = kernel_has_module,
            which: Callable[[str], str | None] = shutil.which) -> tuple[str, str] | None:
    """None when the kernel has `module` (and, for Open vSwitch, its programs); else ("skip" or "fail", why).

    Open vSwitch's programs are opt-in (`NETBED_WITH_OVS=1 make setup`): a machine whose kernel ships
    the module (most Debian and Ubuntu kernels) but that did not opt in skips, naming the opt-in.
    """
    if has(module):
        if module != OVS or which("ovs-vsctl") is not None:
            return None
        reason = "Open vSwitch is not installed (it is opt-in: sudo NETBED_WITH_OVS=1 make setup)"
    else:
        reason = f"kernel has no {module} module"
    env = os.environ if environ is None else environ
    if env.get(REQUIRE_ENV, "") == "1":
        return "fail", f"{reason}, and {REQUIRE_ENV}=1 requires it"
    return "skip", reason


def require_kernel(module: str) -> None:
    """Inside a test: skip (or fail, under NETBED_REQUIRE_NETEM_OVS=1) unless the kernel has `module`."""
    found = missing(module)
    if found is None:
        return
    action, reason = found
    if action == "fail":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
