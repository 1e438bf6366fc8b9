#!/usr/bin/env python3
"""Python's http.server, serving a folder, with the two behaviours the lecture contrasts.

    httpd.py PORT --bind ADDR --directory DIR [--protocol HTTP/1.0|HTTP/1.1] [--close-delimited]

--close-delimited drops Content-Length, as many HTTP/1.0 servers did: the body ends when the server
closes the connection, so the server always closes first. With --protocol HTTP/1.1 the server keeps
the connection open for further requests (keep-alive), like a web server talking to a browser.
"""
from __future__ import annotations

import argparse
import functools
import socket
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    close_delimited = False

    def send_header(self, keyword: str, value: str) -> None:
        if self.close_delimited and keyword.lower() == "content-length":
            return
        super().send_header(keyword, value)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        sys.stderr.write(f"{self.address_string()} {format % args}\n")
        sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--directory", required=True)
    parser.add_argument("--protocol", default="HTTP/1.0", choices=("HTTP/1.0", "HTTP/1.1"))
    parser.add_argument("--close-delimited", action="store_true")
    args = parser.parse_args(argv)
    Handler.protocol_version = args.protocol
    Handler.close_delimited = args.close_delimited
    handler = functools.partial(Handler, directory=args.directory)
    ThreadingHTTPServer.address_family = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
    with ThreadingHTTPServer((args.bind, args.port), handler) as httpd:
        httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
