#!/usr/bin/env python3
"""Records, then replays, one peer's traffic (for cluster_faults.sh).

  replay.py record LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT FILE
      forwards the first connection both ways, writing what the client sent
      to FILE, until either side closes or 4 seconds pass.
  replay.py replay TARGET_HOST TARGET_PORT FILE
      opens a new connection, sends FILE's bytes, reads until the target
      closes (prints how many bytes came back) or 3 seconds pass.
Only addresses given on the command line are contacted.
"""
import select, socket, sys, time

def record(lh, lp, th, tp, path):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((lh, int(lp)))
    ls.listen(1)
    print("listening", flush=True)
    ls.settimeout(10)
    c, _ = ls.accept()
    t = socket.create_connection((th, int(tp)))
    out = open(path, "wb")
    end = time.time() + 4
    while time.time() < end:
        r, _, _ = select.select([c, t], [], [], 0.2)
        for s in r:
            data = s.recv(65536)
            if not data:
                out.close()
                return
            if s is c:
                out.write(data)
                out.flush()
                t.sendall(data)
            else:
                c.sendall(data)
    out.close()

def replay(th, tp, path):
    data = open(path, "rb").read()
    s = socket.create_connection((th, int(tp)))
    s.sendall(data)
    s.settimeout(3)
    got = 0
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += len(b)
    except (socket.timeout, ConnectionResetError):
        pass
    print("sent %d bytes, got %d back" % (len(data), got))

if sys.argv[1] == "record":
    record(*sys.argv[2:7])
else:
    replay(*sys.argv[2:5])
