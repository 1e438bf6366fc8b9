"""FTP协议 — one file over FTP is two TCP connections: control (port 21) and data, passive or active."""
from __future__ import annotations

import hashlib
import re
import sys

from netbed.expect import Expect
from netbed.experiment import Evidence, Lab
from netbed.trace.layers import read_packets, tcp_stream

NAME = "ftp"
ORDER = 9
CLAIM = "应用层; FTP协议"
NETBED = ("A real FTP server (pyftpdlib, anonymous, read-only) and a real FTP client (curl) fetch one 200 KB file "
          "twice. Each fetch is two TCP connections: the control connection from the client to port 21, carrying "
          "the commands and replies as text, and a data connection carrying the file. In passive mode the server "
          "names a port in its reply to EPSV/PASV and the client connects there; in active mode the client names "
          "its own address and port (EPRT/PORT) and the server connects back. The file arrives intact both times.")
GLOSS = ("FTP, an application-layer protocol, uses two TCP connections per transfer: control on port 21, data on "
         "another; passive (the client connects to the server's data port) and active (the server connects back).")
TOPOLOGIES = ("lan", "multi-lan", "wan")
PORT = 21
SIZE = 200_000
FILE = "lecture.bin"
WRITE_OUT = "netbed-local %{local_ip} %{local_port} %{remote_ip} %{remote_port}\n"
MODES = {"client": "passive", "client-active": "active"}  # program name: mode


def content() -> bytes:
    out, block = bytearray(), 0
    while len(out) < SIZE:
        out += hashlib.sha256(block.to_bytes(8, "big")).digest()
        block += 1
    return bytes(out[:SIZE])


def run(lab: Lab) -> None:
    root = lab.out / "ftp-root"
    root.mkdir(exist_ok=True)
    (root / FILE).write_bytes(content())
    server_ip, client_ip = lab.ip(lab.server_host), lab.ip(lab.client_host)
    lab.start("server", [sys.executable, "-m", "pyftpdlib", "-i", server_ip, "-p", str(PORT), "-d", str(root)],
              host=lab.server_host, port=PORT, daemon=True)
    url = f"ftp://{server_ip}:{PORT}/{FILE}"
    for name, mode in MODES.items():
        how = ["--ftp-pasv"] if mode == "passive" else ["--ftp-port", client_ip]
        lab.wait(lab.start(name, ["curl", "-s", *how, "-o", str(lab.out / f"{mode}.bin"), "-w", WRITE_OUT, url],
                           host=lab.client_host))


def data_port(commands: str, replies: str, mode: str) -> int | None:
    """The data connection's port, as the control connection announced it (EPSV/PASV or EPRT/PORT)."""
    if mode == "passive":
        m = re.search(r"^229 .*\(\|\|\|(\d+)\|\)", replies, re.M)
        if m:
            return int(m.group(1))
        m = re.search(r"^227 .*\((?:\d+,){4}(\d+),(\d+)\)", replies, re.M)
    else:
        m = re.search(r"^EPRT \|\d\|[^|]+\|(\d+)\|", commands, re.M)
        if m:
            return int(m.group(1))
        m = re.search(r"^PORT (?:\d+,){4}(\d+),(\d+)", commands, re.M)
    return (int(m.group(1)) * 256 + int(m.group(2))) if m else None


def check(ev: Evidence, expect: Expect) -> None:
    served = (ev.directory / "ftp-root" / FILE).read_bytes()
    packets = read_packets(ev.directory / "client.pcap")
    conns = ev.trace("client").connections
    for name, mode in MODES.items():
        expect.equal(f"{mode}: curl fetched it (exit status 0)", 0, ev.program(name)["exit"])
        got = ev.directory / f"{mode}.bin"
        got_bytes = got.read_bytes() if got.is_file() else b""
        expect.equal(f"{mode}: the file arrives intact (size, SHA-256)", (len(served), hashlib.sha256(served).hexdigest()),
                     (len(got_bytes), hashlib.sha256(got_bytes).hexdigest()))
        control = ev.connection("client", name)
        if not expect.that(f"{mode}: a control connection from the client to port {PORT}",
                           control is not None and control.server.port == PORT,
                           f"{control.client} → {control.server}" if control else "no connection of curl's in the capture"):
            continue
        client, server = tuple(control.client), tuple(control.server)
        commands = tcp_stream(packets, client, server).decode("latin-1")
        replies = tcp_stream(packets, server, client).decode("latin-1")
        expect.that(f"{mode}: commands and replies travel as text on the control connection",
                    "RETR " + FILE in commands and replies.startswith("220"),
                    " | ".join(line for line in commands.splitlines() if line[:4] in ("USER", "EPSV", "PASV", "EPRT",
                                                                                     "PORT", "RETR")))
        port = data_port(commands, replies, mode)
        expect.that(f"{mode}: the control connection names the data port", port is not None, str(port))
        if mode == "passive":
            data = [c for c in conns if c.client.ip == client[0] and c.server == (server[0], port)]
            who = "the client connects to the port the server named"
        else:
            data = [c for c in conns if c.client.ip == server[0] and c.server == (client[0], port)]
            who = "the server connects back to the port the client named"
        expect.that(f"{mode}: the file's bytes travel on a second TCP connection: {who}",
                    len(data) == 1 and data[0].handshake == "complete" and SIZE in (data[0].bytes_server,
                                                                                    data[0].bytes_client),
                    ", ".join(f"{c.client} → {c.server}: {c.bytes_client}+{c.bytes_server} bytes" for c in data)
                    or f"no connection to port {port}")
        expect.that(f"{mode}: the control connection does not carry the file",
                    control.bytes_server < SIZE and control.bytes_client < SIZE,
                    f"{control.bytes_client} bytes of commands, {control.bytes_server} bytes of replies")
    expect.equal("two fetches, two TCP connections each", 2 * len(MODES), len(conns))
