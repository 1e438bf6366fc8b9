"""``python -m netbed.trace FILE [--json]``: the trace stage on its own, for quick looks and debugging."""

from __future__ import annotations

import argparse
import sys

from . import PcapError, format_table, read_trace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netbed.trace", description="Classify the TCP connections "
                                     "of a pcap/pcapng file (handshake, close kind, half-close bytes).")
    parser.add_argument("pcap")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        trace = read_trace(args.pcap)
    except (PcapError, OSError) as e:
        print(f"netbed trace: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(trace.to_json_text())
    else:
        sys.stdout.write(format_table(trace))
    return 0


if __name__ == "__main__":
    sys.exit(main())
