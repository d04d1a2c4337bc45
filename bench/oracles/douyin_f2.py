#!/usr/bin/env python3
"""Runs F2's own DouyinCrawler (f2 0.0.1.7, https://github.com/Johnserf-Seed/f2)
against the fake Douyin (examples/fake_douyin.rs) and records the raw requests
it sends, for tests/fixtures/douyin/f2_0.0.1.7_requests.json (replayed by the
test `douyin_fake::f2s_recorded_requests_are_all_accepted`).

Setup (a venv; F2's full dependency list is heavy, these are what the crawler
imports):

    python3 -m venv /tmp/f2venv
    /tmp/f2venv/bin/pip install --no-deps f2==0.0.1.7 gmssl==3.2.2
    /tmp/f2venv/bin/pip install httpx==0.27.2 'pydantic==2.9.*' pyyaml==6.0.2 \
        rich==13.9.3 jsonpath-ng==1.6.1 aiofiles==24.1.0 aiosqlite==0.20.0 \
        click==8.1.7 importlib-resources==6.4.5 m3u8==3.6.0 qrcode==8.0 \
        babel==2.13.0 pyexecjs==1.5.1 protobuf==5.28.3 'websockets<13.0' \
        websockets-proxy==0.1.2 browser-cookie3==0.20.1 cryptography==44.0.0

Run:

    cargo run --example fake_douyin > /tmp/fake.out &   # keep its stdin open
    /tmp/f2venv/bin/python bench/oracles/douyin_f2.py BASE_URL OUT.json

F2 reads msToken from the network when its model module is imported
(`f2/apps/douyin/model.py` calls `TokenManager.gen_real_msToken()` for a class
default); it is patched to its fallback shape first (126 'M' and '=='). F2's
logger writes `./logs/`, so the script runs in a temporary directory. Every fetch is made once with A-Bogus (F2's default) and once with
X-Bogus. Then F2's filters (`f2/apps/douyin/filter.py`, what its downloader
reads) are run over the fake's answers, and the fields a download needs are
checked present (printed as `<Filter>: ok`). The fixture ids are those of the fake's default fixture (3 users x
25 works), which are fixed by its code.
"""

import asyncio
import json
import os
import sys
import tempfile
import time

OUT = os.path.abspath(sys.argv[2]) if len(sys.argv) == 3 else None
os.chdir(tempfile.mkdtemp(prefix="douyin_f2_"))

import f2.apps.douyin.utils as dyutils  # noqa: E402

dyutils.TokenManager.gen_real_msToken = classmethod(lambda cls: "M" * 126 + "==")
dyutils.TokenManager.gen_ttwid = classmethod(lambda cls: "1%7Cfake")

from f2.apps.douyin import model  # noqa: E402  (after the patch)
from f2.apps.douyin.api import DouyinAPIEndpoints  # noqa: E402
from f2.apps.douyin.crawler import DouyinCrawler  # noqa: E402

UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0"
)
SEC_UID = "MS4wLjABAAAAfake-user-0000"
AWEME = "7300000000000000000"
MIX = "7400000000000000001"
COLLECTS = "7100000000000000001"
WEB_RID = "100000001"
ROOM_ID = "7300000000000000901"
COOKIE = (
    "ttwid=1%7Cfake; msToken=fake; sessionid=fakesession0123456789abcdef; "
    "sid_guard=fakesession0123456789abcdef%7C1700000000"
)


def point_at(base):
    hosts = {
        "https://www.douyin.com": base + "/web",
        "https://www.iesdouyin.com": base + "/ies",
        "https://live.douyin.com": base + "/live",
        "https://webcast.amemv.com": base + "/webcast",
    }
    for name in dir(DouyinAPIEndpoints):
        value = getattr(DouyinAPIEndpoints, name)
        if isinstance(value, str):
            for real, fake in hosts.items():
                if value.startswith(real):
                    setattr(DouyinAPIEndpoints, name, fake + value[len(real):])


async def main(base, out):
    point_at(base)
    records = []

    async def on_request(request):
        records.append(
            {
                "signer": current[0],
                "method": request.method,
                "target": request.url.raw_path.decode("latin-1"),
                "headers": {
                    k: v
                    for k, v in request.headers.items()
                    if k.lower() in ("user-agent", "referer", "cookie", "content-type")
                },
                "body": request.content.decode("utf-8"),
                "at_ms": int(time.time() * 1000),
            }
        )

    async def on_response(response):
        await response.aread()
        records[-1]["status"] = response.status_code
        records[-1]["empty"] = len(response.content) == 0

    current = ["a_bogus"]
    kwargs = {
        "headers": {"User-Agent": UA, "Referer": "https://www.douyin.com/"},
        "cookie": COOKIE,
        "proxies": {"http://": None, "https://": None},
        "timeout": 5,
        "max_retries": 1,
    }
    for signer in ("a_bogus", "X-Bogus"):
        current[0] = signer
        crawler = DouyinCrawler(kwargs)
        if signer == "X-Bogus":
            crawler.bogus_manager = dyutils.XBogusManager
        crawler.aclient.event_hooks = {"request": [on_request], "response": [on_response]}
        calls = [
            crawler.fetch_user_profile(model.UserProfile(sec_user_id=SEC_UID)),
            crawler.fetch_user_post(model.UserPost(max_cursor=0, count=5, sec_user_id=SEC_UID)),
            crawler.fetch_user_post(
                model.UserPost(max_cursor=1699985600000, count=5, sec_user_id=SEC_UID)
            ),
            crawler.fetch_user_like(model.UserLike(max_cursor=0, count=10, sec_user_id=SEC_UID)),
            crawler.fetch_user_collection(model.UserCollection(cursor=0, count=6)),
            crawler.fetch_user_collects(model.UserCollects(cursor=0, count=10)),
            crawler.fetch_user_collects_video(
                model.UserCollectsVideo(cursor=0, count=10, collects_id=COLLECTS)
            ),
            crawler.fetch_user_mix(model.UserMix(cursor=0, count=5, mix_id=MIX)),
            crawler.fetch_post_detail(model.PostDetail(aweme_id=AWEME)),
            crawler.fetch_post_feed(model.PostFeed()),
            crawler.fetch_live(model.UserLive(web_rid=WEB_RID, room_id_str="")),
            crawler.fetch_live_room_id(model.UserLive2(room_id=ROOM_ID)),
        ]
        for call in calls:
            try:
                await call
            except Exception as e:  # F2 raises on the empty body; keep going
                print("F2 raised:", type(e).__name__, e, file=sys.stderr)
        await crawler.aclient.aclose()
    await check_filters()
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"f2": "0.0.1.7", "user_agent": UA, "requests": records}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    bad = [r for r in records if r.get("empty")]
    print(f"recorded {len(records)} requests, {len(bad)} answered empty")


async def check_filters():
    """F2's filters (the JSONPath projections its downloader reads) over the
    fake's answers: prints the fields a download needs, which must not be
    None."""
    from f2.apps.douyin import filter as flt

    crawler = DouyinCrawler(
        {"headers": {"User-Agent": UA, "Referer": "https://www.douyin.com/"}, "cookie": COOKIE,
         "timeout": 5, "max_retries": 1}
    )
    checks = [
        (flt.UserPostFilter, crawler.fetch_user_post(model.UserPost(max_cursor=0, count=10, sec_user_id=SEC_UID)),
         ["video_play_addr", "images", "images_video", "music_play_url", "cover", "aweme_type", "has_more", "max_cursor"]),
        (flt.PostDetailFilter, crawler.fetch_post_detail(model.PostDetail(aweme_id="7300000000000000003")),
         ["images", "images_video", "music_play_url", "cover", "aweme_type", "nickname"]),
        (flt.PostDetailFilter, crawler.fetch_post_detail(model.PostDetail(aweme_id=AWEME)),
         ["video_play_addr", "animated_cover", "music_play_url", "cover", "nickname", "create_time"]),
        (flt.UserProfileFilter, crawler.fetch_user_profile(model.UserProfile(sec_user_id=SEC_UID)),
         ["nickname", "sec_user_id", "aweme_count"]),
        (flt.UserMixFilter, crawler.fetch_user_mix(model.UserMix(cursor=0, count=5, mix_id=MIX)),
         ["video_play_addr", "has_more", "max_cursor"]),
        (flt.UserCollectsFilter, crawler.fetch_user_collects(model.UserCollects(cursor=0, count=10)),
         ["collects_id", "collects_name", "has_more"]),
        (flt.UserLiveFilter, crawler.fetch_live(model.UserLive(web_rid=WEB_RID, room_id_str="")),
         ["live_status", "m3u8_pull_url", "flv_pull_url", "room_id", "nickname"]),
        (flt.UserLive2Filter, crawler.fetch_live_room_id(model.UserLive2(room_id=ROOM_ID)),
         ["live_status", "flv_pull_url", "room_id", "web_rid"]),
    ]
    for filt, call, fields in checks:
        got = filt(await call)._to_dict()
        missing = [k for k in fields if got.get(k) is None]
        print(f"{filt.__name__}: {'ok' if not missing else 'MISSING ' + ', '.join(missing)}")
    await crawler.aclient.aclose()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: douyin_f2.py BASE_URL OUT.json")
    asyncio.run(main(sys.argv[1].rstrip("/"), OUT))
