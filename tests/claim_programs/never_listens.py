"""never_listens.py — a server that forgot listen(): it only waits."""
import time

print("server starting")
time.sleep(60)
