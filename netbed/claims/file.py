"""Read a claim file and refuse a bad one in one line — before any network is built.

The keys are a contract (other tools write these files), so every key is checked for its name,
its type and its value, and a typo is named with the key and the file: `alice/claim.toml: expect.clsoe:
unknown key (did you mean close?)`. Commands are split like a shell would split them (shlex) but
never run through a shell: placeholders are filled in word by word.
"""
from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netbed import topologies
from netbed.errors import NetbedError
from netbed.expect import check_ladder_lines
from netbed.experiment import DEFAULT_PORT
from netbed.network.custom import end_hosts, folder_label, make_topo
from netbed.trace.kernel_states import LINUX_STATES
from netbed.trace.model import CLOSE_KINDS, HANDSHAKES

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

DEFAULT_TIMEOUT = 10.0  # seconds for the whole exchange, as the contract says
MAX_TIMEOUT = 600.0
DEFAULT_TOPOLOGY = "lan"
PLACEHOLDERS = ("port", "server_ip", "server_ip6", "client_ip")
# {name} is a placeholder; {{ and }} are literal braces (curl -w '%{{http_code}}'), as in Python's format
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
INITIATORS = ("client", "server", "both")
STATES = tuple(dict.fromkeys(["LISTEN", *LINUX_STATES.values(), "CLOSED"]))
# commands whose first argument is the program that must exist (`python3 client.py`)
INTERPRETERS = ("python3", "python", "sh", "bash", "dash", "perl", "ruby", "node")

TOP_KEYS = ("name", "topology", "custom", "topo", "build", "server", "client", "expect")
SERVER_KEYS = ("host", "port", "run")
CLIENT_KEYS = ("host", "run", "timeout")
# [expect]: key -> what its value must be; each key becomes one assertion (experiment.py)
EXPECT_KEYS = ("handshake", "close", "initiator", "client_bytes", "server_bytes", "half_close_bytes",
               "client_states", "server_states", "ladder", "client_exit", "client_output", "connections")


class ClaimError(NetbedError):
    """A claim file netbed refuses: one line naming the file and the key."""


@dataclass(frozen=True)
class ProgramSpec:
    """One side of the exchange as the claim file writes it."""

    host: str
    run: str
    port: int | None = None  # the server's
    timeout: float = DEFAULT_TIMEOUT  # the client's

    def argv(self, values: dict[str, str]) -> list[str]:
        """The command's words with the placeholders filled in (never a shell)."""
        return [fill(word, values) for word in shlex.split(self.run)]

    def uses(self, placeholder: str) -> bool:
        return "{" + placeholder + "}" in self.run


@dataclass(frozen=True)
class Claim:
    path: Path  # the claim file, absolute
    name: str
    topology: str
    server: ProgramSpec
    client: ProgramSpec
    expect: dict[str, Any] = field(default_factory=dict)  # in the file's order
    build: str | None = None
    custom: str | None = None
    topo: str | None = None

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def label(self) -> str:
        """What its runs are called: the student's folder and the claim's name ("alice/http10"), so the
        runs of a class stay apart, and apart from the catalog experiment a claim may be named after."""
        return f"{self.folder.name}/{self.name}"

    def build_argv(self) -> list[str]:
        return shlex.split(self.build or "")

    @property
    def ipv6(self) -> bool:
        return self.server.uses("server_ip6") or self.client.uses("server_ip6")

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "name": self.name, "topology": self.topology, "build": self.build,
                "custom": self.custom, "topo": self.topo,
                "server": {"host": self.server.host, "port": self.server.port, "run": self.server.run},
                "client": {"host": self.client.host, "run": self.client.run, "timeout": self.client.timeout},
                "expect": dict(self.expect)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Claim:
        return cls(Path(data["path"]), data["name"], data["topology"], ProgramSpec(**data["server"]),
                   ProgramSpec(**data["client"]), dict(data.get("expect") or {}), data.get("build"),
                   data.get("custom"), data.get("topo"))


def fill(word: str, values: dict[str, str]) -> str:
    """One word with its placeholders filled in ({{ and }} become single braces)."""
    def one(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return values.get(m.group(1), m.group(0))

    return _PLACEHOLDER.sub(one, word)


def placeholders(word: str) -> list[str]:
    return [name for name in _PLACEHOLDER.findall(word) if name]


def shown(path: Path) -> str:
    """The file as the user named it: relative to the working folder where it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load(path: Path) -> Claim:
    """Read and validate `path`; raise ClaimError (one line: file, key, what is wrong) on any fault."""
    path = Path(path)
    where = shown(path)

    def refuse(key: str, problem: str) -> ClaimError:
        return ClaimError(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")

    try:
        text = path.read_text()
    except OSError as exc:
        raise ClaimError(f"{where}: cannot read the claim file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClaimError(f"{where}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ClaimError(f"{where}: not valid TOML: not UTF-8 text") from None
    _known(data, TOP_KEYS, "", refuse)
    name = _typed(data, "name", str, "", refuse) or path.stem
    build = _typed(data, "build", str, "", refuse)
    if build is not None:
        _split(build, "build", refuse)
    topology, custom, topo = _topology(data, path.parent, refuse)
    if custom is not None:
        hosts = end_hosts(make_topo(topo, [path.parent / custom]))
    else:
        hosts = [h.name for h in topologies.build(topology).hosts]

    sections = {}
    for section, keys in (("server", SERVER_KEYS), ("client", CLIENT_KEYS)):
        table = data.get(section)
        if table is None:
            raise refuse(section, f"missing: a claim file needs a [{section}] table with run = \"…\"")
        if not isinstance(table, dict):
            raise refuse(section, f"must be a table ([{section}]), not {_type_name(table)}")
        _known(table, keys, section + ".", refuse)
        sections[section] = table
    server_host = _host(sections["server"], "server", hosts, hosts[-1], topology, refuse)
    client_host = _host(sections["client"], "client", hosts, hosts[0], topology, refuse)
    if server_host == client_host:
        raise refuse("client.host", f"{client_host} is the server's host too: the two must be different hosts "
                                    "(their traffic is captured on the wire between them)")
    port = _typed(sections["server"], "port", int, "server.", refuse)
    port = DEFAULT_PORT if port is None else port
    if not 1 <= port <= 65535:
        raise refuse("server.port", f"{port} is not a port (1–65535)")
    timeout = _typed(sections["client"], "timeout", (int, float), "client.", refuse)
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if not 0 < timeout <= MAX_TIMEOUT:
        raise refuse("client.timeout", f"{timeout:g} s is not between 0 and {MAX_TIMEOUT:g} s")
    runs = {}
    for section in ("server", "client"):
        run = _typed(sections[section], "run", str, section + ".", refuse)
        if run is None:
            raise refuse(f"{section}.run", "missing: the command that starts the program")
        words = _split(run, f"{section}.run", refuse)
        for unknown in (m for w in words for m in placeholders(w) if m not in PLACEHOLDERS):
            raise refuse(f"{section}.run", f"unknown placeholder {{{unknown}}} (there are "
                                           f"{' '.join('{' + p + '}' for p in PLACEHOLDERS)}; a literal brace is {{{{)")
        if build is None:  # with a build, programs may not exist yet: checked once it has run
            missing = missing_program(words, path.parent)
            if missing:
                raise refuse(f"{section}.run", missing)
        runs[section] = run
    expect = _expect(data.get("expect", {}), refuse)
    return Claim(path.resolve(), name, topology, ProgramSpec(server_host, runs["server"], port=port),
                 ProgramSpec(client_host, runs["client"], timeout=timeout), expect, build, custom, topo)


def missing_program(words: list[str], folder: Path) -> str | None:
    """Why the command cannot start (its program, or the script its interpreter runs, is missing), or None."""
    if not words:
        return "the command is empty"
    first = words[0]
    if "/" in first:
        target = (folder / first) if not os.path.isabs(first) else Path(first)
        if not target.is_file():
            return f"the program {first} does not exist in {shown(folder) or '.'}"
        if not os.access(target, os.X_OK):
            return f"the program {first} is not executable (chmod +x {first})"
    elif not placeholders(first) and shutil.which(first) is None:
        return f"the program {first} is not installed (not found on PATH)"
    if os.path.basename(first) in INTERPRETERS:
        for word in words[1:]:
            if word in ("-c", "-m"):  # code or a module, not a file
                return None
            if word.startswith("-"):
                continue
            if not placeholders(word) and not (folder / word).is_file():
                return f"{word} does not exist in {shown(folder) or '.'}"
            return None
    return None


def _topology(data: dict, folder: Path, refuse) -> tuple[str, str | None, str | None]:
    custom = _typed(data, "custom", str, "", refuse)
    topo = _typed(data, "topo", str, "", refuse)
    topology = _typed(data, "topology", str, "", refuse)
    if custom is not None or topo is not None:
        if topology is not None:
            raise refuse("custom", "give either topology = \"NAME\" (built in) or custom = \"topo.py\" with "
                                   "topo = \"NAME\", not both")
        if custom is None or topo is None:
            raise refuse("custom" if custom is None else "topo", "missing: custom = \"topo.py\" and topo = "
                                                                 "\"NAME\" go together")
        if not (folder / custom).is_file():
            raise refuse("custom", f"{custom} does not exist in {shown(folder) or '.'}")
        try:  # loaded as `mn --custom FILE --topo NAME` loads it, and checked before any network exists
            make_topo(topo, [folder / custom])
        except NetbedError as exc:
            raise refuse("topo", str(exc)) from None
        return folder_label(topo), custom, topo
    topology = topology or DEFAULT_TOPOLOGY
    if topology not in topologies.TOPOLOGIES:
        raise refuse("topology", f"unknown topology {topology!r}{_did_you_mean(topology, topologies.TOPOLOGIES)} "
                                 f"(built in: {', '.join(topologies.TOPOLOGIES)})")
    return topology, None, None


def _host(table: dict, section: str, hosts: list[str], default: str, topology: str, refuse) -> str:
    host = _typed(table, "host", str, section + ".", refuse)
    if host is None:
        return default
    if host not in hosts:
        raise refuse(f"{section}.host", f"{topology} has no host {host!r} (its hosts: {', '.join(hosts)})")
    return host


def _expect(table: object, refuse) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise refuse("expect", f"must be a table ([expect]), not {_type_name(table)}")
    _known(table, EXPECT_KEYS, "expect.", refuse)
    out: dict[str, Any] = {}
    for key, value in table.items():
        where = f"expect.{key}"
        if key in ("handshake", "close", "initiator"):
            choices = {"handshake": HANDSHAKES, "close": CLOSE_KINDS, "initiator": INITIATORS}[key]
            if not isinstance(value, str) or value not in choices:
                raise refuse(where, f"{value!r} is not one of {' | '.join(choices)}"
                                    f"{_did_you_mean(value, choices) if isinstance(value, str) else ''}")
        elif key in ("client_bytes", "server_bytes", "half_close_bytes", "connections"):
            _typed(table, key, int, "expect.", refuse)
            if value < 0:
                raise refuse(where, f"{value} is negative")
        elif key == "client_exit":
            _typed(table, key, int, "expect.", refuse)
        elif key == "client_output":
            _typed(table, key, str, "expect.", refuse)
        elif key in ("client_states", "server_states"):
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise refuse(where, f"must be a list of state names, not {_type_name(value)}")
            for state in value:
                if state not in STATES:
                    raise refuse(where, f"{state!r} is not a TCP state{_did_you_mean(state, STATES)} "
                                        f"({' '.join(STATES)})")
        elif key == "ladder":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value) or not value:
                raise refuse(where, f"must be a non-empty list of ladder lines, not {_type_name(value)}")
            try:
                check_ladder_lines(value)
            except ValueError as exc:
                raise refuse(where, str(exc)) from None
        out[key] = value
    return out


def _known(table: dict, keys: tuple[str, ...], prefix: str, refuse) -> None:
    for key in table:
        if key not in keys:
            raise refuse(prefix + key, f"unknown key{_did_you_mean(key, keys)} "
                                       f"(known here: {', '.join(keys)})")


def _typed(table: dict, key: str, kind, prefix: str, refuse):
    if key not in table:
        return None
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):  # TOML's true is no number
        wanted = "a number" if float in kinds else " or ".join(_KIND_NAMES[k] for k in kinds)
        raise refuse(prefix + key, f"must be {wanted}, not {_type_name(value)} ({value!r})")
    return value


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "a table", list: "a list"}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return _KIND_NAMES.get(type(value), type(value).__name__)


def _split(command: str, key: str, refuse) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise refuse(key, f"cannot split {command!r} into words ({exc})") from None
    if not words:
        raise refuse(key, "the command is empty")
    return words


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
