# spoolfetch as a container: a small runtime image that runs the daemon as
# an unprivileged user whose UID/GID follow PUID/PGID (as NAS images do).
#
#   docker build -t spoolfetch .
#   docker run -d -e PUID=1000 -e PGID=1000 \
#     -v /srv/spool:/spool -v /srv/spoolfetch-state:/state -v /srv/downloads:/downloads spoolfetch
#
# See compose.yaml and the README's "Container" section.

FROM rust:1.88-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY tests ./tests
RUN cargo build --release --locked --bin spoolfetch

FROM debian:bookworm-slim
# tini reaps and forwards signals (SIGTERM stops the daemon gracefully);
# setpriv (util-linux, already in the image) drops to PUID/PGID. TLS roots
# are built into the binary, so no ca-certificates package is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/spoolfetch /usr/local/bin/spoolfetch
COPY contrib/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV SPOOLFETCH_SPOOL=/spool \
    SPOOLFETCH_STATE_DIR=/state \
    SPOOLFETCH_SAVE_PATH=/downloads \
    SPOOLFETCH_INSTANCE=container \
    PUID=1000 \
    PGID=1000
VOLUME ["/spool", "/state", "/downloads"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=20s CMD ["/usr/local/bin/docker-entrypoint.sh", "health"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["run"]
