# A pre-forking server: one listening socket on 127.0.0.1, made before the
# fork, accepted on by two worker processes (the shape of Apache's prefork,
# gunicorn's sync workers, PostgreSQL's postmaster). Each answers a line
# with its number, its pid and the line; the parent waits for them.
import os
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
print("port", s.getsockname()[1], flush=True)
kids = []
for n in range(2):
    pid = os.fork()
    if pid == 0:
        while True:
            c, _ = s.accept()
            line = c.recv(100)
            c.sendall(b"worker %d pid %d: %s" % (n, os.getpid(), line))
            c.close()
    kids.append(pid)
for k in kids:
    os.waitpid(k, 0)
sys.exit(1)
