#!/usr/bin/python3
"""A WebSocket peer nobody here wrote: Python's websockets (Debian
python3-websockets), for tests/ws_interop_spec.lua.

  ws_peer.py server      echo server on a free loopback port; prints
                         "port N", then one line per finished connection
                         ("closed CODE REASON").  Commands in text messages:
                           frag:A,B,C   send "ABC" as three fragments
                           big:N        send N bytes (binary)
                           badutf8      send a text frame with invalid UTF-8
                           close:C:R    close with code C, reason R
                           ping         ping, wait for the pong, say "pong"
                           pingclose    a ping and a close in one TCP
                                        segment; prints "pingclose pong"
                                        once the pong came back, else
                                        "pingclose nopong"
  ws_peer.py client URL  runs a fixed conversation against an echo server
                         and prints one line per check ("ok NAME" or
                         "fail NAME ...")
"""
import asyncio
import socket
import sys

import websockets


async def ping_and_close(ws):
    """A ping, then a close frame (1000) written raw, corked into one TCP
    segment so that the peer reads both at once: RFC 6455 wants the pong
    before the reply to the close."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    pong = await ws.ping(b"hi")
    ws.transport.write(b"\x88\x02\x03\xe8")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
    try:
        await asyncio.wait_for(pong, 30)
        print("pingclose pong", flush=True)
    except (asyncio.TimeoutError, websockets.ConnectionClosed):
        print("pingclose nopong", flush=True)


async def handler(ws, path=None):
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("frag:"):
                await ws.send(iter(msg[5:].split(",")))
            elif isinstance(msg, str) and msg.startswith("big:"):
                await ws.send(b"b" * int(msg[4:]))
            elif msg == "badutf8":
                # A server frame is unmasked: FIN + text, 2 bytes, C3 28.
                ws.transport.write(b"\x81\x02\xc3\x28")
            elif isinstance(msg, str) and msg.startswith("close:"):
                _, code, reason = msg.split(":", 2)
                await ws.close(int(code), reason)
            elif msg == "ping":
                await (await ws.ping(b"hi"))
                await ws.send("pong")
            elif msg == "pingclose":
                await ping_and_close(ws)
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    print("closed", ws.close_code, ws.close_reason, flush=True)


async def server():
    async with websockets.serve(handler, "127.0.0.1", 0,
                                max_size=64 * 1024 * 1024) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("port", port, flush=True)
        await asyncio.get_running_loop().create_future()


def check(name, cond, *info):
    print("ok" if cond else "fail", name, *info, flush=True)


async def client(url):
    async with websockets.connect(url, max_size=64 * 1024 * 1024) as ws:
        await ws.send("hello")
        check("text", await ws.recv() == "hello")
        await ws.send(b"\x00\x01\xff")
        check("binary", await ws.recv() == b"\x00\x01\xff")
        await ws.send(iter(["fr", "ag", "ments"]))
        check("fragments", await ws.recv() == "fragments")
        pong = await ws.ping(b"p1")
        await asyncio.wait_for(pong, 10)
        check("ping", True)
        big = bytes(range(256)) * 4096 * 2       # 2 MiB
        await ws.send(big)
        check("big", await ws.recv() == big)
        await ws.send("bye")
        check("after", await ws.recv() == "bye")
        await ws.close(4001, "done")
        check("close", ws.close_code == 4001, ws.close_code)
    # A client frame is masked: FIN + text, mask bit + 2, key 0, C3 28.
    async with websockets.connect(url) as ws:
        ws.transport.write(b"\x81\x82\x00\x00\x00\x00\xc3\x28")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            check("utf8", False, "got a message")
        except websockets.ConnectionClosed as e:
            check("utf8", e.rcvd is not None and e.rcvd.code == 1007, e)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server())
    else:
        asyncio.run(client(sys.argv[2]))
