#!/usr/bin/env python3
"""A server that serves several clients, the way the lecture's "服务端:24小时不间断提供服务" means it.

    acceptor.py PORT [--bind ADDR] [--backlog N] [--accept-after FILE] [--mode iterative|concurrent]
                [--work SECONDS] [--connections K] [--request BYTES] [--response BYTES]

It listens with `--backlog`, waits (before its first accept()) until FILE exists if asked, then
accepts K connections. Serving one means: read the request, work for `--work` seconds, send the
response, close. Iterative: one client after the other in the accepting thread. Concurrent: a
thread per client, so they are served at the same time. Standard library only; the report is one
JSON line with the time of every accept() and of every answer.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from pathlib import Path

CHUNK = 65536


def read_exactly(conn: socket.socket, n: int) -> int:
    got = 0
    while got < n:
        data = conn.recv(min(CHUNK, n - got))
        if not data:
            break
        got += len(data)
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--backlog", type=int, default=8)
    parser.add_argument("--accept-after")
    parser.add_argument("--mode", choices=("iterative", "concurrent"), default="iterative")
    parser.add_argument("--work", type=float, default=0.0)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--request", type=int, default=10)
    parser.add_argument("--response", type=int, default=10)
    args = parser.parse_args(argv)

    events: list[dict] = []
    lock = threading.Lock()

    def note(what: str, **extra) -> None:
        with lock:
            events.append({"t": time.time(), "event": what, **extra})

    def serve(conn: socket.socket, peer: tuple) -> None:
        with conn:
            got = read_exactly(conn, args.request)
            note("request", peer=list(peer[:2]), bytes=got)
            time.sleep(args.work)
            conn.sendall(b"r" * args.response)
            note("answer", peer=list(peer[:2]), bytes=args.response)

    lsock = socket.socket(socket.AF_INET6 if ":" in args.bind else socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((args.bind, args.port))
    lsock.listen(args.backlog)
    note("listen", backlog=args.backlog)
    if args.accept_after:
        while not Path(args.accept_after).exists():
            time.sleep(0.001)
    threads = []
    for _ in range(args.connections):
        conn, peer = lsock.accept()
        note("accept", peer=list(peer[:2]))
        if args.mode == "concurrent":
            thread = threading.Thread(target=serve, args=(conn, peer))
            thread.start()
            threads.append(thread)
        else:
            serve(conn, peer)
    for thread in threads:
        thread.join()
    lsock.close()
    print(json.dumps({"role": "server", "mode": args.mode, "local": [args.bind, args.port], "events": events}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
