#!/usr/bin/env python3
"""A sequential remote-task client, the way the task APIs' own client
libraries work: for each input, create the task, poll it every second
until it is done, download the result; at most RATE requests per second.

    tasks_client.py BASE_URL OUT_DIR RATE NAME...
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

base, out, rate, names = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
gap = 1.0 / rate
last = [0.0]


def call(method, url, data=None):
    wait = last[0] + gap - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    last[0] = time.monotonic()
    return body


os.makedirs(out, exist_ok=True)
for name in names:
    form = urllib.parse.urlencode({"name": name}).encode()
    task_id = json.loads(call("POST", f"{base}/api/tasks", form))["task_id"]
    while True:
        time.sleep(1.0)
        st = json.loads(call("GET", f"{base}/api/tasks/{urllib.parse.quote(task_id)}"))
        if st["state"] == "done":
            break
    with urllib.request.urlopen(st["result_url"], timeout=30) as r:
        data = r.read()
    with open(os.path.join(out, f"{name}.out"), "wb") as f:
        f.write(data)
