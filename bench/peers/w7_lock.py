"""W7 lock: 100 tasks each taking one shared asyncio.Lock 1,000 times, with
a yield to the event loop (asyncio.sleep(0)) inside the critical section.

usage: w7_lock.py asyncio|uvloop
"""
import asyncio
import sys
import time

TASKS, ROUNDS = 100, 1000
count = 0


async def main():
    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()

    async def work():
        global count
        for _ in range(ROUNDS):
            async with lock:
                c = count
                await asyncio.sleep(0)
                count = c + 1

    t0 = time.perf_counter()
    tasks = [loop.create_task(work()) for _ in range(TASKS)]
    for t in tasks:
        await t
    t1 = time.perf_counter()
    print(f"time={t1 - t0:.6f} check={count}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
