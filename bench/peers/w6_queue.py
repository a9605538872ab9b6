"""W6 queue: 1,000,000 items through asyncio.Queue(1) from one producer
task to one consumer task.

usage: w6_queue.py asyncio|uvloop
"""
import asyncio
import sys
import time

N = 1000000


async def main():
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(1)

    async def producer():
        for i in range(1, N + 1):
            await q.put(i)

    t0 = time.perf_counter()
    p = loop.create_task(producer())
    total = 0
    for _ in range(N):
        total += await q.get()
    await p
    t1 = time.perf_counter()
    print(f"time={t1 - t0:.6f} check={total}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
