"""loopback_server.py — a server bound to 127.0.0.1: no other host can reach it."""
import socket
import sys

server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("listening on 127.0.0.1")
while True:
    conn, _ = server.accept()
    conn.close()
