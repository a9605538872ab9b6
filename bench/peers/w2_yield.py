"""W2 yields: 1,000 tasks each yielding to the event loop 1,000 times.

usage: w2_yield.py asyncio|uvloop
"""
import asyncio
import sys
import time

TASKS, YIELDS = 1000, 1000


async def work():
    for _ in range(YIELDS):
        await asyncio.sleep(0)
    return YIELDS


async def main():
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    tasks = [loop.create_task(work()) for _ in range(TASKS)]
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
