#!/usr/bin/env python3
"""Bounded test traffic for netrec's privileged end-to-end tests.

Run inside a test network namespace only (the tests create it); every mode sends a fixed
number of packets to the one address given and stops by itself. Never point it elsewhere.

  gen.py tcp-server PORT BYTES          accept one connection, read BYTES, reply with BYTES, close
  gen.py tcp-client HOST PORT BYTES     connect, send BYTES, read BYTES back, close
  gen.py udp-server PORT COUNT          receive COUNT datagrams (or time out after 5 s)
  gen.py udp-client HOST PORT COUNT SIZE
  gen.py syn-flood SRC_NET HOST PORT COUNT   raw SYNs from spoofed sources within SRC_NET (/24)
  gen.py port-scan HOST FIRST LAST      one connect() per port (closed ports answer RST)
"""
import os
import socket
import struct
import sys
import time

DEADLINE = time.monotonic() + 20  # hard bound for every mode


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def syn_packet(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), seq & 0xFFFF, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main() -> int:
    mode = sys.argv[1]
    if mode == "tcp-server":
        port, nbytes = int(sys.argv[2]), int(sys.argv[3])
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(1)
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(10)
        got = 0
        while got < nbytes and time.monotonic() < DEADLINE:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        conn.sendall(b"r" * nbytes)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass
        conn.close()
        print(got)
    elif mode == "tcp-client":
        host, port, nbytes = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        for _ in range(50):  # the server may still be starting
            try:
                c = socket.create_connection((host, port), timeout=5)
                break
            except OSError:
                time.sleep(0.1)
        else:
            return 1
        c.sendall(b"q" * nbytes)
        got = 0
        while got < nbytes and time.monotonic() < DEADLINE:
            chunk = c.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        c.shutdown(socket.SHUT_WR)
        c.close()
        print(got)
    elif mode == "udp-server":
        port, count = int(sys.argv[2]), int(sys.argv[3])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        s.settimeout(5)
        got = 0
        try:
            while got < count:
                s.recv(65536)
                got += 1
        except socket.timeout:
            pass
        print(got)
    elif mode == "udp-client":
        host, port, count, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(count):
            s.sendto(b"u" * size, (host, port))
            time.sleep(0.001)
    elif mode == "syn-flood":
        net, host, port, count = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        prefix = ".".join(net.split(".")[:3])
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        for i in range(count):
            if time.monotonic() > DEADLINE:
                break
            src = "%s.%d" % (prefix, 10 + i % 200)
            s.sendto(syn_packet(src, host, 1024 + (i * 7) % 60000, port, i * 2654435761 & 0xFFFFFFFF), (host, 0))
    elif mode == "port-scan":
        host, first, last = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        for p in range(first, last + 1):
            c = socket.socket()
            c.settimeout(0.5)
            try:
                c.connect((host, p))
            except OSError:
                pass
            c.close()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
