"""W3 sleepers: 100,000 tasks each sleeping a pseudo-random 0..1000 ms.

usage: w3_sleep.py asyncio|uvloop
"""
import asyncio
import sys
import time

N = 100_000

# Deterministic LCG (seed 42), identical in every runtime.
delays = []
x = 42
for _ in range(N):
    x = (x * 1103515245 + 12345) % 2**31
    delays.append(x % 1001)


async def sleeper(ms):
    await asyncio.sleep(ms / 1000)
    return ms


async def main():
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    tasks = [loop.create_task(sleeper(ms)) for ms in delays]
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
