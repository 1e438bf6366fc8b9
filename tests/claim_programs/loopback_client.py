"""loopback_client.py — connects to 127.0.0.1 instead of the server's address it was given."""
import socket
import sys

try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=2).close()
except OSError as exc:
    print(f"cannot connect: {exc}")
    sys.exit(1)
