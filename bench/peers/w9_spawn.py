"""W9 spawn: 1,000 `true` processes, 16 at a time (stdio inherited).

usage: w9_spawn.py asyncio|uvloop
"""
import asyncio
import sys
import time

N, FLIGHT = 1000, 16


async def main():
    state = {"started": 0, "done": 0}

    async def worker():
        while state["started"] < N:
            state["started"] += 1
            p = await asyncio.create_subprocess_exec("true")
            if await p.wait() == 0:
                state["done"] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(FLIGHT)))
    print(f"time={time.perf_counter() - t0:.4f} check={state['done']}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
