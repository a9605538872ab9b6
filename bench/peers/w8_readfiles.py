"""W8 read files: 10,000 files of 1 KiB (made before timing), 64 reads in
flight, each a blocking open/read run with asyncio.to_thread.

usage: w8_readfiles.py asyncio|uvloop
"""
import asyncio
import os
import shutil
import sys
import tempfile
import time

N, FLIGHT, SIZE = 10000, 64, 1024


def read(p):
    with open(p, "rb") as f:
        return f.read()


async def main():
    d = tempfile.mkdtemp(prefix="py-w8-")
    paths = [os.path.join(d, "f%d" % i) for i in range(1, N + 1)]
    block = b"x" * SIZE
    for p in paths:
        with open(p, "wb") as f:
            f.write(block)
    state = {"next": 0, "total": 0}

    async def worker():
        while state["next"] < N:
            p = paths[state["next"]]
            state["next"] += 1
            data = await asyncio.to_thread(read, p)
            state["total"] += len(data)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(FLIGHT)))
    t = time.perf_counter() - t0
    shutil.rmtree(d)
    print(f"time={t:.4f} check={state['total']}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
