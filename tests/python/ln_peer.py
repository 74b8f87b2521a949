#!/usr/bin/env python3
"""A Lightning peer built from Core Lightning's own Python code: pyln-proto (BOLT-8 transport)
and pyln-bolt1 (BOLT-1 message schema). Used by tests/lnp_peers.rs as the other side.

Usage:
  ln_peer.py connect NODE_ID HOST PORT CHAIN_HEX
      Connects, exchanges init (ours offers CHAIN_HEX in `networks`), pings asking 1000, 65532
      and 4 bytes and prints one JSON line: our view of the node's init and the pong lengths.
  ln_peer.py bad-init NODE_ID HOST PORT CHAIN_HEX FEATURES_HEX
      Sends an init with these chain and features (e.g. 10 followed by 12 zero bytes requires
      unknown bit 100); prints what the node answered until it closed.
  ln_peer.py serve CHAIN_HEX [PINGS]
      Listens on 127.0.0.1:0, prints {"node_id", "port"}, accepts one connection, exchanges
      init, answers pings until the connection ends; PINGS > 0 also times PINGS pings of its
      own and prints {"rtts_us": [...]}.
  ln_peer.py ping-bench N
      Two pyln endpoints in this process (threads) on loopback: N ping/pong round trips after
      init; prints {"rtts_us": [...]} (the pyln baseline of benches/ping_rtt.rs).
"""
import io
import json
import os
import socket
import sys
import threading
import time

from pyln.proto.message import Message
from pyln.proto.wire import LightningServerSocket, PrivateKey, PublicKey, connect
from pyln.spec.bolt1 import namespace as NS


def encode(name, **fields):
    buf = io.BytesIO()
    Message(NS.get_msgtype(name), **fields).write(buf)
    return buf.getvalue()


def send(conn, name, **fields):
    conn.send_message(encode(name, **fields))


def recv(conn):
    """(name, fields) of the next message; unknown types come back as ("unknown", type)."""
    data = conn.read_message()
    typ = int.from_bytes(data[:2], "big")
    try:
        m = Message.read(NS, io.BytesIO(data))
    except ValueError:
        return "unknown", typ
    return m.messagetype.name, m.to_py()


def nodelay(conn):
    conn.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def init_fields(chain, features=""):
    return dict(globalfeatures="", features=features,
                tlvs="{networks={chains=[" + chain + "]}}")


def dial(node_id, host, port):
    conn = connect(PrivateKey(os.urandom(32)), PublicKey(bytes.fromhex(node_id)), host, int(port))
    nodelay(conn)
    conn.connection.settimeout(10)
    return conn


def out(obj):
    print(json.dumps(obj), flush=True)


def cmd_connect(node_id, host, port, chain):
    conn = dial(node_id, host, port)
    name, their_init = recv(conn)
    assert name == "init", f"first message from the node is {name}, not init"
    send(conn, "init", **init_fields(chain))
    result = {"their_init": their_init, "pongs": {}}
    send(conn, "ping", num_pong_bytes=1000, ignored="")
    name, pong = recv(conn)
    assert name == "pong", name
    result["pongs"]["1000"] = len(bytes.fromhex(pong["ignored"]))
    # 65532 must be ignored (BOLT-1): the next pong we get must be the one for 4 bytes.
    send(conn, "ping", num_pong_bytes=65532, ignored="")
    send(conn, "ping", num_pong_bytes=4, ignored="")
    name, pong = recv(conn)
    assert name == "pong", name
    result["pongs"]["after_65532_then_4"] = len(bytes.fromhex(pong["ignored"]))
    out(result)


def cmd_bad_init(node_id, host, port, chain, features):
    conn = dial(node_id, host, port)
    name, _ = recv(conn)
    assert name == "init", name
    send(conn, "init", **init_fields(chain, features=features))
    got = []
    try:
        while True:
            name, fields = recv(conn)
            if name == "warning":
                fields = bytes.fromhex(fields["data"]).decode()
            got.append([name, fields])
    except (ValueError, OSError):
        got.append(["closed", None])
    out({"received": got})


def cmd_serve(chain, pings=0):
    key = PrivateKey(os.urandom(32))
    server = LightningServerSocket(key)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    node_id = key.public_key().serializeCompressed().hex()
    out({"node_id": node_id, "port": server.getsockname()[1]})
    conn, _ = server.accept()
    nodelay(conn)
    send(conn, "init", **init_fields(chain))
    name, their_init = recv(conn)
    assert name == "init", name
    out({"their_init": their_init})
    rtts = []
    sent_at = None
    if pings:
        sent_at = time.perf_counter()
        send(conn, "ping", num_pong_bytes=0, ignored="")
    try:
        while True:
            name, fields = recv(conn)
            if name == "ping" and fields["num_pong_bytes"] < 65532:
                send(conn, "pong", ignored="00" * fields["num_pong_bytes"])
            elif name == "pong" and sent_at is not None:
                rtts.append(int((time.perf_counter() - sent_at) * 1e6))
                if len(rtts) == pings:
                    out({"rtts_us": rtts})
                    sent_at = None
                else:
                    sent_at = time.perf_counter()
                    send(conn, "ping", num_pong_bytes=0, ignored="")
    except (ValueError, OSError):
        pass


def cmd_ping_bench(n):
    key = PrivateKey(os.urandom(32))
    server = LightningServerSocket(key)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    chain = "00" * 32

    def responder():
        conn, _ = server.accept()
        nodelay(conn)
        send(conn, "init", **init_fields(chain))
        recv(conn)
        try:
            while True:
                name, fields = recv(conn)
                if name == "ping":
                    send(conn, "pong", ignored="00" * fields["num_pong_bytes"])
        except (ValueError, OSError):
            pass

    threading.Thread(target=responder, daemon=True).start()
    conn = connect(PrivateKey(os.urandom(32)), key.public_key(), "127.0.0.1", port)
    nodelay(conn)
    recv(conn)
    send(conn, "init", **init_fields(chain))
    rtts = []
    for _ in range(n):
        t = time.perf_counter()
        send(conn, "ping", num_pong_bytes=0, ignored="")
        name, _ = recv(conn)
        assert name == "pong", name
        rtts.append(int((time.perf_counter() - t) * 1e6))
    out({"rtts_us": rtts})


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "connect":
        cmd_connect(*args)
    elif cmd == "bad-init":
        cmd_bad_init(*args)
    elif cmd == "serve":
        cmd_serve(args[0], int(args[1]) if len(args) > 1 else 0)
    elif cmd == "ping-bench":
        cmd_ping_bench(int(args[0]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
