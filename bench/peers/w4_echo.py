"""W4 peer: TCP echo server in Python asyncio (or uvloop).

    w4_echo.py asyncio|uvloop [streams|protocol]

streams: asyncio.start_server with StreamReader.read / StreamWriter.write
(+ drain), the same shape as the corio server; protocol: a Protocol whose
data_received writes the data back (asyncio's fastest idiom).  Prints
"port=N"; serves until stdin closes.
"""
import asyncio
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def handle(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(style):
    loop = asyncio.get_running_loop()
    if style == "protocol":
        server = await loop.create_server(Echo, "127.0.0.1", 0)
    else:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=65536)
    port = server.sockets[0].getsockname()[1]
    print(f"port={port}", flush=True)
    done = loop.create_future()

    def on_stdin():
        if not sys.stdin.buffer.raw.read(4096):
            loop.remove_reader(sys.stdin.fileno())
            done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await done
    server.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main(sys.argv[2] if len(sys.argv) > 2 else "streams"))
