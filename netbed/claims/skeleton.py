"""`netbed list --claims EXP`: a claim-file skeleton of a catalog experiment, to start from the lecture.

The commands are read from the experiment itself: its `run(lab)` is played against a Notebook that
writes down the netbed programs it starts (peer.py, with the experiment's own socket calls) instead
of starting them. The expectations are the experiment's claim in the claim-file vocabulary, kept
here next to it; `tests/test_claims_live.py` runs every skeleton as a claim file on a real network,
so a skeleton that stopped being true would fail there.
"""
from __future__ import annotations

import json
import re
import shlex
import sys
import tempfile
from pathlib import Path

from netbed.errors import NetbedError
from netbed.expect import FOUR_WAY_CLOSE
from netbed.experiment import DEFAULT_PORT, Experiment, get
from netbed.programs import PEER

CLIENT_FIN_FIRST = {"handshake": "complete", "close": "four-way", "initiator": "client"}
# Each experiment's claim, in claim-file keys (each key one assertion, exactly as in a claim file).
EXPECT: dict[str, dict[str, object]] = {
    "handshake": {"handshake": "complete", "client_bytes": 100, "connections": 1,
                  "client_states": ["SYN_SENT", "ESTABLISHED"], "server_states": ["SYN_RECEIVED", "ESTABLISHED"]},
    "close-client": {**CLIENT_FIN_FIRST, "client_bytes": 20000, "ladder": FOUR_WAY_CLOSE,
                     "client_states": ["ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"],
                     "server_states": ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK"]},
    "close-merged": {"close": "three-way", "initiator": "client", "ladder": [
        "client > F. seq=f len=0", "server > F. seq=g ack=f+1 len=0", "client > .  seq=f+1 ack=g+1 len=0"]},
    "half-close": {**CLIENT_FIN_FIRST, "client_bytes": 1000, "server_bytes": 200000, "half_close_bytes": 200000,
                   "ladder": ["client > F. len=0"]},
    "close-on-exit": {**CLIENT_FIN_FIRST, "client_exit": -9, "ladder": FOUR_WAY_CLOSE},
    "close-unread-rst": {"close": "reset", "initiator": "client", "server_bytes": 1000,
                         "ladder": ["client > R. len=0"]},
    "linger-rst": {"close": "reset", "initiator": "client", "client_bytes": 1000, "ladder": ["client > R. len=0"],
                   "client_states": ["SYN_SENT", "ESTABLISHED", "CLOSED"]},
    "lan-ethernet": {"handshake": "complete", "client_bytes": 100, "connections": 1},
    "ipv6-handshake": {**CLIENT_FIN_FIRST, "client_bytes": 1000, "ladder": FOUR_WAY_CLOSE},
    "fin-with-data": {**CLIENT_FIN_FIRST, "client_bytes": 1000, "ladder": [
        "client > FP. seq=f len=1000", "server > .  ack=f+1001 len=0", "server > F. seq=g",
        "client > .  ack=g+1 len=0"]},
    "close-server": {"handshake": "complete", "initiator": "server", "ladder": ["server > F."],
                     "client_states": ["CLOSE_WAIT", "LAST_ACK"], "server_states": ["FIN_WAIT_1", "TIME_WAIT"],
                     "client_exit": 0, "client_output": "http 200 5000", "connections": 1},
    "browser-server": {"handshake": "complete", "initiator": "client", "client_exit": 0,
                       "client_output": "http 200 1200 1", "connections": 1},
}


class NotAClaim(NetbedError):
    """The experiment does something a claim file cannot say (one server and one client, nothing else)."""


# What the Notebook hands out for an address: marks, turned into placeholders once braces are escaped
MARKS = {f"\0{name}\0": "{" + name + "}" for name in ("server_ip", "server_ip6", "client_ip", "port")}


class _Started:
    """What the Notebook hands back for a program it wrote down."""

    def __init__(self, node: str, port: int | None) -> None:
        self.node, self.port = node, port


class Notebook:
    """Stands where a Lab would and writes down the programs an experiment's `run` would start.

    Files the experiment writes into its run folder (a web server's pages) land in `out`, a scratch
    folder, and are listed in the skeleton: the claim file's folder needs them too.
    """

    def __init__(self, exp: Experiment, out: Path) -> None:
        self.exp, self.out = exp, out
        self.client_host, self.server_host = "client-host", "server-host"
        self.commands: dict[str, tuple[list[str], int | None]] = {}
        self.facts: dict = {}  # what an experiment notes for its check; a claim file's check does not read it

    def ip(self, host: str) -> str:
        return "\0server_ip\0" if host == self.server_host else "\0client_ip\0"

    def ip6(self, host: str) -> str:
        if host != self.server_host:
            raise NotAClaim(f"{self.exp.name} needs the client's IPv6 address, which no placeholder names")
        return "\0server_ip6\0"

    def server(self, actions: list[str], *, host: str | None = None, port: int = DEFAULT_PORT,
               name: str = "server", udp: bool = False, bind: str | None = None) -> _Started:
        self._refuse_udp(udp)
        argv = [PEER, "server", *(["--bind", bind] if bind else []), str(port), "--", *actions]
        self._write(name, "server", ["python3", *argv], port)
        return _Started(host or self.server_host, port)

    def client(self, server: _Started | None, actions: list[str], *, host: str | None = None,
               name: str = "client", udp: bool = False, to: tuple[str, int] | None = None,
               bind: str | None = None, reuseaddr: bool = False) -> _Started:
        self._refuse_udp(udp)
        if to is not None and "server" not in self.commands:
            raise NotAClaim(f"{self.exp.name} connects its client where no server listens; a claim file has a server")
        address, port = to if to is not None else ("\0server_ip\0", server.port if server else DEFAULT_PORT)
        options = [*(["--bind", bind] if bind else []), *(["--reuseaddr"] if reuseaddr else [])]
        self._write(name, "client", ["python3", PEER, "client", *options, address, str(port), "--", *actions], None)
        return _Started(host or self.client_host, None)

    def start(self, name: str, argv: list[str], *, host: str, port: int | None = None,
              daemon: bool = False) -> _Started:
        """Any program (a web server, curl): the server is the one that listens on a port."""
        role = "server" if host == self.server_host and port is not None else "client"
        words = ["python3" if w == sys.executable else w for w in argv]
        self._write(name, role, words, port)
        return _Started(host, port)

    def wait(self, *programs: object, timeout: float = 30.0) -> None:
        pass

    def __getattr__(self, what: str):
        raise NotAClaim(f"{self.exp.name} does more than start one server and one client (it uses lab.{what}), "
                        "which a claim file cannot say")

    def _refuse_udp(self, udp: bool) -> None:
        if udp:
            raise NotAClaim(f"{self.exp.name} is about UDP; claim files are about TCP connections")

    def _write(self, name: str, role: str, argv: list[str], port: int | None) -> None:
        if name != role or role in self.commands:
            raise NotAClaim(f"{self.exp.name} starts more than one server and one client")
        self.commands[role] = (argv, port)

    def command(self, role: str, port: int) -> str:
        """The recorded command as a claim file's run = "…": braces escaped, marks made placeholders,
        the port and the scratch folder's paths made {port} and relative paths."""
        words = []
        for word in self.commands[role][0]:
            word = word.replace(str(self.out) + "/", "").replace(str(self.out), ".")
            word = word.replace("{", "{{").replace("}", "}}")
            word = "\0port\0" if word == str(port) else word.replace(f":{port}/", ":\0port\0/")
            for mark, placeholder in MARKS.items():
                word = word.replace(mark, placeholder)
            words.append(word)
        return _join(words)


def skeleton(name: str) -> str:
    """The TOML text of the skeleton of catalog experiment `name`."""
    exp = get(name)
    with tempfile.TemporaryDirectory(prefix="netbed-skeleton-") as scratch:
        book = Notebook(exp, Path(scratch))
        exp.run(book)  # writes down, starts nothing
        if set(book.commands) != {"server", "client"}:
            raise NotAClaim(f"{exp.name} does not start one server and one client")
        if exp.name not in EXPECT:
            raise NotAClaim(f"{exp.name} has no claim-file form yet (its check looks at more than a claim file "
                            "can say)")
        port = book.commands["server"][1] or DEFAULT_PORT
        files = sorted(p for p in Path(scratch).rglob("*") if p.is_file())
        made = [f"# file: {p.relative_to(scratch)}, {p.stat().st_size} bytes" for p in files]
        server, client = book.command("server", port), book.command("client", port)
    lines = [
        f"# A claim file made from netbed's catalog experiment {exp.name} (`netbed list --claims {exp.name}`).",
        f"# The lecture: {exp.claim}",
        f"# {exp.gloss}",
        "# netbed's own programs stand in for yours: put your server's and client's commands in run = …,",
        "# keep the [expect] keys you want asserted. See docs/grading.md.",
    ]
    if made:
        lines += ["# The programs read these files; make them in this file's folder first:", *made]
    lines += [
        f"name = {_toml(exp.name)}",
        f"topology = {_toml(exp.topologies[0])}",
        "",
        "[server]",
        f"port = {port}",
        f"run = {_toml(server)}",
        "",
        "[client]",
        f"run = {_toml(client)}",
        "timeout = 10",
        "",
        "[expect]",
    ]
    lines += [f"{key} = {_toml(value)}" for key, value in EXPECT[exp.name].items()]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    """A TOML value: strings, integers and lists of strings are all a skeleton holds (JSON writes them alike)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)



def _join(argv: list[str]) -> str:
    """shlex.join, but placeholders stay readable: {port}, not '{port}'."""
    return " ".join(w if re.fullmatch(r"[\w@%+=:,./{}-]+", w) else shlex.quote(w) for w in argv)
