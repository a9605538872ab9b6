#!/usr/bin/python3
"""soak/faults.py -- the faulting peers of soak/run.lua.

corio.net cannot reset a connection (SO_LINGER 0), so these peers are
Python's.  The protocol is soak/run.lua's: a client sends a line with a
byte count n, the server answers with n bytes, then waits for EOF.

  faults.py clients PORT N   N faulting clients, one kind after another:
      rst        connect, reset at once (often before the accept)
      rst-line   send half a request line, reset
      rst-write  ask for 1 MB, read 4 KiB, reset while the server writes
      unread     ask for 1 MB, close without reading (the kernel resets)
      half-close send a request, shutdown(SHUT_WR), read the whole answer
                 (a legitimate peer: its answer must be complete)
    prints "half-close ok K bad B"; exits 1 if any half-close answer was short
  faults.py server N         a faulting server on 127.0.0.1 (port printed):
      each connection in turn: reset at once; read the request, send half
      the answer, reset; send the whole answer and half-close (legitimate);
      close without reading.  Serves N connections, then exits (or is
      killed -9 by soak/run.lua with clients connected).
"""
import socket
import struct
import sys

LINGER0 = struct.pack("ii", 1, 0)


def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    s.close()


def recv_line(s):
    data = b""
    while not data.endswith(b"\n"):
        d = s.recv(64)
        if not d:
            break
        data += d
    return data


def clients(port, n):
    kinds = ["rst", "rst-line", "rst-write", "unread", "half-close"]
    ok = bad = 0
    for i in range(n):
        kind = kinds[i % len(kinds)]
        s = socket.create_connection(("127.0.0.1", port))
        if kind == "rst":
            reset(s)
        elif kind == "rst-line":
            s.sendall(b"12")
            reset(s)
        elif kind == "rst-write":
            s.sendall(b"1000000\n")
            got = 0
            while got < 4096:
                got += len(s.recv(4096 - got))
            reset(s)
        elif kind == "unread":
            s.sendall(b"1000000\n")
            s.close()
        else:
            s.sendall(b"100000\n")
            s.shutdown(socket.SHUT_WR)
            got = 0
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += len(d)
            s.close()
            if got == 100000:
                ok += 1
            else:
                bad += 1
                print("half-close: got %d of 100000" % got, file=sys.stderr)
    print("half-close ok %d bad %d" % (ok, bad), flush=True)
    return 1 if bad else 0


def server(n):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(512)
    print(ls.getsockname()[1], flush=True)
    for i in range(n):
        s, _ = ls.accept()
        kind = i % 4
        if kind == 0:
            reset(s)
            continue
        if kind == 3:
            s.close()
            continue
        want = int(recv_line(s) or b"0")
        if kind == 1:
            s.sendall(b"x" * (want // 2))
            reset(s)
        elif kind == 2:
            s.sendall(b"x" * want)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
            s.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "clients":
        sys.exit(clients(int(sys.argv[2]), int(sys.argv[3])))
    sys.exit(server(int(sys.argv[2])))
