# W14 peer: WebSocket echo on Python's websockets (Debian python3-websockets).
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    async for msg in ws:
        await ws.send(msg)


async def main():
    # No keepalive pings: the load client does not answer them.
    async with websockets.serve(echo, "127.0.0.1", 0,
                                ping_interval=None) as srv:
        print("port=%d" % srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().create_future()


if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
    import uvloop
    uvloop.install()
asyncio.run(main())
