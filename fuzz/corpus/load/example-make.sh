#!/usr/bin/env bash
# Regenerates the example PKI used by the README's first command (OpenSSL 3).
# root -> intermediate -> leaf for mail.example.test; the "server" directory holds what a
# misconfigured mail server has: the leaf and its key, without the intermediate.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf server intermediates root.pem
mkdir -p server intermediates
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[int]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = caIssuers;URI:http://pki.example.test/root.crt
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:mail.example.test, DNS:smtp.example.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
authorityInfoAccess = caIssuers;URI:http://pki.example.test/intermediate.crt
CNF
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec "$tmp/root.key"; ec "$tmp/int.key"; ec server/privkey.pem
openssl req -new -x509 -key "$tmp/root.key" -subj "/O=Example Mail/CN=Example Root CA" \
  -days 7300 -extensions ca -config "$tmp/ext.cnf" -set_serial 1 -out root.pem
openssl req -new -key "$tmp/int.key" -subj "/O=Example Mail/CN=Example Intermediate CA" -out "$tmp/int.csr"
openssl x509 -req -in "$tmp/int.csr" -CA root.pem -CAkey "$tmp/root.key" -set_serial 2 \
  -days 7200 -extfile "$tmp/ext.cnf" -extensions int -out intermediates/example-intermediate.pem
openssl req -new -key server/privkey.pem -subj "/CN=mail.example.test" -out "$tmp/leaf.csr"
openssl x509 -req -in "$tmp/leaf.csr" -CA intermediates/example-intermediate.pem -CAkey "$tmp/int.key" \
  -set_serial 3 -days 7000 -extfile "$tmp/ext.cnf" -extensions leaf -out server/cert.pem
chmod 600 server/privkey.pem
