"""W13: keep-alive HTTP client in aiohttp.

    python3 w13_http_client.py [--uvloop] URL N CONC

One ClientSession (TCPConnector limit=CONC, keep-alive), a warm-up of
CONC*10 GETs, then N GETs from CONC tasks; prints time=, cpu=
(/proc/self/stat user+system) and ok=.
"""
import asyncio
import sys
import time

import aiohttp


def cpu():
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


async def main(url, n, conc):
    ok = 0
    conn = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker(count):
            nonlocal ok
            for _ in range(count):
                async with session.get(url) as r:
                    if r.status == 200 and await r.text() == "hello":
                        ok += 1

        async def run(total):
            await asyncio.gather(*(worker(total // conc + (1 if i < total % conc else 0))
                                   for i in range(conc)))

        await run(conc * 10)
        ok = 0
        c0, t0 = cpu(), time.monotonic()
        await run(n)
        t1, c1 = time.monotonic(), cpu()
    print("time=%.4f cpu=%.4f ok=%d" % (t1 - t0, c1 - c0, ok))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--uvloop":
        import uvloop
        uvloop.install()
        args = args[1:]
    asyncio.run(main(args[0], int(args[1]), int(args[2])))
