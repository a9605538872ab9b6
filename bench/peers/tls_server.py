"""TLS benchmark server, Python asyncio ssl (+ uvloop with --uvloop)."""
import asyncio, ssl, sys

cert, key, portfile = sys.argv[1:4]
BULK = 256 * 1024 * 1024
CHUNK = b"x" * 65536


async def handle(r, w):
    try:
        head = await r.readuntil(b"\r\n\r\n")
        if head.startswith(b"GET /bulk"):
            w.write(b"HTTP/1.0 200 OK\r\ncontent-length: %d\r\n\r\n" % BULK)
            for _ in range(BULK // len(CHUNK)):
                w.write(CHUNK)
                await w.drain()
        else:
            w.write(b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello")
            await w.drain()
        w.close()
    except Exception:
        w.close()


async def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx, backlog=1024)
    with open(portfile, "w") as f:
        f.write(str(srv.sockets[0].getsockname()[1]))
    await srv.serve_forever()

if "--uvloop" in sys.argv:
    import uvloop
    uvloop.install()
asyncio.run(main())
