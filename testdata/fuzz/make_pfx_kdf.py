#!/usr/bin/env python3
"""Remakes the PKCS#12 regression inputs of testdata/fuzz/ (see testdata/README.md, fuzz/).

    python3 testdata/fuzz/make_pfx_kdf.py repeated COPIES            > aia_response/pfx_kdf_1m_iterations_repeated_bags.p12   (COPIES=4)
    python3 testdata/fuzz/make_pfx_kdf.py hidden COPIES              > load/pfx_kdf_bags_hidden_in_encrypted_safe.p12         (COPIES=16)
    python3 testdata/fuzz/make_pfx_kdf.py scrypt COPIES N R P        > load/pfx_scrypt_r_p_not_counted.p12                    (3 1024 1024 16)
                                                                     > load/pfx_scrypt_1gib_memory.p12                        (1 1024 8192 1)

All use the empty password. `repeated` and `hidden` start from
`openssl pkcs12 -export -nomac -iter 1000000` of testdata/example's leaf and key (OpenSSL 3):
`repeated` repeats the AuthenticatedSafe's ContentInfos and drops the MacData; `hidden` puts
COPIES of its shrouded key bag (PBES2, PBKDF2-HMAC-SHA256, 1,000,000 iterations) into a
SafeContents and encrypts that as one EncryptedData whose own PBKDF2 uses 1 iteration.
`scrypt` writes COPIES EncryptedData ContentInfos, each an empty SafeContents encrypted with
PBES2 / scrypt (N, r, p) / AES-256-CBC. Salts and IVs are random: the bytes differ on every run,
the cost does not. Needs openssl and Python's hashlib (scrypt with large r takes a few seconds).
"""
import hashlib
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


def oid(dotted):
    parts = list(map(int, dotted.split(".")))
    body = bytes([40 * parts[0] + parts[1]])
    for v in parts[2:]:
        chunk = [v & 0x7F]
        v >>= 7
        while v:
            chunk.append(0x80 | (v & 0x7F))
            v >>= 7
        body += bytes(reversed(chunk))
    return encode(0x06, body)


def integer(v):
    return encode(0x02, v.to_bytes((v.bit_length() + 8) // 8, "big"))


DATA = oid("1.2.840.113549.1.7.1")
ENCRYPTED_DATA = oid("1.2.840.113549.1.7.6")
PBES2 = oid("1.2.840.113549.1.5.13")
PBKDF2 = oid("1.2.840.113549.1.5.12")
SCRYPT = oid("1.3.6.1.4.1.11591.4.11")
HMAC_SHA256 = oid("1.2.840.113549.2.9")
AES256_CBC = oid("2.16.840.1.101.3.4.1.42")


def pfx(auth_safe_items):
    """PFX v3 without MacData around an AuthenticatedSafe of these ContentInfos."""
    auth = encode(0x30, b"".join(auth_safe_items))
    return encode(0x30, integer(3) + encode(0x30, DATA + encode(0xA0, encode(0x04, auth))))


def aes256_cbc(key, iv, plain):
    return subprocess.run(["openssl", "enc", "-aes-256-cbc", "-K", key.hex(), "-iv", iv.hex()],
                          input=plain, capture_output=True, check=True).stdout


def encrypted_data(kdf, key, plain):
    """A ContentInfo of type encryptedData: PBES2 with this KDF AlgorithmIdentifier."""
    iv = os.urandom(16)
    alg = encode(0x30, PBES2 + encode(0x30, kdf + encode(0x30, AES256_CBC + encode(0x04, iv))))
    eci = encode(0x30, DATA + alg + encode(0x80, aes256_cbc(key, iv, plain)))
    return encode(0x30, ENCRYPTED_DATA + encode(0xA0, encode(0x30, integer(0) + eci)))


def openssl_auth_safe():
    """The ContentInfos of an OpenSSL export at 1,000,000 iterations, empty password."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "in.p12")
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-nomac", "-iter", "1000000",
             "-in", os.path.join(EXAMPLE, "server", "cert.pem"),
             "-inkey", os.path.join(EXAMPLE, "server", "privkey.pem"),
             "-passout", "pass:", "-out", path],
            check=True)
        data = open(path, "rb").read()
    _, body, _ = read(data)
    _, ci, _ = read(children(body)[1])
    _, explicit = children(ci)
    _, octets, _ = read(explicit)
    _, safes_der, _ = read(octets)
    _, safes, _ = read(safes_der)
    return children(safes)


def shrouded_key_bag(items):
    for item in items:
        _, ci, _ = read(item)
        content_type, explicit = children(ci)
        if content_type != DATA:
            continue
        _, octets, _ = read(explicit)
        _, sc_der, _ = read(octets)
        _, sc, _ = read(sc_der)
        for bag in children(sc):
            if b"\x0c\x0a\x01\x02" in bag[:20]:  # pkcs8ShroudedKeyBag
                return bag
    raise SystemExit("no shrouded key bag in the OpenSSL export")


def main():
    mode, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if mode == "repeated":
        out = pfx(openssl_auth_safe() * args[0])
    elif mode == "hidden":
        bags = encode(0x30, shrouded_key_bag(openssl_auth_safe()) * args[0])
        salt = os.urandom(8)
        key = hashlib.pbkdf2_hmac("sha256", b"", salt, 1, 32)
        kdf = encode(0x30, PBKDF2 + encode(0x30, encode(0x04, salt) + integer(1)
                                           + encode(0x30, HMAC_SHA256 + b"\x05\x00")))
        out = pfx([encrypted_data(kdf, key, bags)])
    elif mode == "scrypt":
        copies, n, r, p = args
        items = []
        for _ in range(copies):
            salt = os.urandom(8)
            key = hashlib.scrypt(b"", salt=salt, n=n, r=r, p=p, maxmem=2**31 - 1, dklen=32)
            params = encode(0x04, salt) + integer(n) + integer(r) + integer(p) + integer(32)
            kdf = encode(0x30, SCRYPT + encode(0x30, params))
            items.append(encrypted_data(kdf, key, encode(0x30, b"")))
        out = pfx(items)
    else:
        raise SystemExit(__doc__)
    sys.stdout.buffer.write(out)


if __name__ == "__main__":
    main()
