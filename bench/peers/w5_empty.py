"""W5 startup: run an empty coroutine on the event loop.

usage: w5_empty.py asyncio|uvloop
"""
import asyncio
import sys


async def main():
    pass


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:
        import uvloop
        uvloop.install()
    asyncio.run(main())
