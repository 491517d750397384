#!/usr/bin/env bash
# Writes the hand-made seed inputs into fuzz/corpus/<target>/ (OpenSSL 3, python3). The files
# with hash names there are what fuzzing added, minimised with fuzz/minimise.sh; the named ones
# come from here. Run from anywhere; ../shared/realworld must be beside the repository for the
# few real-world seeds (skipped otherwise). PFX/PKCS#7/CMS bytes differ on each run (random
# salts, signing time); what they exercise does not.
set -euo pipefail
cd "$(dirname "$0")"
ex=../testdata/example
keys=../testdata/keys
rw=../../shared/realworld
L=corpus/load A=corpus/aia_response C=corpus/chain
mkdir -p "$L" "$A" "$C"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
leaf=$ex/server/cert.pem key=$ex/server/privkey.pem inter=$ex/intermediates/example-intermediate.pem

# --- load: the test fixtures as they are
for f in $ex/root.pem $leaf $key $inter $ex/make.sh; do cp "$f" "$L/example-$(basename "$f")"; done
for f in $keys/*; do cp "$f" "$L/testkey-$(basename "$f")"; done
for f in fixtures/*.der; do cp "$f" "$L/fixture-$(basename "$f")"; done

# --- PKCS#12 (p12-keystore paths: PBES2/AES, -legacy RC2/3DES, no MAC, no encryption)
p12() { out=$1; shift; openssl pkcs12 -export -in $leaf -inkey $key "$@" -out "$L/$out"; }
p12 p12-default-empty-pw.p12 -certfile $inter -passout pass:
p12 p12-legacy-empty-pw.p12 -legacy -certfile $inter -passout pass:
p12 p12-default-secret.p12 -passout pass:secret
p12 p12-legacy-secret.p12 -legacy -passout pass:secret
p12 p12-nomac.p12 -nomac -passout pass:
p12 p12-plain.p12 -certpbe NONE -keypbe NONE -nomac -passout pass:
p12 p12-3des-iter1.p12 -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 -iter 1 -passout pass:
openssl pkcs12 -export -nokeys -in $ex/root.pem -passout pass: -out "$L/p12-certs-only.p12"

# --- PKCS#7 / CMS (definite and BER indefinite lengths, DER and PEM, both labels)
openssl crl2pkcs7 -nocrl -certfile $leaf -certfile $inter -outform DER -out "$L/chain.p7b"
openssl crl2pkcs7 -nocrl -certfile $leaf -certfile $inter -out "$L/chain-pem.p7b"
sed 's/PKCS7/CMS/' "$L/chain-pem.p7b" > "$L/cms-label.pem"
echo hello > "$tmp/msg"
openssl cms -sign -stream -binary -in "$tmp/msg" -signer $leaf -inkey $key -certfile $inter \
  -outform DER -out "$L/cms-indefinite.der"
openssl cms -sign -stream -in "$tmp/msg" -signer $leaf -inkey $key -outform PEM \
  -out "$L/cms-indefinite.pem"
printf '\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x80\x30\x80\x02\x01\x01\x31\x00\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01\x00\x00\xa0\x80\x00\x00\x00\x00\x00\x00\x00\x00' \
  > "$L/pkcs7-indefinite-empty.der"

# --- private keys in every encoding the loader reads (and the encrypted ones it skips)
openssl pkey -in $keys/rsa1024.pem -outform DER -out "$L/key-rsa1024-pkcs8.der"
openssl rsa -in $keys/rsa1024.pem -traditional -outform DER -out "$L/key-rsa1024-pkcs1.der" 2>/dev/null
openssl rsa -in $keys/rsa1024.pem -traditional -out "$L/key-rsa1024-pkcs1.pem" 2>/dev/null
openssl ec -in $keys/p256-a.pem -outform DER -out "$L/key-p256-sec1.der" 2>/dev/null
openssl ec -in $keys/p256-a.pem -no_public -outform DER -out "$L/key-p256-sec1-nopub.der" 2>/dev/null
openssl ec -in $keys/p256-a.pem -no_public -out "$L/key-p256-sec1-nopub.pem" 2>/dev/null
openssl pkcs8 -topk8 -nocrypt -in "$L/key-p256-sec1-nopub.pem" -outform DER -out "$L/key-p256-pkcs8-nopub.der"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -outform DER -out "$L/key-p384-pkcs8.der"
openssl genpkey -algorithm ED25519 -outform DER -out "$L/key-ed25519-pkcs8.der"
python3 - "$L/key-ed25519-pkcs8.der" "$L/key-ed25519-pkcs8-v2.der" <<'PY'
import sys  # PKCS#8 v2 (RFC 5958) with the [1] public key, as rcgen writes; OpenSSL 3.0 cannot
d = open(sys.argv[1], "rb").read()
body = bytearray(d[2:]); body[2] = 1
body += b"\x81\x21\x00" + bytes(range(32))
open(sys.argv[2], "wb").write(bytes([0x30, len(body)]) + bytes(body))
PY
openssl rsa -in $keys/rsa1024.pem -traditional -aes128 -passout pass:x -out "$L/key-rsa-legacy-encrypted.pem" 2>/dev/null
openssl pkcs8 -topk8 -in $keys/p256-b.pem -passout pass:x -iter 1 -out "$L/key-pkcs8-encrypted.pem"

# --- PEM quirks and small hand-made edge cases
openssl x509 -in $ex/root.pem -trustout -addtrust serverAuth -out "$L/trusted-cert.pem"
sed 's/CERTIFICATE/X509 CERTIFICATE/' $ex/root.pem > "$L/x509-label.pem"
{ printf '\xef\xbb\xbf'; cat $leaf; } > "$L/bom.pem"
sed 's/$/\r/' $inter > "$L/crlf.pem"
cat $leaf $key $inter > "$L/bundle-with-key.pem"
head -c 300 $ex/root.pem > "$L/truncated.pem"
openssl x509 -in $ex/root.pem -outform DER | head -c 200 > "$L/truncated.der"
: > "$L/empty"
printf -- '-----BEGIN ' > "$L/begin-only.pem"
printf -- '-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n' > "$L/mismatched-end.pem"
printf -- 'junk before\n-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n!!!!\n-----END CERTIFICATE-----\ntrailing junk\n' \
  > "$L/headers-bad-b64.pem"
python3 -c "import sys; sys.stdout.buffer.write(b'\x30\x80' * 40)" > "$L/indefinite-deep.der"
printf '\x30\x84\xff\xff\xff\xff' > "$L/huge-length.der"

# --- aia_response: what AIA servers send, and what they should not
for f in chain.p7b chain-pem.p7b cms-indefinite.der cms-label.pem pkcs7-indefinite-empty.der \
  truncated.der empty bom.pem crlf.pem huge-length.der indefinite-deep.der p12-default-empty-pw.p12 \
  p12-legacy-empty-pw.p12 p12-3des-iter1.p12 p12-plain.p12 p12-nomac.p12; do
  cp "$L/$f" "$A/$f"
done
cp fixtures/p256-inter.der fixtures/rsa-inter.der $ex/root.pem "$A/"
args=(); for _ in $(seq 65); do args+=(-certfile $ex/root.pem); done
openssl crl2pkcs7 -nocrl "${args[@]}" -outform DER -out "$A/p7-65-certs.p7c"  # > 64: refused

# --- real-world seeds (a few; the rest of ../shared/realworld stays there)
if [ -d "$rw" ]; then
  cp $rw/certs/root_Class_3_Public_Primary_Certification_Authority_68725862.pem "$L/rw-md2-root.pem"
  cp $rw/certs/leaf_python.org_fe57addc.pem "$L/rw-leaf-python.pem"
  cp $rw/aia/files/apps.identrust.com/roots/dstrootcax3.p7c "$L/rw-dstrootcax3.p7c"
  cp $rw/aia/files/http.fpki.gov/fcpca/caCertsIssuedTofcpca.p7c "$L/rw-fpki.p7c"
  cp $rw/aia/files/cacerts.digicert.com/CloudflareIncECCCA-3.crt "$L/rw-cloudflare-ecc.der"
  cp $rw/aia/files/apps.identrust.com/roots/dstrootcax3.p7c $rw/aia/files/http.fpki.gov/fcpca/caCertsIssuedTofcpca.p7c \
    $rw/aia/files/crt.usertrust.com/AddTrustExternalCARoot.p7c $rw/aia/files/cacerts.digicert.com/CloudflareIncECCCA-3.crt "$A/"
  cp $rw/aia/files/aia3.netlock.hu/index.cgi_ca_gold "$A/netlock-index.cgi_ca_gold"
  cp $rw/aia/files/cert.int-x3.letsencrypt.org/index "$A/letsencrypt-int-x3"
fi

# --- chain: inputs in the layout of chainfix_fuzz::chain (see fuzz/README.md)
python3 - "$C" "$rw" <<'PY'
import glob, os, struct, subprocess, sys, tempfile
out_dir, rw = sys.argv[1], sys.argv[2]
SEP = b"\n--8<--\n"
F = ["p256-root", "p256-inter", "p256-leaf", "rsa-root", "weak-root", "rsa-inter",
     "rsa-inter-cross", "rsa-leaf", "md5-leaf", "pss-leaf"]
fx = lambda n: open(f"fixtures/{n}.der", "rb").read()
bits = lambda names: sum(1 << F.index(n) for n in names)
def der(path):
    return subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"],
                          capture_output=True, check=True).stdout
def inp(fixtures, anchors, flags, host, certs):
    out = struct.pack("<HHB", fixtures, anchors, flags) + host.encode()
    for c in certs:
        out += SEP + c
    return out
seeds = {
    "fixtures-all-two-anchors": inp(0x3FF, bits(["p256-root", "rsa-root"]), 0, "mail.example.test", []),
    "fixtures-weak-anchor-cross": inp(0x3FF, bits(["weak-root"]), 0, "x.wild.fuzz.test", []),
    "fixtures-no-anchor": inp(0x3FF, 0, 1, "127.0.0.1", []),
    "fixtures-fuzzed-even-anchors": inp(0, 0, 0x08, "[::1]", [fx(n) for n in F]),
    "fixtures-fuzzed-after-small-budget": inp(bits(["rsa-root", "weak-root"]), bits(["rsa-root"]), 0x30,
        "mail.fuzz.test.", [fx(n) for n in ["rsa-inter", "rsa-inter-cross", "rsa-leaf", "md5-leaf", "pss-leaf"]]),
    "fixtures-now-max": inp(0x3FF, bits(["p256-root", "rsa-root", "weak-root"]), 3, "MAIL.FUZZ.TEST", []),
    "empty-host-garbage-cert": inp(0x3FF, 0x3FF, 2, "", [b"\x30\x03\x02\x01\x00", b""]),
}
# MD5-signed fan-out (links the verifier cannot check, so they stand on names): 4 certificates
# for each of S1..S3, with the small budget, so the build-call limit is hit.
keys = "../testdata/keys"
with tempfile.TemporaryDirectory() as tmp:
    ext = os.path.join(tmp, "ext.cnf")
    open(ext, "w").write("[ca]\nbasicConstraints=critical,CA:TRUE\n[leaf]\nbasicConstraints=critical,CA:FALSE\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    top = os.path.join(tmp, "top.pem")
    run("openssl", "req", "-x509", "-new", "-key", f"{keys}/rsa2048-a.pem", "-subj", "/CN=S4", "-md5",
        "-days", "3650", "-out", top, "-addext", "basicConstraints=critical,CA:TRUE")
    prev, certs = top, []
    for level in (3, 2, 1):
        for j, k in enumerate("abcd"):
            csr, pem = os.path.join(tmp, "r.csr"), os.path.join(tmp, f"S{level}-{j}.pem")
            run("openssl", "req", "-new", "-key", f"{keys}/rsa2048-{k}.pem", "-subj", f"/CN=S{level}", "-out", csr)
            run("openssl", "x509", "-req", "-in", csr, "-CA", prev, "-CAkey", f"{keys}/rsa2048-a.pem", "-md5",
                "-set_serial", str(level * 100 + j), "-days", "3650", "-extfile", ext, "-extensions", "ca", "-out", pem)
            certs.append(der(pem))
        prev = os.path.join(tmp, f"S{level}-0.pem")
    csr, pem = os.path.join(tmp, "r.csr"), os.path.join(tmp, "leaf.pem")
    run("openssl", "req", "-new", "-key", f"{keys}/rsa2048-b.pem", "-subj", "/CN=leaf", "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", prev, "-CAkey", f"{keys}/rsa2048-a.pem", "-md5",
        "-set_serial", "5", "-days", "3650", "-extfile", ext, "-extensions", "leaf", "-out", pem)
    certs.append(der(pem))
    seeds["md5-fanout-small-budget"] = inp(0, 0, 0x20, "leaf", certs)
c = os.path.join(rw, "certs")
if os.path.isdir(c):
    seeds["realworld-python-globalsign"] = inp(0, 0, 0x04, "www.python.org", [
        der(f"{c}/leaf_www.python.org_ef71bf70.pem"),
        der(f"{c}/ca_GlobalSign_Atlas_R3_DV_TLS_CA_2023_Q2_fa41f99d.pem")])
    seeds["realworld-le-r3-dst-cross"] = inp(0, 0, 0x08, "lencr.org", [der(f"{c}/{n}.pem") for n in [
        "root_ISRG_Root_X1_96bcec06", "leaf_lencr.org_668668c8", "root_DST_Root_CA_X3_06872603",
        "ca_R3_67add116", "ca_ISRG_Root_X1_6d99fb26"]])
for name, data in seeds.items():
    open(os.path.join(out_dir, name), "wb").write(data)
PY
echo "seeds written to $L, $A and $C"
