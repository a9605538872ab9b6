# W11 peer: aiohttp on uvloop, hello server on sys.argv[1].
import sys
import asyncio
import uvloop
from aiohttp import web

async def hello(request):
    return web.Response(text="hello world\n")

app = web.Application()
app.router.add_get("/", hello)
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=lambda *a: print("ready", flush=True))
