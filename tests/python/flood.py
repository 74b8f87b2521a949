#!/usr/bin/env python3
"""Attackers for tests/admission.rs, each on its own loopback source addresses.

  flood.py slowloris HOST PORT FIRST_SRC ADDRS PER_ADDR SECONDS
      ADDRS x PER_ADDR sockets from 127.0.0.FIRST_SRC.., each sending one byte of act 1 per
      second, reopened 1 s after the node closes them; prints {"opened", "closed"} at the end.
  flood.py hold HOST PORT SRC N [WAIT]
      N silent connections from SRC, one after the other; prints, for each, whether the node
      closed it within WAIT seconds (1 by default), and whether it was closed by the end:
      {"closed": [false, ..., true], "closed_by_end": [true, ..., false]}.
  flood.py refused HOST PORT SRC HOLD N
      HOLD silent connections from SRC (kept open), then N connections from SRC opened and
      closed at once; prints {"connected": n}.
  flood.py frames ENDPOINT N MANAGER
      N one-frame garbage messages to a bus endpoint (pyzmq DEALER), then `info` to the
      manager (hex id, e.g. 20) on the same socket: its reply means the node has read them
      all; prints {"sent": N}.
"""
import json
import selectors
import socket
import sys
import time


def connect(host, port, src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(5)
    s.connect((host, port))
    return s


def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def slowloris(host, port, first, addrs, per, seconds):
    sel = selectors.DefaultSelector()
    srcs = [f"127.0.0.{first + i}" for i in range(addrs)]
    reopen = []  # (time, src)
    opened = closed = 0
    socks = {}

    def open_one(src):
        nonlocal opened
        try:
            s = connect(host, port, src)
        except OSError:
            reopen.append((time.time() + 1, src))
            return
        s.setblocking(False)
        opened += 1
        socks[s] = src
        sel.register(s, selectors.EVENT_READ)

    for src in srcs:
        for _ in range(per):
            open_one(src)
    end = time.time() + seconds
    next_drip = time.time()
    while time.time() < end:
        for key, _ in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                src = socks.pop(s)
                s.close()
                closed += 1
                reopen.append((time.time() + 1, src))
        now = time.time()
        if now >= next_drip:
            next_drip = now + 1
            for s in list(socks):
                try:
                    s.send(b"\x00")
                except OSError:
                    pass
        due = [r for r in reopen if r[0] <= now]
        reopen[:] = [r for r in reopen if r[0] > now]
        for _, src in due:
            open_one(src)
    print(json.dumps({"opened": opened, "closed": closed}))


def hold(host, port, src, n, wait):
    kept, closed = [], []
    for _ in range(n):
        s = connect(host, port, src)
        closed.append(closed_within(s, wait))
        kept.append(s)
    by_end = [c or closed_within(s, 0.2) for c, s in zip(closed, kept)]
    print(json.dumps({"closed": closed, "closed_by_end": by_end}))
    sys.stdout.flush()
    # Keep them open until told to stop (stdin closes).
    sys.stdin.read()


def refused(host, port, src, holding, n):
    kept = [connect(host, port, src) for _ in range(holding)]
    connected = 0
    for _ in range(n):
        try:
            s = connect(host, port, src)
            connected += 1
            s.close()
        except OSError:
            time.sleep(0.001)
    print(json.dumps({"connected": connected}))
    for s in kept:
        s.close()


def frames(endpoint, n, manager):
    import os
    import struct

    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    me = b"\x02" + os.urandom(8)
    sock.setsockopt(zmq.IDENTITY, me)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.connect(endpoint)
    for _ in range(n):
        sock.send(b"\xde\xad\xbe\xef")
    # One socket is read in order: the answer to `info` comes after every garbage frame.
    sock.send_multipart([me, bytes.fromhex(manager), struct.pack("<HQ", 0x0100, 1)])
    if not sock.poll(120000):
        sys.exit("no answer to info within 120 s")
    sock.recv_multipart()
    sock.close()
    ctx.term()
    print(json.dumps({"sent": n}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "slowloris":
        slowloris(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]), float(args[5]))
    elif cmd == "hold":
        hold(args[0], int(args[1]), args[2], int(args[3]), float(args[4]) if len(args) > 4 else 1.0)
    elif cmd == "refused":
        refused(args[0], int(args[1]), args[2], int(args[3]), int(args[4]))
    elif cmd == "frames":
        frames(args[0], int(args[1]), args[2])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
