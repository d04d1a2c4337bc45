#!/usr/bin/env python3
"""Runs gallery-dl against the fake Pixiv of examples/fake_pixiv.rs.

    python3 bench/gallery_dl_fake.py --fake-base http://127.0.0.1:PORT \\
        [gallery-dl arguments ...]

gallery-dl has no setting for Pixiv's hosts: the App API root
(https://app-api.pixiv.net) and the OAuth URL
(https://oauth.secure.pixiv.net/auth/token) are literals in
gallery_dl/extractor/pixiv.py. This launcher imports gallery_dl, patches
the requests every gallery-dl session makes so that these hosts, the image
host (https://i.pximg.net) and the placeholder host (https://s.pximg.net)
go to the fake, points the extractor's placeholder check (limit_url) at the
fake's placeholders, and then calls gallery_dl.main() with the remaining
arguments. Anything else that is not on the fake (www.pixiv.net AJAX, for
one) fails at once with a connection error: nothing leaves loopback.

The fake already hands out image, zip and next_url addresses on its own
base URL; the image-host rewrite only matters for addresses built from
Pixiv's real hosts.

Tested with gallery-dl 1.32.18 (`pip install gallery-dl`).
"""

import sys

import requests

import gallery_dl
from gallery_dl.extractor import pixiv

REAL_HOSTS = (
    "https://app-api.pixiv.net",
    "https://oauth.secure.pixiv.net",
    "https://i.pximg.net",
    "https://s.pximg.net",
)


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--fake-base":
        sys.stderr.write(__doc__)
        return 2
    base = args[1].rstrip("/")
    if not base.startswith(("http://127.0.0.1:", "http://localhost:")):
        sys.stderr.write("gallery_dl_fake: --fake-base must be a loopback URL\n")
        return 2

    # Placeholder detection (`limit_sanity_level_360.png` and friends).
    pixiv.PixivExtractor.limit_url = base + "/common/images/limit_"

    original_request = requests.Session.request

    def request(self, method, url, *a, **kw):
        for host in REAL_HOSTS:
            if url.startswith(host):
                url = base + url[len(host):]
                break
        if not url.startswith(base + "/"):
            raise requests.exceptions.ConnectionError(
                f"gallery_dl_fake: refusing {url} (not on the fake)")
        return original_request(self, method, url, *a, **kw)

    requests.Session.request = request

    sys.argv = ["gallery-dl"] + args[2:]
    return gallery_dl.main()


if __name__ == "__main__":
    sys.exit(main())
