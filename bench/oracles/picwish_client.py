#!/usr/bin/env python3
"""Runs the real `picwish` package (0.6.0) against the fake PicWish
(examples/fake_picwish.rs) and records every request it sends, the oracle
for the fake's web flow.

    python3 -m venv venv && venv/bin/pip install picwish==0.6.0 oss2==2.19.1
    venv/bin/python bench/oracles/picwish_client.py > tests/fixtures/picwish/picwish_0.6.0_requests.json

With BASE_URL set it uses a fake already running there; otherwise it
starts `cargo run -q --example fake_picwish -- --process-ms 300` itself.
The package hard-codes `https://gw.aoscdn.com` and
`https://<bucket>.<accelerate>`: a custom httpx transport sends every
request to the fake instead, keeping the original `Host` header (the fake
routes OSS requests by Host). It runs `remove_background`, `enhance` and
`colorize` on one small PNG and fails unless each ends with a download,
then uploads once more with `oss2`'s own `put_object` (path-style, signed
with `Date`), recorded too.
The Rust test `picwish_fake::picwish_package_requests_replay` replays the
recording.
"""

import asyncio
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import uuid
import zlib
from importlib.metadata import version
from urllib.parse import urlsplit

import httpx
import picwish


def tiny_png() -> bytes:
    """A 4x3 RGB PNG (what the package's `filetype` sniffing accepts)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes([40, 80, 120] * 4) for _ in range(3))
    ihdr = struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class Rewrite(httpx.AsyncBaseTransport):
    """Sends every request to the fake, keeping the original Host; records it."""

    def __init__(self, port: int, log: list):
        self.inner = httpx.AsyncHTTPTransport()
        self.port = port
        self.log = log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        sent = httpx.Request(request.method, url, headers=request.headers, content=body)
        response = await self.inner.handle_async_request(sent)
        content = await response.aread()
        entry = {
            "method": request.method,
            "url": str(request.url),
            "headers": [[k, v] for k, v in request.headers.multi_items()
                        if k.lower() not in ("user-agent", "accept-encoding")],
            "status": response.status_code,
        }
        ctype = request.headers.get("content-type", "")
        if body and "json" in ctype:
            entry["json"] = json.loads(body)
        elif body:
            entry["body_base64"] = base64.b64encode(body).decode()
        try:
            entry["response"] = json.loads(content)
        except ValueError:
            entry["response_sha256"] = hashlib.sha256(content).hexdigest()
        self.log.append(entry)
        return httpx.Response(response.status_code, headers=response.headers, content=content)


async def oss2_authorize(port: int, log: list) -> dict:
    """An upload grant, asked for the way the package does (recorded)."""
    token = "v2,{},482,{}".format(12345678, uuid.uuid4().hex)
    async with httpx.AsyncClient(transport=Rewrite(port, log)) as c:
        r = await c.post("https://gw.aoscdn.com/app/picwish/authorizations/oss",
                         params={"product_id": 482, "language": "en"},
                         headers={"Authorization": f"Bearer {token}"}, json={"filenames": ["oss2.png"]})
    return r.json()["data"]


def oss2_upload(grant: dict, port: int, image: bytes) -> dict:
    """Uploads with oss2's put_object (path-style: an IP endpoint)."""
    import oss2
    cred, cb = grant["credential"], grant["callback"]
    callback = base64.b64encode(json.dumps(
        {"callbackUrl": cb["url"], "callbackBody": cb["body"], "callbackBodyType": cb["type"]}).encode()).decode()
    auth = oss2.StsAuth(cred["access_key_id"], cred["access_key_secret"], cred["security_token"])
    bucket = oss2.Bucket(auth, f"http://127.0.0.1:{port}", grant["bucket"])
    key = grant["objects"]["oss2.png"]
    result = bucket.put_object(key, image, headers={"Content-Type": "image/png", "x-oss-callback": callback})
    sent = result.resp.response.request
    entry = {
        "method": sent.method,
        "url": sent.url,
        "headers": [[k.lower(), v] for k, v in sent.headers.items()
                    if k.lower() not in ("user-agent", "accept-encoding")],
        "status": result.status,
        "body_base64": base64.b64encode(image).decode(),
        "response": json.loads(result.resp.read()),
        "uploader": f"oss2=={oss2.__version__}",
    }
    return entry


async def run(port: int) -> list:
    log: list = []
    image = tiny_png()
    pw = picwish.PicWish(sleep_duration=0.2, transport=Rewrite(port, log))
    # The package never checks a negative state: bound every call.
    done = []
    nobg = await asyncio.wait_for(pw.remove_background(image), 30)
    await asyncio.wait_for(nobg.get_bytes(), 30)
    done.append("remove_background")
    enhanced = await asyncio.wait_for(pw.enhance(image), 30)
    await asyncio.wait_for(enhanced.get_bytes(), 30)
    done.append("enhance")
    colorized = await asyncio.wait_for(pw.colorize(image), 30)
    await asyncio.wait_for(colorized.get_bytes(), 30)
    done.append("colorize")
    # oss2 as a second, independent uploader: path-style (an IP endpoint),
    # `Date` instead of `x-oss-date`, its own signer.
    grant = await oss2_authorize(port, log)
    log.append(await asyncio.to_thread(oss2_upload, grant, port, image))
    done.append("oss2.put_object")
    bad = [e for e in log if e["status"] != 200]
    if bad:
        raise SystemExit(f"the fake refused some requests: {json.dumps(bad, indent=1)}")
    return log, done, image


def main():
    proc = None
    base = os.environ.get("BASE_URL")
    if not base:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        proc = subprocess.Popen(
            ["cargo", "run", "-q", "--example", "fake_picwish", "--", "--process-ms", "300"],
            cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if line.startswith("BASE_URL="):
                base = line.strip().split("=", 1)[1]
            if line.strip() == "READY":
                break
    try:
        log, done, image = asyncio.run(run(urlsplit(base).port))
    finally:
        if proc:
            proc.stdin.close()
            proc.wait(timeout=30)
    out = {
        "_produced_by": (f"bench/oracles/picwish_client.py: picwish=={version('picwish')}, "
                         f"httpx=={version('httpx')}, oss2=={version('oss2')} (Python {sys.version.split()[0]}) "
                         f"against examples/fake_picwish.rs"),
        "base_url": base,
        "runs": done,
        "input_base64": base64.b64encode(image).decode(),
        "requests": log,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
