#!/usr/bin/env python3
"""A Storm STORE client and extension app written from docs/API.md alone, with pyzmq.

Usage: storm_client.py store DATA_DIR   -> put/get, store_chunk/retrieve_chunk, bad input
       storm_client.py app DATA_DIR     -> an extension app on the STORM bus
       storm_client.py peer DIR_A DIR_B NODE_ID_A NODE_ID_B CONTAINER_ID
                                        -> an app of the same id on two Storm nodes (each
                                           joined to an LNP node, the LNP nodes Bifrost peers):
                                           app messages both ways, then A offers a container to
                                           B for that app, B accepts it, B's app is told

Each check that fails raises; the last line printed is "ok" with a JSON summary.
"""
import json
import os
import struct
import sys
import time

import zmq

STORED = b"\xff" + struct.pack("<H", 6) + b"stored"
STORMD = b"\x50"
HELLO_ID = "f28ec83406d9fa6bc8b11b6b4aaccd458d1482a0e1ba5b0c9867df3130465200"


def s(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b


def value(b):
    return struct.pack("<I", len(b)) + b


class Client:
    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.me = b"\x02" + os.urandom(8)
        self.sock.setsockopt(zmq.IDENTITY, self.me)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.next = 1
        self.waiting = []  # messages that arrived while a reply was awaited

    def send(self, dst, type_id, body=b""):
        rid = self.next
        self.next += 1
        self.sock.send_multipart([self.me, dst, struct.pack("<HQ", type_id, rid) + body])
        return rid

    def recv(self, timeout_ms=10000):
        if self.waiting:
            return self.waiting.pop(0)
        if not self.sock.poll(timeout_ms):
            raise AssertionError("no message within %d ms" % timeout_ms)
        src, dst, payload = self.sock.recv_multipart()
        type_id, rid = struct.unpack("<HQ", payload[:10])
        return type_id, rid, payload[10:]

    def request(self, dst, type_id, body=b""):
        rid = self.send(dst, type_id, body)
        return self.reply_to(rid)

    def reply_to(self, rid):
        kept = []
        try:
            while True:
                t, r, body = self.recv()
                if r == rid and t != 0x0003:
                    return t, body
                kept.append((t, r, body))
        finally:
            self.waiting.extend(kept)

    def raw(self, dst, payload):
        """Sends a payload frame as given (for bad input); returns the final reply."""
        self.sock.send_multipart([self.me, dst, payload])
        rid = struct.unpack("<Q", payload[2:10])[0] if len(payload) >= 10 else 0
        return self.reply_to(rid)


def failure(t, body):
    assert t == 0x0002, "expected a failure, got type %#06x" % t
    return struct.unpack("<H", body[:2])[0]


def expect(t, body, want):
    if t == 0x0002:
        code = struct.unpack("<H", body[:2])[0]
        raise AssertionError("failure %#06x: %s" % (code, body[4:].decode()))
    assert t == want, "expected type %#06x, got %#06x" % (want, t)
    return body


def store(data_dir):
    c = Client("ipc://" + os.path.join(data_dir, "store"))
    out = {}
    key = os.urandom(32)
    val = os.urandom(1000)
    t, body = c.request(STORED, 0x0504, s("pytable") + key + value(val))
    assert t == 0x0001, "put: type %#06x" % t
    body = expect(*c.request(STORED, 0x0505, s("pytable") + key), 0x0506)
    n = struct.unpack("<I", body[:4])[0]
    assert body[4:4 + n] == val and len(body) == 4 + n, "get returned other bytes"
    out["put_get"] = True

    body = expect(*c.request(STORED, 0x0508, s("chunks") + value(b"hello")), 0x0509)
    assert body.hex() == HELLO_ID, "chunk id %s" % body.hex()
    out["chunk_id"] = body.hex()
    body = expect(*c.request(STORED, 0x050A, s("chunks") + bytes.fromhex(HELLO_ID)), 0x0506)
    assert body == value(b"hello"), "retrieve_chunk returned %r" % body
    out["retrieve_chunk"] = True

    body = expect(*c.request(STORED, 0x0502, s("pytable")), 0x0503)
    assert struct.unpack("<Q", body)[0] == 1

    # Bad input: each gets its documented code, and the node keeps serving.
    codes = {}
    codes["bad_table"] = failure(*c.request(STORED, 0x0505, s("Bad Table!") + key))
    big = 1048576 + 1
    codes["oversized_value"] = failure(*c.raw(
        STORED, struct.pack("<HQ", 0x0504, 900) + s("pytable") + key + struct.pack("<I", big) + b"x" * 64))
    codes["short_key"] = failure(*c.request(STORED, 0x0505, s("pytable") + key[:31]))
    codes["long_key"] = failure(*c.request(STORED, 0x0505, s("pytable") + key + b"\x00"))
    codes["unknown_operation"] = failure(*c.request(STORED, 0x05FF, b""))
    codes["truncated"] = failure(*c.raw(STORED, struct.pack("<HQ", 0x0504, 901) + s("pytable")[:3]))
    codes["absent_key"] = failure(*c.request(STORED, 0x0505, s("pytable") + os.urandom(32)))
    want = {"bad_table": 0x1003, "oversized_value": 0x1002, "short_key": 0x1000,
            "long_key": 0x1000, "unknown_operation": 0x1001, "truncated": 0x1000,
            "absent_key": 0x6001}
    assert codes == want, "codes %r" % codes
    out["bad_input_codes"] = {k: "%#06x" % v for k, v in codes.items()}
    body = expect(*c.request(STORED, 0x0505, s("pytable") + key), 0x0506)
    assert body[4:] == val, "still serving after bad input"
    out["serving_after_bad_input"] = True
    return out


def containers(c):
    body = expect(*c.request(STORMD, 0x0522), 0x0523)
    pos, n = 2, struct.unpack("<H", body[:2])[0]
    found = []
    for _ in range(n):
        cid = body[pos:pos + 32]
        pos += 32
        version, = struct.unpack("<H", body[pos:pos + 2])
        pos += 2
        ml = struct.unpack("<H", body[pos:pos + 2])[0]
        mime = body[pos + 2:pos + 2 + ml].decode()
        pos += 2 + ml
        il = struct.unpack("<H", body[pos:pos + 2])[0]
        info = body[pos + 2:pos + 2 + il].decode()
        pos += 2 + il
        size, chunks = struct.unpack("<QI", body[pos:pos + 12])
        pos += 12
        found.append({"id": cid.hex(), "mime": mime, "info": info, "size": size, "chunks": chunks})
    assert pos == len(body), "trailing bytes in container_list"
    return found


def app(data_dir):
    endpoint = "ipc://" + os.path.join(data_dir, "storm")
    a = Client(endpoint)
    b = Client(endpoint)
    out = {}
    reg = a.send(STORMD, 0x0530, struct.pack("<H", 0x8001) + s("pyapp"))
    t, body = a.reply_to(reg)
    assert t == 0x0001, "register_app: type %#06x" % t
    out["registered"] = True
    out["containers"] = containers(a)
    out["taken_code"] = "%#06x" % failure(*b.request(STORMD, 0x0530, struct.pack("<H", 0x8001) + s("thief")))
    # b sends to the app; a receives it with the request id of its registration.
    t, body = b.request(STORMD, 0x0531, struct.pack("<H", 0x8001) + value(b"hi app"))
    assert t == 0x0001, "app_send: type %#06x" % t
    while True:
        t, rid, body = a.recv()
        if t == 0x0532:
            break
    assert rid == reg, "app_message carries request id %d, not %d" % (rid, reg)
    app_id = struct.unpack("<H", body[:2])[0]
    fl = struct.unpack("<H", body[2:4])[0]
    sender = body[4:4 + fl].decode()
    payload = body[4 + fl + 4:]
    assert (app_id, payload) == (0x8001, b"hi app"), (app_id, payload)
    out["app_message"] = {"from": sender, "payload": payload.decode()}
    out["unregistered_code"] = "%#06x" % failure(
        *b.request(STORMD, 0x0531, struct.pack("<H", 0x9999) + value(b"x")))
    body = expect(*b.request(STORMD, 0x0533), 0x0534)
    n = struct.unpack("<H", body[:2])[0]
    assert n == 1 and struct.unpack("<H", body[2:4])[0] == 0x8001, body.hex()
    out["apps"] = n
    return out


def transfer(body, pos):
    """One `transfer` of a transfer list or notification; the entry and the next position."""
    cid, peer = body[pos:pos + 32], body[pos + 32:pos + 65]
    app_id, state = struct.unpack("<HB", body[pos + 65:pos + 68])
    size, chunks, have, had, fetched, served = struct.unpack("<QIIIII", body[pos + 68:pos + 96])
    nl = struct.unpack("<H", body[pos + 96:pos + 98])[0]
    note = body[pos + 98:pos + 98 + nl].decode()
    entry = {"container_id": cid.hex(), "peer": peer.hex(), "app": app_id, "state": state,
             "size": size, "chunks": chunks, "have": have, "fetched": fetched, "note": note}
    return entry, pos + 98 + nl


def app_message(c, reg):
    """The next app_message to the app registered with request id `reg`."""
    while True:
        t, rid, body = c.recv()
        if t == 0x0532:
            break
    assert rid == reg, "app_message carries request id %d, not %d" % (rid, reg)
    fl = struct.unpack("<H", body[2:4])[0]
    sender = body[4:4 + fl].decode()
    return struct.unpack("<H", body[:2])[0], sender, body[4 + fl + 4:]


def peer(dir_a, dir_b, id_a, id_b, container):
    app_id = 0x8001
    a = Client("ipc://" + os.path.join(dir_a, "storm"))
    b = Client("ipc://" + os.path.join(dir_b, "storm"))
    regs = []
    for c in (a, b):
        rid = c.send(STORMD, 0x0530, struct.pack("<H", app_id) + s("pypeer"))
        t, _ = c.reply_to(rid)
        assert t == 0x0001, "register_app: type %#06x" % t
        regs.append(rid)
    out = {}
    # A's app to B's app, then back (app_send_to: node id, app, payload).
    for (src, dst, reg, to, frm, text) in ((a, b, regs[1], id_b, id_a, b"ping from A"),
                                            (b, a, regs[0], id_a, id_b, b"pong from B")):
        expect(*src.request(STORMD, 0x0535, bytes.fromhex(to) + struct.pack("<H", app_id)
                            + value(text)), 0x0001)
        got = app_message(dst, reg)
        assert got == (app_id, frm, text), got
        out[text.decode()] = {"from": got[1]}
    # A offers the container to B for this app; B's app accepts it once it is offered and is
    # told when it is stored.
    expect(*a.request(STORMD, 0x0550, bytes.fromhex(id_b) + bytes.fromhex(container)
                      + struct.pack("<H", app_id)), 0x0001)
    for _ in range(100):
        body = expect(*b.request(STORMD, 0x0552), 0x0553)
        n, pos, offered = struct.unpack("<H", body[:2])[0], 2, False
        for _ in range(n):
            e, pos = transfer(body, pos)
            offered |= e["container_id"] == container and e["state"] == 0
        assert pos == len(body), "trailing bytes in transfer_list"
        if offered:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("B was not offered the container")
    expect(*b.request(STORMD, 0x0551, bytes.fromhex(container)), 0x0001)
    while True:
        t, rid, body = b.recv(30000)
        if t == 0x0556:
            break
    assert rid == regs[1], "container_received carries request id %d, not %d" % (rid, regs[1])
    e, end = transfer(body, 0)
    assert end == len(body)
    assert (e["container_id"], e["peer"], e["app"], e["state"]) == (container, id_a, app_id, 4), e
    out["container_received"] = e
    return out


def main():
    mode = sys.argv[1]
    if mode == "peer":
        out = peer(*sys.argv[2:7])
    elif mode == "store":
        out = store(sys.argv[2])
    else:
        out = app(sys.argv[2])
    print("ok " + json.dumps(out))


if __name__ == "__main__":
    main()
