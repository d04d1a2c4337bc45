#!/usr/bin/env python3
"""Computes OSS V1 signature vectors with the real `oss2` package (2.19.1),
the oracle for the fake PicWish's verifier (tests/support/picwish/oss.rs).

    python3 -m venv venv && venv/bin/pip install oss2==2.19.1
    venv/bin/python bench/oracles/oss2_vectors.py > tests/fixtures/picwish/oss2_vectors.json

Each vector: the request's method, bucket, decoded object key, headers (as
sent), the STS credentials, and the string to sign and `Authorization` oss2
computes. The
signature is oss2's own (a private method: pin the version).
"""

import json
import sys

import oss2
from oss2.credentials import Credentials

AK = "STS.NUfake1234567890abcdef"
SK = "8dk3LSDfj30fakeSecretKey9f0s"
TOKEN = "CAISfakeSecurityToken+/=0123456789abcdef"
BUCKET = "picwish-fake-hk"
DATE = "Tue, 08 Dec 2026 00:30:00 GMT"
CALLBACK = "eyJjYWxsYmFja1VybCI6Imh0dHA6Ly8xMjcuMC4wLjE6MS9jYiJ9"

CASES = [
    ("ascii key", "photo.png",
     {"Content-Type": "image/png", "x-oss-date": DATE, "x-oss-security-token": TOKEN}),
    ("key with slashes", "tasks/picwish/2026/12/08/abc.jpg",
     {"Content-Type": "image/jpeg", "X-Oss-Date": DATE, "X-Oss-Security-Token": TOKEN, "X-Oss-Callback": CALLBACK}),
    ("non-ASCII key", "照片/été 1+1.png",
     {"Content-Type": "image/png", "x-oss-date": DATE, "x-oss-security-token": TOKEN}),
    ("several x-oss headers, unsorted and mixed case", "a/b/c.webp",
     {"Content-Type": "image/webp", "X-OSS-Meta-Zeta": "last", "x-oss-date": DATE,
      "X-Oss-Callback-Var": "eyJ4OmEiOiIxIn0=", "x-oss-security-token": TOKEN, "X-Oss-Meta-Alpha": "first",
      "X-Oss-Callback": CALLBACK}),
    ("no content type", "raw.bin",
     {"x-oss-date": DATE, "x-oss-security-token": TOKEN}),
    ("Date instead of x-oss-date", "d.png",
     {"Content-Type": "image/png", "Date": DATE, "x-oss-security-token": TOKEN}),
    ("with Content-MD5", "m.png",
     {"Content-Type": "image/png", "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "x-oss-date": DATE,
      "x-oss-security-token": TOKEN}),
    ("no x-oss headers at all", "plain.png",
     {"Content-Type": "image/png", "Date": DATE}),
]


def main():
    auth = oss2.Auth(AK, SK)
    creds = Credentials(AK, SK, TOKEN)
    vectors = []
    for name, key, headers in CASES:
        req = oss2.http.Request("PUT", f"http://127.0.0.1/{BUCKET}/{key}", headers=dict(headers))
        sig = auth._ProviderAuth__make_signature(req, BUCKET, key, creds)
        sts = auth._ProviderAuth__get_bytes_to_sign(req, BUCKET, key).decode("utf-8")
        vectors.append({
            "name": name,
            "method": "PUT",
            "bucket": BUCKET,
            "key": key,
            "headers": [[k, v] for k, v in headers.items()],
            "access_key_id": AK,
            "access_key_secret": SK,
            "string_to_sign": sts,
            "authorization": f"OSS {AK}:{sig}",
        })
    out = {
        "_produced_by": f"bench/oracles/oss2_vectors.py with oss2=={oss2.__version__} (Python {sys.version.split()[0]})",
        "vectors": vectors,
    }
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
