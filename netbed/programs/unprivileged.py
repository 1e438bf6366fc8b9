#!/usr/bin/env python3
"""Run peer.py as an unprivileged user: drop root's identity and capabilities, then play the script.

    unprivileged.py USER -- PEER-ARGUMENTS...     e.g. unprivileged.py nobody -- bind 0.0.0.0 80

netbed starts programs in hosts as root. The lecture's "0~1024 … 操作系统默认使用的端口号" is about
what an ordinary program may do, so this wrapper becomes USER (its uid and gid, no supplementary
groups; setuid from root clears every capability) before peer.py runs. It prints one JSON line with
the identity the kernel then reports (/proc/self/status), before peer.py's own report line.
"""
from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402 (found next to this file, loaded while still root)


def identity() -> dict:
    """Uid, gid and effective capabilities as the kernel reports them for this process."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"identity": {"uid": status["Uid"].split(), "gid": status["Gid"].split(),
                         "groups": status["Groups"].split(), "cap_eff": status["CapEff"].strip()}}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: unprivileged.py USER -- PEER-ARGUMENTS...", file=sys.stderr)
        return 2
    try:
        user = pwd.getpwnam(argv[0])
    except KeyError:
        print(f"unprivileged.py: no user {argv[0]!r}", file=sys.stderr)
        return 2
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    print(json.dumps(identity()), flush=True)
    return peer.main(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
