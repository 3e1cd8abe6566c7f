# syntax=docker/dockerfile:1
# Dockerfile: the worker's container image, for a machine with a container engine (CI, a
# developer's laptop). `scripts/image` builds the same image from Debian packages alone where
# no engine runs (README, "Deploying"); tests/py/test_image.py checks that both say the same
# user, entrypoint, command, environment, labels, port and stop signal.
#
#   docker build --build-arg GIT_REV=$(git rev-parse --short HEAD) -t consumer-graph-worker:$(cat VERSION) .
#
# How: the build stage is Debian 12 set up by the project's own scripts (scripts/deps build:
# Debian's build packages and librdkafka 2.8 from Debian 13's source) and built by make, as on
# a developer's machine. It also lists the Debian packages of the shared libraries the binary
# loads (scripts/image packages: ldd + dpkg -S), and the runtime stage installs exactly those on
# Debian 12 slim, plus ca-certificates and curl (the health check). Nothing of the build reaches
# the runtime layers: the package list is read through a bind mount, only the stripped binary
# and the production configuration are copied. The worker runs as uid 10001, reads
# /etc/cgw/config.yaml (secrets and endpoints from the environment: config/production.example.yaml)
# and stops on SIGTERM within its shutdown deadline.

FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive CGW_CACHE=/var/cache/cgw
WORKDIR /src
COPY scripts/ scripts/
RUN scripts/deps build
COPY . .
ARG GIT_REV=unknown
RUN make -j"$(nproc)" MODE=release GIT_REV="$GIT_REV" all \
 && mkdir /out \
 && strip --strip-debug -o /out/cgw build/release/cgw \
 && scripts/image packages build/release/cgw > /out/packages

FROM debian:12-slim
# Versions are not pinned: they are Debian 12's current ones, security updates included; the
# list itself is the build stage's (the packages whose libraries the binary was linked with).
# hadolint ignore=DL3008
RUN --mount=type=bind,from=build,source=/out/packages,target=/tmp/packages \
    apt-get update \
 && xargs -a /tmp/packages env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && groupadd --gid 10001 cgw \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cgw
COPY --from=build /out/cgw /usr/bin/cgw
COPY config/production.example.yaml /etc/cgw/config.yaml
ARG VERSION=0.1.0
ARG GIT_REV=unknown
ENV PATH=/usr/bin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="consumer-graph-worker" \
      org.opencontainers.image.description="Keeps the Neo4j purchase graph current from Kafka" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$GIT_REV"
USER 10001:10001
WORKDIR /
EXPOSE 9464/tcp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "2", "-o", "/dev/null", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["/usr/bin/cgw"]
CMD ["run", "-c", "/etc/cgw/config.yaml"]
