"""W1 spawn: 1,000,000 tasks each returning its index, awaited in order.

usage: w1_spawn.py asyncio|uvloop
"""
import asyncio
import sys
import time

N = 1_000_000


async def work(i):
    return i


async def main():
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    tasks = [loop.create_task(work(i)) for i in range(1, N + 1)]
    total = 0
    for t in tasks:
        total += await t
    t1 = time.perf_counter()
    print(f"time={t1 - t0:.6f} check={total}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
