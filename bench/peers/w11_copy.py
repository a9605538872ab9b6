"""W11 copy a 1 GiB file: shutil.copyfile (sendfile on Linux) run with
asyncio.to_thread.  The source is made by run.py.

usage: w11_copy.py asyncio|uvloop
"""
import asyncio
import os
import shutil
import sys
import time

SRC = os.environ.get("CORIO_BENCH_1G", "/tmp/corio-bench-1g.bin")
DST = SRC + ".py-copy"


async def main():
    os.sync()
    t0 = time.perf_counter()
    await asyncio.to_thread(shutil.copyfile, SRC, DST)
    t = time.perf_counter() - t0
    size = os.stat(DST).st_size
    os.unlink(DST)
    print(f"time={t:.4f} check={size}")


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
