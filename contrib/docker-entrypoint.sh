#!/bin/sh
# The container's entry point: runs a spoolfetch command (default `run`)
# as the user PUID:PGID, after making the three volumes theirs.
set -eu
PUID=${PUID:-1000}
PGID=${PGID:-1000}
# The binary (a test runs this script against the one it built).
BIN=${SPOOLFETCH_BIN:-/usr/local/bin/spoolfetch}
case "$PUID$PGID" in
    *[!0-9]*) echo "docker-entrypoint: PUID and PGID must be numbers" >&2; exit 2 ;;
esac
if [ "$(id -u)" = 0 ]; then
    for d in "${SPOOLFETCH_SPOOL:-/spool}" "${SPOOLFETCH_STATE_DIR:-/state}" "${SPOOLFETCH_SAVE_PATH:-/downloads}"; do
        mkdir -p "$d"
        # The top folder only: a large download tree is not walked at
        # every start; what is inside was written by the same user.
        chown "$PUID:$PGID" "$d"
    done
    exec setpriv --reuid="$PUID" --regid="$PGID" --clear-groups -- "$BIN" "$@"
fi
exec "$BIN" "$@"
