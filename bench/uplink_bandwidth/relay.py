#!/usr/bin/env python3
"""A TCP relay that counts every byte both ways: what the uplink costs on the wire (TLS records,
HTTP and all; TCP/IP headers are not in it).

relay.py LISTEN_PORT TARGET_PORT COUNTS_FILE
Writes "<up bytes> <down bytes> <connections>" to COUNTS_FILE every 0.5 s. SIGUSR1 closes the
listener and every connection (the destination is away), SIGUSR2 opens it again.
"""
import asyncio
import signal
import sys

listen_port, target_port, counts_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
up = down = conns = 0
server = None
open_conns = set()


async def pipe(reader, writer, direction):
    global up, down
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if direction == "up":
                up += len(data)
            else:
                down += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(cr, cw):
    global conns
    conns += 1
    try:
        tr, tw = await asyncio.open_connection("127.0.0.1", target_port)
    except OSError:
        cw.close()
        return
    tasks = [asyncio.ensure_future(pipe(cr, tw, "up")), asyncio.ensure_future(pipe(tr, cw, "down"))]
    open_conns.update(tasks)
    await asyncio.wait(tasks)
    open_conns.difference_update(tasks)


async def start():
    global server
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)


async def stop():
    global server
    if server:
        server.close()
        await server.wait_closed()
        server = None
    for t in list(open_conns):
        t.cancel()


async def report():
    while True:
        with open(counts_file + ".tmp", "w") as f:
            f.write(f"{up} {down} {conns}\n")
        import os

        os.replace(counts_file + ".tmp", counts_file)
        await asyncio.sleep(0.5)


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, lambda: asyncio.ensure_future(stop()))
    loop.add_signal_handler(signal.SIGUSR2, lambda: asyncio.ensure_future(start()))
    await start()
    print(f"relay 127.0.0.1:{listen_port} -> 127.0.0.1:{target_port}", flush=True)
    await report()


asyncio.run(main())
