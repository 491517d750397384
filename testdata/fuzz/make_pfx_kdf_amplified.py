#!/usr/bin/env python3
"""Remakes aia_response/pfx_kdf_1m_iterations_repeated_bags.p12 (see testdata/README.md, fuzz/).

Usage: python3 testdata/fuzz/make_pfx_kdf_amplified.py [COPIES] > out.p12   (default 4)

Exports the example leaf and key with OpenSSL 3 at 1,000,000 KDF iterations and an empty
password, then repeats the AuthenticatedSafe's ContentInfos COPIES times and drops the MacData,
so every copy of the shrouded key bag costs a full key derivation when the file is parsed.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "example")


def read(b, i=0):
    tag, length, j = b[i], b[i + 1], i + 2
    if length & 0x80:
        n = length & 0x7F
        length, j = int.from_bytes(b[j:j + n], "big"), j + n
    return tag, b[j:j + length], j + length


def encode(tag, content):
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    nb = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(nb)]) + nb + content


def children(content):
    out, i = [], 0
    while i < len(content):
        start = i
        _, _, i = read(content, i)
        out.append(content[start:i])
    return out


def main():
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    with tempfile.TemporaryDirectory() as tmp:
        pfx_path = os.path.join(tmp, "in.p12")
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-nomac", "-iter", "1000000",
             "-in", os.path.join(EXAMPLE, "server", "cert.pem"),
             "-inkey", os.path.join(EXAMPLE, "server", "privkey.pem"),
             "-passout", "pass:", "-out", pfx_path],
            check=True)
        pfx = open(pfx_path, "rb").read()
    _, body, _ = read(pfx)
    version, auth_safe = children(body)[:2]  # the MacData, if any, is dropped
    _, ci, _ = read(auth_safe)
    oid, explicit = children(ci)
    _, octets, _ = read(explicit)
    _, safes_der, _ = read(octets)
    _, safes, _ = read(safes_der)
    items = children(safes)
    repeated = encode(0x30, b"".join(items * copies))
    out = encode(0x30, version + encode(0x30, oid + encode(0xA0, encode(0x04, repeated))))
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
