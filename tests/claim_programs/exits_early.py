"""exits_early.py — listens, then exits before it accepts anyone."""
import socket
import sys
import time

server = socket.create_server(("", int(sys.argv[1])))
print("listening; bye")
time.sleep(0.3)
