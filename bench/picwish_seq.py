#!/usr/bin/env python3
"""A sequential client of PicWish's official API, the way its documentation
examples work: for each image in a folder, create a task with `image_file`,
poll it every second until it leaves the processing states, download the
result. The baseline the benchmark compares spoolfetch with (against
examples/fake_picwish.rs).

    BASE_URL=http://127.0.0.1:PORT bench/picwish_seq.py IN_DIR OUT_DIR

Environment: BASE_URL (required), PICWISH_KEY (default `test-key`),
PICWISH_OP (default `segmentation`), RATE (requests per second the client
keeps under, default 2: the key's budget), POLL_S (default 1). Standard
library only. A 429 waits a second and retries (counted); a negative state
fails the input. Prints `DONE=n FAILED=n RETRIED_429=n SECONDS=s` at the end.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

BASE = os.environ["BASE_URL"].rstrip("/")
KEY = os.environ.get("PICWISH_KEY", "test-key")
OP = os.environ.get("PICWISH_OP", "segmentation")
GAP = 1.0 / float(os.environ.get("RATE", "2"))
POLL_S = float(os.environ.get("POLL_S", "1"))
last = [0.0]
retried = [0]


def api(method, url, data=None, headers=None):
    """One API call, paced under RATE, retrying 429s."""
    while True:
        wait = last[0] + GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        req = urllib.request.Request(url, data=data, method=method, headers={"X-API-KEY": KEY, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                body = r.read()
            last[0] = time.monotonic()
            return json.loads(body)
        except urllib.error.HTTPError as e:
            last[0] = time.monotonic()
            if e.code == 429:
                retried[0] += 1
                time.sleep(1.0)
                continue
            raise


def multipart(path):
    boundary = uuid.uuid4().hex
    with open(path, "rb") as f:
        data = f.read()
    name = os.path.basename(path)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image_file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    start = time.monotonic()
    done = failed = 0
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            continue
        body, ctype = multipart(path)
        try:
            task_id = api("POST", f"{BASE}/api/tasks/visual/{OP}", body, {"Content-Type": ctype})["data"]["task_id"]
            while True:
                time.sleep(POLL_S)
                data = api("GET", f"{BASE}/api/tasks/visual/{OP}/{task_id}")["data"]
                if data["state"] == 1 or data["state"] < 0:
                    break
        except urllib.error.HTTPError as e:
            print(f"{name}: HTTP {e.code}", file=sys.stderr)
            failed += 1
            continue
        if data["state"] < 0:
            print(f"{name}: state {data['state']}", file=sys.stderr)
            failed += 1
            continue
        with urllib.request.urlopen(data["image"], timeout=60) as r:
            result = r.read()
        with open(os.path.join(out, os.path.splitext(name)[0] + ".png"), "wb") as f:
            f.write(result)
        done += 1
    print(f"DONE={done} FAILED={failed} RETRIED_429={retried[0]} SECONDS={time.monotonic() - start:.2f}")


if __name__ == "__main__":
    main()
