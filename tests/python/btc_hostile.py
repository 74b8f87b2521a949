#!/usr/bin/env python3
"""Hostile Bitcoin peers for the BP tests, written from the protocol (plain struct + hashlib;
python-bitcoinlib's msg_headers mis-parses header lists).

Usage: btc_hostile.py HOST PORT CASE
Each case opens its own connection(s) to a regtest node (source addresses 127.0.0.x so that a
discouraged address does not block the next case) and prints one JSON line.

Cases:
  bad_magic        a version with mainnet's magic                 -> {"closed": true}
  bad_checksum     a ping with a wrong checksum, then a good ping   -> {"pong": 7}
  oversize         a header declaring 4,000,001 bytes, no payload -> {"closed": true}
  bad_pow          headers with a block that misses its target     -> {"closed": true, "refused_after": true}
  unconnecting     headers whose parent nobody knows, 15 times    -> {"closed_after": N}
  junk_flood       200 unknown 100-kB messages, then a ping        -> {"pong": 9, "sent_bytes": ...}
  take_tx          (honest) prints "ready", waits for a tx inv, asks for it -> {"inv_type", "tx"}
  feefilter        (honest) sends BIP133 feefilter RATE (sat/kvB, the 4th argument), prints
                   "ready", answers pings until stdin closes (prints nothing more)

Block cases (usage: btc_hostile.py HOST PORT CASE FILE HEIGHT): FILE holds the raw blocks of a
chain, heights 1.. one hex line each. The peer serves that chain's headers and blocks honestly,
except the block at HEIGHT, which it sends broken; it prints one line when the node closes:
{"closed": true, "served": N (honest blocks sent), "bad_sent": bool, "refused_after": bool}
  bad_merkle       block HEIGHT with its last transaction changed (header unchanged)
  mutated          block HEIGHT with its last transaction repeated (same merkle root, CVE-2012-2459)
  heavy            the chain up to HEIGHT - 1, then a block of its own at HEIGHT with a valid
                   header and merkle root whose stripped size is above 1,000,000 bytes
  unrequested      block HEIGHT sent right after the handshake, unasked
"""
import hashlib
import json
import os
import socket
import struct
import sys
import time

REGTEST = bytes.fromhex("fabfb5da")
MAINNET = bytes.fromhex("f9beb4d9")
REGTEST_GENESIS = bytes.fromhex(
    "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f")


def sha256d(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def frame(command, payload, magic=REGTEST, checksum=None):
    cmd = command.encode().ljust(12, b"\0")
    ck = sha256d(payload)[:4] if checksum is None else checksum
    return magic + cmd + struct.pack("<I", len(payload)) + ck + payload


def version_payload():
    addr = struct.pack("<Q", 0) + b"\0" * 10 + b"\xff\xff" + bytes([127, 0, 0, 1]) + struct.pack(">H", 0)
    ua = b"/hostile:0.1/"
    return (struct.pack("<iQq", 70016, 0, int(time.time())) + addr + addr
            + os.urandom(8) + bytes([len(ua)]) + ua + struct.pack("<i", 0) + b"\0")


class Peer:
    def __init__(self, host, port, source):
        self.s = socket.socket()
        self.s.bind((source, 0))
        self.s.settimeout(10)
        self.s.connect((host, port))
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def recv_msg(self):
        """(command, payload), or None when the node closed the connection."""
        while True:
            if len(self.buf) >= 24:
                length = struct.unpack("<I", self.buf[16:20])[0]
                if len(self.buf) >= 24 + length:
                    cmd = self.buf[4:16].rstrip(b"\0").decode()
                    payload = self.buf[24:24 + length]
                    self.buf = self.buf[24 + length:]
                    return cmd, payload
            try:
                chunk = self.s.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def handshake(self):
        self.send(frame("version", version_payload()))
        got_version = got_verack = False
        while not (got_version and got_verack):
            m = self.recv_msg()
            assert m is not None, "closed during the handshake"
            if m[0] == "version":
                got_version = True
                self.send(frame("verack", b""))
            elif m[0] == "verack":
                got_verack = True

    def ping(self, nonce):
        """Sends a ping; returns the nonce of the pong, or None if the node closed."""
        self.send(frame("ping", struct.pack("<Q", nonce)))
        while True:
            m = self.recv_msg()
            if m is None:
                return None
            if m[0] == "pong":
                return struct.unpack("<Q", m[1])[0]

    def closed(self):
        """Reads until EOF (True) or the 10 s timeout (False)."""
        try:
            while self.recv_msg() is not None:
                pass
            return True
        except socket.timeout:
            return False


def header(prev, nonce_pred):
    """A regtest header on `prev` whose hash meets the target (or misses it if asked)."""
    t = int(time.time())
    for nonce in range(1 << 20):
        h = struct.pack("<i", 0x20000000) + prev + os.urandom(32) + struct.pack("<III", t, 0x207fffff, nonce)
        meets = int.from_bytes(sha256d(h), "little") <= 0x7fffff << (8 * (0x20 - 3))
        if nonce_pred(meets):
            return h
    raise RuntimeError("no header found")


def headers_msg(hs):
    return frame("headers", bytes([len(hs)]) + b"".join(h + b"\0" for h in hs))


def read_varint(b, i):
    n = b[i]
    if n < 0xfd:
        return n, i + 1
    size = {0xfd: 2, 0xfe: 4, 0xff: 8}[n]
    return int.from_bytes(b[i + 1:i + 1 + size], "little"), i + 1 + size


def varint(n):
    if n < 0xfd:
        return bytes([n])
    if n <= 0xffff:
        return b"\xfd" + struct.pack("<H", n)
    return b"\xfe" + struct.pack("<I", n)


def split_txs(block):
    """The serialized transactions of a raw block (witness serialization kept)."""
    n, i = read_varint(block, 80)
    txs = []
    for _ in range(n):
        start = i
        i += 4
        segwit = block[i] == 0 and block[i + 1] == 1
        if segwit:
            i += 2
        nin, i = read_varint(block, i)
        for _ in range(nin):
            i += 36
            ln, i = read_varint(block, i)
            i += ln + 4
        nout, i = read_varint(block, i)
        for _ in range(nout):
            i += 8
            ln, i = read_varint(block, i)
            i += ln
        if segwit:
            for _ in range(nin):
                items, i = read_varint(block, i)
                for _ in range(items):
                    ln, i = read_varint(block, i)
                    i += ln
        i += 4
        txs.append(block[start:i])
    return txs


def merkle(hashes):
    while len(hashes) > 1:
        if len(hashes) % 2:
            hashes.append(hashes[-1])
        hashes = [sha256d(hashes[k] + hashes[k + 1]) for k in range(0, len(hashes), 2)]
    return hashes[0]


def heavy_block(prev_block, like):
    """A block on `prev_block` (raw) with `like`'s coinbase and a 1,000,100-byte output."""
    coinbase = split_txs(like)[0]
    big = (struct.pack("<i", 1) + b"\x01" + os.urandom(32) + struct.pack("<I", 0) + b"\x00"
           + struct.pack("<I", 0xffffffff) + b"\x01" + struct.pack("<q", 0)
           + varint(1_000_100) + b"\x51" * 1_000_100 + struct.pack("<I", 0))
    root = merkle([sha256d(coinbase), sha256d(big)])
    prev = sha256d(prev_block[:80])
    t = struct.unpack("<I", like[68:72])[0]
    for nonce in range(1 << 20):
        h = like[:4] + prev + root + struct.pack("<III", t, 0x207fffff, nonce)
        if int.from_bytes(sha256d(h), "little") <= 0x7fffff << (8 * (0x20 - 3)):
            return h + b"\x02" + coinbase + big
    raise RuntimeError("no header found")


def serve_chain(p, blocks, height, case):
    """Serves `blocks` (heights 1..) as the case says until the node closes; returns counts."""
    chain = list(blocks)
    bad = None
    if case == "bad_merkle":
        b = chain[height - 1]
        bad = b[:-1] + bytes([b[-1] ^ 1])
    elif case == "mutated":
        b = chain[height - 1]
        txs = split_txs(b)
        assert len(txs) % 2 == 1 and len(txs) > 1, "mutation needs an odd count above 1"
        bad = b[:80] + varint(len(txs) + 1) + b"".join(txs) + txs[-1]
    elif case == "heavy":
        bad = heavy_block(chain[height - 2], chain[height - 1])
        chain = chain[:height - 1] + [bad]
    elif case == "unrequested":
        p.send(frame("block", chain[height - 1]))
    by_hash = {sha256d(b[:80]): (k + 1, b) for k, b in enumerate(chain)}
    served, bad_sent = 0, False
    while True:
        try:
            m = p.recv_msg()
        except socket.timeout:
            return served, bad_sent, False
        if m is None:
            return served, bad_sent, True
        cmd, payload = m
        try:
            if cmd == "ping":
                p.send(frame("pong", payload))
            elif cmd == "getheaders":
                hs = [b[:80] for b in chain[:2000]]
                p.send(frame("headers", varint(len(hs)) + b"".join(h + b"\0" for h in hs)))
            elif cmd == "getdata":
                n, i = read_varint(payload, 0)
                for _ in range(n):
                    kind = struct.unpack("<I", payload[i:i + 4])[0]
                    h = payload[i + 4:i + 36]
                    i += 36
                    if kind & 0xff != 2 or h not in by_hash:
                        continue
                    k, b = by_hash[h]
                    if k == height and bad is not None:
                        p.send(frame("block", bad))
                        bad_sent = True
                    else:
                        p.send(frame("block", b))
                        served += 1
        except (BrokenPipeError, ConnectionResetError):
            return served, bad_sent, True


def select_stdin_closed():
    import select
    r, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(r) and sys.stdin.read(1) == ""


def main():
    host, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    source = {"bad_magic": "127.0.0.2", "bad_checksum": "127.0.0.3", "oversize": "127.0.0.4",
              "bad_pow": "127.0.0.5", "unconnecting": "127.0.0.6", "junk_flood": "127.0.0.7",
              "take_tx": "127.0.0.8", "bad_merkle": "127.0.0.9", "mutated": "127.0.0.10",
              "heavy": "127.0.0.11", "unrequested": "127.0.0.12", "feefilter": "127.0.0.13"}[case]
    p = Peer(host, port, source)
    if case in ("bad_merkle", "mutated", "heavy", "unrequested"):
        with open(sys.argv[4]) as f:
            blocks = [bytes.fromhex(line.strip()) for line in f if line.strip()]
        p.s.settimeout(20)
        p.handshake()
        served, bad_sent, closed = serve_chain(p, blocks, int(sys.argv[5]), case)
        out = {"closed": closed, "served": served, "bad_sent": bad_sent or case == "unrequested"}
        again = Peer(host, port, source)
        out["refused_after"] = again.closed()
    elif case == "feefilter":
        p.handshake()
        p.send(frame("feefilter", struct.pack("<q", int(sys.argv[4]))))
        print("ready", flush=True)
        p.s.settimeout(0.5)
        while not select_stdin_closed():
            try:
                m = p.recv_msg()
            except socket.timeout:
                continue
            if m is None:
                break
            if m[0] == "ping":
                p.send(frame("pong", m[1]))
        return  # the test stopped reading: nothing more to print
    elif case == "bad_magic":
        p.send(frame("version", version_payload(), magic=MAINNET))
        out = {"closed": p.closed()}
    elif case == "bad_checksum":
        p.handshake()
        p.send(frame("ping", struct.pack("<Q", 5), checksum=b"\0\0\0\0"))
        out = {"pong": p.ping(7)}
    elif case == "oversize":
        p.handshake()
        p.send(REGTEST + b"block".ljust(12, b"\0") + struct.pack("<I", 4_000_001) + b"\0" * 4)
        out = {"closed": p.closed()}
    elif case == "bad_pow":
        p.handshake()
        p.send(headers_msg([header(REGTEST_GENESIS, lambda meets: not meets)]))
        out = {"closed": p.closed()}
        again = Peer(host, port, source)
        out["refused_after"] = again.closed()
    elif case == "unconnecting":
        p.handshake()
        # The node starts syncing from us: take its first getheaders before counting answers.
        while p.recv_msg()[0] != "getheaders":
            pass
        sent = 0
        for _ in range(15):
            try:
                p.send(headers_msg([header(os.urandom(32), lambda meets: meets)]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            # Wait for the node's getheaders in answer (or the close).
            while True:
                m = p.recv_msg()
                if m is None or m[0] == "getheaders":
                    break
            if m is None:
                break
        out = {"closed_after": sent, "closed": p.closed()}
    elif case == "junk_flood":
        p.handshake()
        junk = frame("junk", os.urandom(100_000))
        for _ in range(200):
            p.send(junk)
        out = {"pong": p.ping(9), "sent_bytes": 200 * len(junk)}
    elif case == "take_tx":
        p.handshake()
        print("ready", flush=True)
        while True:
            m = p.recv_msg()
            assert m is not None, "closed before a tx inv"
            if m[0] == "inv" and m[1][0] == 1:
                inv_type = struct.unpack("<I", m[1][1:5])[0]
                if inv_type in (1, 5):
                    p.send(frame("getdata", m[1]))
                    break
        while True:
            m = p.recv_msg()
            assert m is not None, "closed before the tx"
            if m[0] == "tx":
                out = {"inv_type": inv_type, "tx": m[1].hex()}
                break
    else:
        sys.exit(f"unknown case {case}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
