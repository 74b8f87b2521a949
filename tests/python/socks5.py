#!/usr/bin/env python3
"""A small SOCKS5 server (RFC 1928, CONNECT, no authentication) for tests: it logs every
request as a JSON line {"atyp": 1|3|4, "host": ..., "port": ...} and maps names to local
addresses, the way Tor maps .onion names to hidden services.

Usage: socks5.py PORT_FILE LOG_FILE [NAME:PORT=HOST:PORT ...]
  PORT_FILE gets the port it listens on (127.0.0.1), LOG_FILE the requests. A name that ends
  in .onion and is not mapped is refused (host unreachable); other targets are dialled.
"""
import asyncio
import json
import socket
import struct
import sys


def main():
    port_file, log_file = sys.argv[1], sys.argv[2]
    mapping = {}
    for m in sys.argv[3:]:
        name, target = m.split("=")
        host, port = target.rsplit(":", 1)
        mapping[name] = (host, int(port))
    log = open(log_file, "a", buffering=1)

    def close(writer):
        try:
            writer.close()
        except Exception:
            pass

    async def pipe(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            close(writer)

    async def handle(reader, writer):
        try:
            ver, n = await reader.readexactly(2)
            methods = await reader.readexactly(n)
            if ver != 5 or 0 not in methods:
                writer.write(b"\x05\xff")
                return
            writer.write(b"\x05\x00")
            ver, cmd, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
            elif atyp == 3:
                (length,) = await reader.readexactly(1)
                host = (await reader.readexactly(length)).decode()
            elif atyp == 4:
                host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
            else:
                return
            (port,) = struct.unpack(">H", await reader.readexactly(2))
            log.write(json.dumps({"atyp": atyp, "host": host, "port": port}) + "\n")
            target = mapping.get(f"{host}:{port}")
            if target is None and host.endswith(".onion"):
                writer.write(b"\x05\x04\x00\x01" + b"\x00" * 6)
                return
            target = target or (host, port)
            try:
                r2, w2 = await asyncio.open_connection(*target)
            except OSError:
                writer.write(b"\x05\x05\x00\x01" + b"\x00" * 6)
                return
            writer.write(b"\x05\x00\x00\x01" + b"\x00" * 6)
            await writer.drain()
            await asyncio.gather(pipe(reader, w2), pipe(r2, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            close(writer)

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with open(port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.rename(port_file + ".tmp", port_file)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
