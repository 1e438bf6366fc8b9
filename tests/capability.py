"""Skip a test only for want of a kernel capability, and let a run forbid even that.

The tests of netem (delay, jitter, netem loss) and of Open vSwitch cannot run on a kernel without
sch_netem or openvswitch (this project's CI kernel has neither). They skip for that reason alone,
named precisely. In the Vagrant VM, whose kernel has both, NETBED_REQUIRE_NETEM_OVS=1 turns such a
skip into a failure: "no test skipped for want of OVS or netem" is then enforced, not hoped for.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pytest

from netbed.preflight import kernel_has_module

REQUIRE_ENV = "NETBED_REQUIRE_NETEM_OVS"
NETEM, OVS = "sch_netem", "openvswitch"


def missing(module: str, environ: Mapping[str, str] | None = None,
            has: Callable[[str], bool] = kernel_has_module) -> tuple[str, str] | None:
    """None when the kernel has `module`; else ("skip" or "fail", the reason)."""
    if has(module):
        return None
    env = os.environ if environ is None else environ
    reason = f"kernel has no {module} module"
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
