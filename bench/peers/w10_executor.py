"""W10 executor: the primes jobs in a ProcessPoolExecutor of 1 worker, then
of 2, awaited through loop.run_in_executor; then 10,000 empty jobs one at a
time.

usage: w10_executor.py asyncio|uvloop
"""
import asyncio
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

N = int(os.environ.get("W10_N", "5000000"))
EMPTY = 10000


def primes(k, limit):
    count = 0
    for n in range(5 if k == 0 else 3, limit, 4):
        prime = True
        d = 3
        while d * d <= n:
            if n % d == 0:
                prime = False
                break
            d += 2
        if prime:
            count += 1
    return count


def empty():
    pass


async def both(loop, pool):
    t0 = time.perf_counter()
    a, b = await asyncio.gather(loop.run_in_executor(pool, primes, 0, N),
                                loop.run_in_executor(pool, primes, 1, N))
    return a + b + 1, time.perf_counter() - t0    # + 1: the prime 2


async def main():
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1) as p1:
        await loop.run_in_executor(p1, empty)      # start the worker
        c1, t1 = await both(loop, p1)
    with ProcessPoolExecutor(2) as p2:
        await asyncio.gather(loop.run_in_executor(p2, empty),
                             loop.run_in_executor(p2, empty))
        c2, t2 = await both(loop, p2)
        assert c1 == c2
        t0 = time.perf_counter()
        for _ in range(EMPTY):
            await loop.run_in_executor(p2, empty)
        te = time.perf_counter() - t0
    print(f"time={t1 + t2 + te:.6f} t1={t1:.6f} t2={t2:.6f} "
          f"rtt_us={te / EMPTY * 1e6:.2f} check={c1}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
