#!/usr/bin/env bash
# Generates the seed corpus for the libFuzzer targets in tests/fuzz with the
# openssl CLI: fresh keys and certificates every run, nothing checked in.
#
#   make_corpus.sh OUT_DIR
#
# Writes OUT_DIR/seed/<target>/ (seed inputs) and empty OUT_DIR/work/<target>/
# (where libFuzzer stores what it finds), for the targets fuzz_pem,
# fuzz_der_certificate, fuzz_pkcs7, fuzz_pkcs12 and fuzz_csr. PKCS#12 seeds use
# the password "secret" (as fuzz_pkcs12 does) and a low iteration count so
# each execution stays fast.
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT_DIR}
targets=(fuzz_pem fuzz_der_certificate fuzz_pkcs7 fuzz_pkcs12 fuzz_csr)
rm -rf "$out/seed" "$out/work"
for t in "${targets[@]}"; do mkdir -p "$out/seed/$t" "$out/work/$t"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
ssl() { openssl "$@" >/dev/null 2>&1 || { echo "make_corpus.sh: openssl $* failed" >&2; exit 1; }; }

printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > ca.ext
printf 'subjectAltName=DNS:leaf.example,DNS:*.leaf.example,IP:192.0.2.1,email:a@leaf.example,URI:https://leaf.example/\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature\nauthorityInfoAccess=OCSP;URI:http://ocsp.example/,caIssuers;URI:http://ca.example/ca.der\ncrlDistributionPoints=URI:http://crl.example/ca.crl\ncertificatePolicies=2.23.140.1.2.1\n' > leaf.ext

ssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
  -out root.pem -days 30 -subj "/C=US/O=Fuzz/CN=Fuzz Root" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
ssl req -newkey rsa:2048 -nodes -keyout int.key -out int.csr -subj "/O=Fuzz/CN=Fuzz Intermediate"
ssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 \
  -extfile ca.ext -out int.pem
ssl req -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout leaf.key -out leaf.csr \
  -subj "/CN=leaf.example" -addext "subjectAltName=DNS:leaf.example,IP:192.0.2.1"
ssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key -CAcreateserial -days 30 \
  -extfile leaf.ext -out leaf.pem
ssl req -newkey ed25519 -nodes -keyout ed.key -out ed.csr -subj "/CN=ed.example"
ssl x509 -req -in ed.csr -CA int.pem -CAkey int.key -CAcreateserial -days 30 -out ed.pem
cat leaf.pem int.pem root.pem > chain.pem

# DER certificates.
for c in root int leaf ed; do ssl x509 -in $c.pem -outform DER -out "$out/seed/fuzz_der_certificate/$c.der"; done

# PEM: single blocks, chains, keys (plain, encrypted with "secret", traditional),
# PKCS#7 blocks, skipped blocks, text around.
ssl pkcs8 -topk8 -in leaf.key -v2 aes-256-cbc -passout pass:secret -out leaf.enc.pem
ssl ec -in leaf.key -out leaf.trad.pem
ssl crl2pkcs7 -nocrl -certfile chain.pem -out chain.p7b
ssl crl2pkcs7 -nocrl -certfile chain.pem -outform DER -out chain.p7b.der
ssl crl2pkcs7 -nocrl -certfile leaf.pem -outform DER -out leaf.p7b.der
ssl crl2pkcs7 -nocrl -out empty.p7b </dev/null
p=$out/seed/fuzz_pem
cp leaf.pem "$p/leaf.pem"
cp chain.pem "$p/chain.pem"
cat leaf.key leaf.pem > "$p/key_and_cert.pem"
cat leaf.enc.pem int.pem leaf.csr > "$p/encrypted_key.pem"
cat leaf.trad.pem ed.key > "$p/keys.pem"
cp chain.p7b "$p/chain.p7b"
{ echo "subject=CN = leaf.example"; cat leaf.pem; echo "text between"; cat int.pem; echo trailer; } > "$p/text_around.pem"

# PKCS#7.
cp chain.p7b chain.p7b.der leaf.p7b.der empty.p7b "$out/seed/fuzz_pkcs7/"

# PKCS#12 (password "secret"), modern and legacy, cheap iteration counts.
ssl pkcs12 -export -inkey leaf.key -in leaf.pem -certfile int.pem -passout pass:secret \
  -iter 16 -out "$out/seed/fuzz_pkcs12/modern.p12"
ssl pkcs12 -export -legacy -inkey leaf.key -in leaf.pem -passout pass:secret \
  -iter 16 -out "$out/seed/fuzz_pkcs12/legacy.p12"
ssl pkcs12 -export -nokeys -in chain.pem -passout pass:secret -iter 16 \
  -out "$out/seed/fuzz_pkcs12/certs_only.p12"
ssl pkcs12 -export -inkey ed.key -in ed.pem -passout pass: -iter 16 \
  -out "$out/seed/fuzz_pkcs12/empty_password.p12"

# CSRs, DER (FromDer) and PEM (FromPem).
for r in int leaf ed; do
  ssl req -in $r.csr -outform DER -out "$out/seed/fuzz_csr/$r.csr.der"
  cp $r.csr "$out/seed/fuzz_csr/$r.csr.pem"
done

echo "make_corpus.sh: seed corpus in $out/seed"
