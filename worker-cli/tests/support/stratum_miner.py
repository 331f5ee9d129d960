#!/usr/bin/env python3
"""A minimal Stratum V1 SHA-256d miner written independently of rigworker (Python's hashlib,
the byte order as BIP/cpuminer document it), to check that `rigworker pool` accepts shares
from a third-party implementation and rejects bad ones.

Usage: stratum_miner.py HOST PORT  -> prints one line per submit: ACCEPTED / REJECTED <reason>
"""
import hashlib
import json
import socket
import struct
import sys
from fractions import Fraction

DIFF1 = 0xFFFF * 2**208


def dsha(b):
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection((host, port), timeout=60)
    f = sock.makefile("rwb")

    def send(obj):
        f.write((json.dumps(obj) + "\n").encode())
        f.flush()

    pending = {}

    def read():
        line = f.readline()
        if not line:
            raise SystemExit("pool closed the connection")
        return json.loads(line)

    send({"id": 1, "method": "mining.subscribe", "params": ["pyminer/1.0"]})
    send({"id": 2, "method": "mining.authorize", "params": ["py.worker", "x"]})
    extranonce1 = en2size = job = None
    diff = Fraction(1)
    authorized = False
    while job is None or extranonce1 is None or not authorized:
        m = read()
        if m.get("id") == 1 and m.get("result"):
            extranonce1, en2size = m["result"][1], m["result"][2]
        elif m.get("id") == 2:
            authorized = m.get("result") is True
            if not authorized:
                raise SystemExit("authorize refused: %r" % (m,))
        elif m.get("method") == "mining.set_difficulty":
            diff = Fraction(m["params"][0])
        elif m.get("method") == "mining.notify":
            job = m["params"]
    job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime = job[:8]
    en2 = "00" * (en2size - 1) + "01"
    coinbase = bytes.fromhex(coinb1 + extranonce1 + en2 + coinb2)
    root = dsha(coinbase)
    for h in branch:
        root = dsha(root + bytes.fromhex(h))
    # prevhash on the wire: eight 4-byte words, each byte-swapped.
    ph = bytes.fromhex(prevhash)
    ph = b"".join(ph[i:i + 4][::-1] for i in range(0, 32, 4))
    prefix = (struct.pack("<I", int(version, 16)) + ph + root
              + struct.pack("<I", int(ntime, 16)) + struct.pack("<I", int(nbits, 16)))
    target = DIFF1 / diff
    good = bad = None
    for nonce in range(1 << 32):
        v = int.from_bytes(dsha(prefix + struct.pack("<I", nonce)), "little")
        if v <= target:
            good = nonce
            break
        if bad is None:
            bad = nonce

    def submit(i, nonce, e2=en2):
        send({"id": i, "method": "mining.submit",
              "params": ["py.worker", job_id, e2, ntime, "%08x" % nonce]})
        while True:
            m = read()
            if m.get("id") == i:
                if m.get("result") is True:
                    print("ACCEPTED", flush=True)
                else:
                    print("REJECTED", json.dumps(m.get("error")), flush=True)
                return

    submit(10, good)           # a real share
    submit(11, good)           # the same again: duplicate
    submit(12, bad)            # does not meet the target
    submit(13, good, en2 + "00")  # extranonce2 of the wrong size


if __name__ == "__main__":
    main()
