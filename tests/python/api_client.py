#!/usr/bin/env python3
"""A node API client written from docs/API.md alone, with pyzmq.

Usage: api_client.py ENDPOINT NODE info        -> prints the node_info reply as JSON
       api_client.py ENDPOINT NODE crash SVC   -> prints the reply to `debug crash` as JSON
       api_client.py ENDPOINT lnp listen ADDR  -> prints {"listening": "host:port"}, the
                                                  address the node bound (API version 2)
"""
import json
import os
import struct
import sys

import zmq

MANAGERS = {"lnp": 0x20, "bp": 0x30, "rgb": 0x40, "storm": 0x50}
STATES = ["running", "restarting", "stopped"]


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated reply")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        return self.take(self.u16()).decode("utf-8")

    def opt_string(self):
        tag = self.u8()
        return None if tag == 0 else self.string()


def decode_info(r):
    info = {
        "node": r.string(), "version": r.string(), "network": r.string(),
        "node_id": r.take(33).hex(), "uptime_s": r.u64(),
        "endpoints": [{"bus": r.string(), "endpoint": r.string()} for _ in range(r.u16())],
    }
    services = []
    for _ in range(r.u16()):
        services.append({"name": r.string(), "state": STATES[r.u8()],
                         "restarts": r.u32(), "last_failure": r.opt_string()})
    info["services"] = services
    # Node-specific details: key, tag (0 u64, 1 text, 2 list of texts), value.
    for _ in range(r.u16()):
        key, tag = r.string(), r.u8()
        if tag == 0:
            info[key] = r.u64()
        elif tag == 1:
            info[key] = r.string()
        elif tag == 2:
            info[key] = [r.string() for _ in range(r.u16())]
        else:
            raise ValueError(f"bad detail tag {tag}")
    return info


def main():
    endpoint, node, command = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    me = bytes([0x02]) + struct.pack("<Q", int.from_bytes(os.urandom(8), "little"))
    sock.setsockopt(zmq.IDENTITY, me)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    dst = bytes([MANAGERS[node]])
    request_id = 7
    if command == "info":
        payload = struct.pack("<HQ", 0x0100, request_id)
    elif command == "crash":
        name = sys.argv[4].encode()
        payload = struct.pack("<HQH", 0x01F0, request_id, len(name)) + name
    elif command == "listen":
        addr = sys.argv[4].encode()
        payload = struct.pack("<HQH", 0x0200, request_id, len(addr)) + addr
    else:
        sys.exit(f"unknown command {command}")
    sock.send_multipart([me, dst, payload])
    while True:
        if not sock.poll(10000):
            sys.exit("no reply within 10 s")
        src, to, reply = sock.recv_multipart()
        type_id, rid = struct.unpack("<HQ", reply[:10])
        if rid != request_id or type_id == 0x0003:  # not ours, or progress
            continue
        r = Reader(reply[10:])
        if type_id == 0x0101:
            out = decode_info(r)
        elif type_id == 0x0207:  # listening: addr (string)
            out = {"listening": r.string()}
        elif type_id == 0x0001:
            out = {"ok": True, "message": r.opt_string()}
        elif type_id == 0x0002:
            out = {"ok": False, "code": r.u16(), "message": r.string()}
        else:
            sys.exit(f"unexpected type {type_id:#06x}")
        if r.pos != len(r.data):
            sys.exit("trailing bytes in reply")
        print(json.dumps(out))
        return


if __name__ == "__main__":
    main()
