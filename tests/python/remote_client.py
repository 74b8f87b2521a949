#!/usr/bin/env python3
"""A remote API client written from docs/API.md ("Remote API"), with pyzmq and pyln-proto's
BOLT-8 primitives: the Noise_XK handshake as the first three ZMQ messages, then one
Brontozaur packet (3-byte little-endian length) per bus message.

Usage: remote_client.py NODE_ID HOST PORT KEYFILE NODE info
       -> prints the node_info reply as JSON (KEYFILE: 32 raw bytes of the client's secret key)
"""
import json
import os
import struct
import sys

import zmq
from pyln.proto.wire import (LightningConnection, PrivateKey, PublicKey, decryptWithAD,
                             encryptWithAD, hkdf_two_keys)

from api_client import MANAGERS, Reader, decode_info


class Session:
    """The transport after the handshake: BOLT-8's, with a 3-byte little-endian length."""

    def __init__(self, conn):
        self.sk, self.rk = conn.sk, conn.rk
        self.sck = self.rck = conn.chaining_key
        self.sn = self.rn = 0

    @staticmethod
    def nonce(n):
        return b"\x00" * 4 + struct.pack("<Q", n)

    def _rotate(self):
        # BOLT-8: a key is rotated after 1,000 nonces (500 messages).
        if self.sn == 1000:
            self.sck, self.sk = hkdf_two_keys(salt=self.sck, ikm=self.sk)
            self.sn = 0
        if self.rn == 1000:
            self.rck, self.rk = hkdf_two_keys(salt=self.rck, ikm=self.rk)
            self.rn = 0

    def seal(self, plain):
        lc = encryptWithAD(self.sk, self.nonce(self.sn), b"", len(plain).to_bytes(3, "little"))
        mc = encryptWithAD(self.sk, self.nonce(self.sn + 1), b"", plain)
        self.sn += 2
        self._rotate()
        return lc + mc

    def open(self, packet):
        length = decryptWithAD(self.rk, self.nonce(self.rn), b"", packet[:19])
        n = int.from_bytes(length, "little")
        if len(packet) != 19 + n + 16:
            raise ValueError("not exactly one packet")
        plain = decryptWithAD(self.rk, self.nonce(self.rn + 1), b"", packet[19:])
        self.rn += 2
        self._rotate()
        return plain


def frames(src, dst, payload):
    """The plaintext of a bus message: u16 LE length and src, the same for dst, the payload."""
    return struct.pack("<H", len(src)) + src + struct.pack("<H", len(dst)) + dst + payload


def unframe(plain):
    n = struct.unpack("<H", plain[:2])[0]
    src, rest = plain[2:2 + n], plain[2 + n:]
    m = struct.unpack("<H", rest[:2])[0]
    return src, rest[2:2 + m], rest[2 + m:]


def main():
    node_id, host, port, keyfile, node, command = sys.argv[1:7]
    with open(keyfile, "rb") as f:
        local = PrivateKey(f.read())
    remote = PublicKey(bytes.fromhex(node_id))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://{host}:{port}")
    # The handshake: BOLT-8's three acts, each one ZMQ message.
    conn = LightningConnection(None, remote, local, is_initiator=True)
    sock.send(conn.handshake_act_one_initiator())
    if not sock.poll(5000):
        sys.exit("no act two within 5 s")
    conn.handshake_act_two_initiator(sock.recv())
    sock.send(conn.handshake_act_three_initiator())
    session = Session(conn)
    # A request, as on a local bus, encrypted.
    me = bytes([0x02]) + os.urandom(8)
    dst = bytes([MANAGERS[node]])
    request_id = 9
    if command != "info":
        sys.exit(f"unknown command {command}")
    payload = struct.pack("<HQ", 0x0100, request_id)
    sock.send(session.seal(frames(me, dst, payload)))
    while True:
        if not sock.poll(10000):
            sys.exit("no reply within 10 s (is this key on the node's allow-list?)")
        src, to, reply = unframe(session.open(sock.recv()))
        type_id, rid = struct.unpack("<HQ", reply[:10])
        if rid != request_id or type_id == 0x0003:
            continue
        if type_id != 0x0101:
            sys.exit(f"unexpected type {type_id:#06x}")
        r = Reader(reply[10:])
        out = decode_info(r)
        if r.pos != len(r.data) or to != me:
            sys.exit("a malformed reply")
        print(json.dumps(out))
        return


if __name__ == "__main__":
    main()
