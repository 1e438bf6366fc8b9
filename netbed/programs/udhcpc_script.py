#!/usr/bin/env python3
"""The script busybox's DHCP client (udhcpc) runs at each event: apply the lease to the interface.

udhcpc calls it with one argument (deconfig, bound, renew, leasefail, nak) and the lease in its
environment (interface, ip, mask or subnet, serverid, lease). Debian's default script would also
rewrite /etc/resolv.conf — shared with the whole machine, as Mininet hosts share the root's files —
so netbed uses this one: it only sets the address in the host's own network namespace and prints
what it did (one line "netbed-lease IP/PREFIX SERVER SECONDS") for the run's record.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    event = argv[1] if len(argv) > 1 else ""
    env = os.environ
    interface = env.get("interface", "")
    if event == "deconfig":
        subprocess.run(["ip", "-4", "addr", "flush", "dev", interface], check=False)
        subprocess.run(["ip", "link", "set", interface, "up"], check=False)
    elif event in ("bound", "renew"):
        prefix = env.get("mask") or str(ipaddress.IPv4Network(f"0.0.0.0/{env['subnet']}").prefixlen)
        address = f"{env['ip']}/{prefix}"
        subprocess.run(["ip", "addr", "replace", address, "dev", interface], check=True)
        print(f"netbed-lease {address} {env.get('serverid', '-')} {env.get('lease', '-')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
