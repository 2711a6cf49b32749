# An asyncio program whose output depends only on its input: two streams
# over a socket pair pass lines both ways, a signal handler and a thread
# pool answer on the event loop, timers pace it. Prints a line per step.
# With "tcp", the two streams are the ends of a TCP connection over
# 127.0.0.1 from an asyncio server the program keeps listening.
# Usage: asyncio_chat.py STEPS [tcp]
import asyncio
import hashlib
import os
import signal
import socket
import sys


async def main(steps):
    loop = asyncio.get_running_loop()
    if len(sys.argv) > 2 and sys.argv[2] == "tcp":
        accepted = asyncio.Queue()
        server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0)
        ra, wa = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        rb, wb = await accepted.get()
    else:
        a, b = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)
    signalled = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, signalled.set)
    h = hashlib.sha256()
    x = 1
    for i in range(steps):
        for _ in range(6000):
            x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        line = f"{i} {x}\n".encode()
        wa.write(line * 3)                       # bytes wait in the pair
        await wa.drain()
        got = [await rb.readline() for _ in range(3)]
        assert got == [line] * 3, got
        h.update(got[0])
        wb.write(got[0][::-1])
        await wb.drain()
        back = await ra.readexactly(len(line))
        assert back == line[::-1]
        await asyncio.sleep(0.002)
        v = await loop.run_in_executor(None, pow, x, 65537, 1000000007)
        if i % 25 == 0:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(signalled.wait(), 30)
            signalled.clear()
        print(i, v, h.hexdigest()[:16], flush=True)
    wa.close()
    wb.close()
    print("done", h.hexdigest(), flush=True)


asyncio.run(main(int(sys.argv[1])))
