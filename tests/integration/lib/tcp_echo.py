# A line echo over TCP, both ends in one file:
#   tcp_echo.py server        listens on 127.0.0.1 (port printed), answers
#                             each line of each connection with "echo N: LINE"
#   tcp_echo.py client PORT N sends N numbered lines, 20 ms apart, on one
#                             connection, checks every answer, prints them
import socket
import sys
import time

if sys.argv[1] == "server":
    s = socket.create_server(("127.0.0.1", 0))
    print("port", s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        f = c.makefile("rwb", buffering=0)
        n = 0
        for line in f:
            n += 1
            f.write(b"echo %d: %s" % (n, line))
        c.close()
else:
    c = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    f = c.makefile("rwb", buffering=0)
    for i in range(1, int(sys.argv[3]) + 1):
        f.write(b"line %d\n" % i)
        got = f.readline()
        if got != b"echo %d: line %d\n" % (i, i):
            print("bad answer to line", i, got, flush=True)
            sys.exit(1)
        print(got.decode().strip(), flush=True)
        time.sleep(0.02)
    print("done", flush=True)
