"""The root namespace's network state as the suite's leftover checks compare it: state, not text.

`ip addr` and `iptables-save` print values that change by themselves while nothing is left behind:
an address from SLAAC or DHCP counts its lifetimes down (`valid_lft 86399sec`) and turns
`deprecated` when its preferred lifetime ends, a route learned from a router advertisement counts
down its `expires`, and a chain's packet and byte counters (`:INPUT ACCEPT [12:3456]`) grow with
every packet the machine sees. A check that compared the text failed on any CI runner whose network
is configured that way. So each snapshot keeps what a run could leave behind — which namespaces,
links, addresses (interface, family, address, prefix, scope), routes and rules exist — and nothing
that moves with time or traffic.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

# what an address *is*; lifetimes, flags (dynamic, deprecated, tentative) and labels are how it fares
ADDRESS_IDENTITY = ("family", "local", "prefixlen", "scope")
# route fields that count down or are kernel bookkeeping, not the route
ROUTE_VOLATILE = {"expires", "cache", "metrics"}
_COUNTERS = re.compile(r"\[\d+:\d+\]")

Runner = Callable[..., str]


def _out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def addresses(ip_json: str) -> list[str]:
    """`ip -j addr` as sorted "ifname family local/prefixlen scope" lines."""
    found = []
    for link in json.loads(ip_json or "[]"):
        for info in link.get("addr_info", []):
            family, local, prefixlen, scope = (info.get(k) for k in ADDRESS_IDENTITY)
            found.append(f"{link['ifname']} {family} {local}/{prefixlen} {scope}")
    return sorted(found)


def routes(ip_json: str) -> list[str]:
    """`ip -j route` as sorted JSON lines without the fields that count down."""
    kept = [{k: v for k, v in route.items() if k not in ROUTE_VOLATILE} for route in json.loads(ip_json or "[]")]
    return sorted(json.dumps(route, sort_keys=True) for route in kept)


def firewall(save_text: str) -> list[str]:
    """`iptables-save` without its dated comments and with every [packets:bytes] counter blanked."""
    return [_COUNTERS.sub("[-:-]", line) for line in save_text.splitlines() if line and not line.startswith("#")]


def network_state(run: Runner = _out, with_firewall: bool = True) -> dict:
    """Namespaces, links, addresses, routes (both families) and firewall rules, as comparable state."""
    return {
        "netns": sorted(run("ip", "netns", "list").splitlines()),
        "links": sorted(line.split(":")[1].strip() for line in run("ip", "-o", "link").splitlines()),
        "addresses": addresses(run("ip", "-j", "addr")),
        "routes": routes(run("ip", "-j", "-4", "route")) + routes(run("ip", "-j", "-6", "route")),
        "iptables": firewall(run("iptables-save")) if with_firewall else [],
    }


def differences(before: dict, after: dict) -> dict:
    """What changed between two snapshots, per key: what is gone and what is new (lists), or both values."""
    changed = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        gone = [x for x in old if x not in new] if isinstance(old, list) and isinstance(new, list) else []
        added = [x for x in new if x not in old] if isinstance(old, list) and isinstance(new, list) else []
        if gone or added:
            changed[key] = {"gone": gone, "new": added}
        else:
            changed[key] = {"before": old, "after": new}
    return changed
