#!/usr/bin/env python3
"""The openssl column of the x509-limbo conformance table: runs `openssl verify` over the
suite's SERVER testcases, as the receiver chainfix models (OpenSSL 3 libssl at security level
2, as Postfix uses it), and prints how often it agrees with limbo's expected result.

Each testcase is asked the way tests/limbo.rs asks chainfix:
  leaf = peer_certificate, -untrusted = untrusted_intermediates, -CAfile = trusted_certs only
  (-no-CApath -no-CAstore: the machine's own roots are not consulted), -attime =
  validation_time (when null: the latest notBefore of the testcase's certificates + 1 s, which
  must not pass the earliest notAfter), -verify_hostname / -verify_ip = expected_peer_name
  (an RFC822 name is not checked), -purpose sslserver, -auth_level 2.

Not -x509_strict: Postfix does not set X509_V_FLAG_X509_STRICT. Not -partial_chain by default:
Postfix sets X509_V_FLAG_PARTIAL_CHAIN only for DANE, so a trusted certificate that is not
self-signed does not end a chain by itself; `--partial-chain` adds it, to see how much that
choice moves the numbers (limbo and chainfix treat every trusted certificate as an anchor).

Measured on 2026-12-02 (OpenSSL 3.0.19, 9,770 SERVER testcases, about 4 minutes on one core):
agrees 9,527 (97.5%), says valid where FAILURE is expected 121, says invalid where SUCCESS is
expected 122; with --partial-chain 9,522 / 128 / 120.

Usage: openssl-limbo.py [--limbo PATH] [--out results.tsv] [--jobs N] [--partial-chain]
The per-case file has one line per testcase: id, expected, openssl (valid/invalid), the
openssl error line.
"""

import argparse
import calendar
import collections
import concurrent.futures
import datetime
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIMBO = os.path.join(HERE, "..", "..", "..", "shared", "conformance", "x509-limbo",
                             "limbo.json.gz")


def cert_dates(pem):
    """(notBefore, notAfter) in unix seconds, or None when openssl cannot read the certificate."""
    out = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-enddate"],
                         input=pem.encode(), capture_output=True)
    if out.returncode != 0:
        return None
    dates = {}
    for line in out.stdout.decode().splitlines():
        key, _, value = line.partition("=")
        dates[key] = calendar.timegm(time.strptime(value.strip(), "%b %d %H:%M:%S %Y GMT"))
    return dates.get("notBefore"), dates.get("notAfter")


def validation_time(tc):
    """The testcase's time, or one inside every certificate's validity (None if none is)."""
    if tc["validation_time"]:
        return int(datetime.datetime.fromisoformat(tc["validation_time"]).timestamp())
    pems = [tc["peer_certificate"], *tc["untrusted_intermediates"], *tc["trusted_certs"]]
    dates = [d for d in (cert_dates(p) for p in pems) if d is not None]
    if not dates:
        return None
    at = max(nb for nb, _ in dates) + 1
    return at if at <= min(na for _, na in dates) else None


def verify(tc, partial_chain):
    """(valid, the openssl error line) for one testcase."""
    with tempfile.TemporaryDirectory(prefix="limbo-") as tmp:
        def write(name, pems):
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write("".join(p if p.endswith("\n") else p + "\n" for p in pems))
            return path

        cmd = ["openssl", "verify", "-purpose", "sslserver", "-auth_level", "2",
               "-no-CApath", "-no-CAstore", "-CAfile", write("trusted.pem", tc["trusted_certs"])]
        if tc["untrusted_intermediates"]:
            cmd += ["-untrusted", write("untrusted.pem", tc["untrusted_intermediates"])]
        at = validation_time(tc)
        if at is not None:
            cmd += ["-attime", str(at)]
        name = tc["expected_peer_name"]
        if name and name["kind"] == "DNS":
            cmd += ["-verify_hostname", name["value"]]
        elif name and name["kind"] == "IP":
            cmd += ["-verify_ip", name["value"]]
        if partial_chain:
            cmd.append("-partial_chain")
        cmd.append(write("leaf.pem", [tc["peer_certificate"]]))
        out = subprocess.run(cmd, capture_output=True, text=True)
        text = (out.stderr + out.stdout).strip().splitlines()
        if out.returncode == 0:
            return True, "OK"
        errors = [l for l in text if l.startswith("error ")]
        return False, (errors[0] if errors else " ".join(text)[-200:].replace(tmp, ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limbo", default=DEFAULT_LIMBO)
    ap.add_argument("--out", help="write per-case results (TSV) here")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--partial-chain", action="store_true")
    args = ap.parse_args()

    with gzip.open(args.limbo) as f:
        cases = [tc for tc in json.load(f)["testcases"] if tc["validation_kind"] == "SERVER"]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda tc: verify(tc, args.partial_chain), cases))

    table = collections.Counter()
    for tc, (valid, _) in zip(cases, results):
        expected_valid = tc["expected_result"] == "SUCCESS"
        table["agrees" if valid == expected_valid
              else "valid, expected FAILURE" if valid else "invalid, expected SUCCESS"] += 1
    n = len(cases)
    print(f"openssl verify over {n} SERVER testcases ({time.monotonic() - started:.0f} s, "
          f"{subprocess.run(['openssl', 'version'], capture_output=True, text=True).stdout.strip()}"
          f"{', -partial_chain' if args.partial_chain else ''})")
    print("| agrees with expected | says valid, expected FAILURE | says invalid, expected SUCCESS |")
    print("|---|---|---|")
    print(f"| {table['agrees']} ({100 * table['agrees'] / n:.1f}%) | "
          f"{table['valid, expected FAILURE']} | {table['invalid, expected SUCCESS']} |")
    if args.out:
        with open(args.out, "w") as f:
            f.write("id\texpected\topenssl\terror\n")
            for tc, (valid, error) in zip(cases, results):
                f.write(f"{tc['id']}\t{tc['expected_result']}\t"
                        f"{'valid' if valid else 'invalid'}\t{error}\n")
        print(f"per-case results: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
