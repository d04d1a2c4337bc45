#!/usr/bin/env python3
"""Runs F2 0.0.1.7 (https://github.com/Johnserf-Seed/f2) the way its CLI runs
`f2 dy -M post -u <user URL>`, against the loopback fake Douyin
(examples/fake_douyin.rs), for bench/douyin.sh.

    python douyin_f2_fake.py BASE_URL SEC_UID COOKIE OUT_DIR

What is patched, and nothing else:
- F2's hosts: every `DouyinAPIEndpoints` URL on `https://www.douyin.com` is
  moved to the fake's `{BASE_URL}/web`, and the msToken report
  (`conf.yaml`'s `msToken.url`) to `{BASE_URL}/mssdk/web/report`, before
  `f2.apps.douyin.model` is imported (it asks for an msToken at import
  time); the fake hands out a real-shaped token, as spoolfetch gets one.
- The options are F2's defaults for Douyin (`f2/conf/app.yaml`: naming
  `{create}_{desc}`, timeout 10 s, which F2 also sleeps after every page,
  5 retries, 5 connections, 10 tasks, 20 works a page) and the headers of
  `f2/conf/conf.yaml`, with the fake's login cookie (F2's downloader refuses
  to start without a cookie; the post listing does not need one).
- Bark notifications (to api.day.app) are turned off.
F2's logs and databases go to a temporary working directory.
"""

import asyncio
import os
import sys
import tempfile

import yaml

BASE, SEC_UID, COOKIE, OUT = sys.argv[1:5]
WEB = f"{BASE}/web"
OUT = os.path.abspath(OUT)
os.chdir(tempfile.mkdtemp(prefix="f2_bench_"))

import f2  # noqa: E402
import f2.apps.douyin.utils as dyutils  # noqa: E402

dyutils.TokenManager.token_conf = dict(dyutils.TokenManager.token_conf, url=f"{BASE}/mssdk/web/report")

from f2.apps.douyin.api import DouyinAPIEndpoints  # noqa: E402

for name in dir(DouyinAPIEndpoints):
    value = getattr(DouyinAPIEndpoints, name)
    if isinstance(value, str) and value.startswith("https://www.douyin.com"):
        setattr(DouyinAPIEndpoints, name, WEB + value[len("https://www.douyin.com"):])

import f2.apps.douyin.handler as dyhandler  # noqa: E402
from f2.apps.douyin.handler import DouyinHandler  # noqa: E402

# Bark notifications go to api.day.app when F2 finishes: a benchmark on
# loopback sends nothing out.
dyhandler.BarkClientConfManager.enable_bark = classmethod(lambda cls: False)

conf_dir = os.path.join(os.path.dirname(f2.__file__), "conf")
with open(os.path.join(conf_dir, "app.yaml"), encoding="utf-8") as f:
    app = yaml.safe_load(f)["douyin"]
with open(os.path.join(conf_dir, "conf.yaml"), encoding="utf-8") as f:
    client = yaml.safe_load(f)["f2"]["douyin"]

kwargs = dict(app)
kwargs.update(
    {
        "mode": "post",
        "url": f"{WEB}/user/{SEC_UID}",
        "path": OUT,
        "cookie": COOKIE,
        "headers": client["headers"],
        "proxies": {"http://": None, "https://": None},
        "interval": "all",
        "music": False,
        "cover": False,
        "desc": False,
        "folderize": False,
        "languages": "en_US",
        "max_counts": None,
    }
)


async def main() -> None:
    await DouyinHandler(kwargs).handle_user_post()


asyncio.run(main())
