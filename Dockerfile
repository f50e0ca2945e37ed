# HashRelay's container image: a static binary in an empty image, run as uid 65532.
#
#	docker build -t hashrelay --build-arg VERSION=$(git describe --tags --always) .
#	docker run -d --name hashrelay -p 3333:3333 -p 127.0.0.1:8080:8080 \
#	  --ulimit nofile=65536:65536 --stop-timeout 30 \
#	  -e HASHRELAY_UPSTREAM=stratum+tcp://USER:PASS@HOST:PORT hashrelay
#
# Configuration is by environment: every flag -name is also HASHRELAY_NAME (upper
# case, dashes as underscores), e.g. -shutdown-timeout is HASHRELAY_SHUTDOWN_TIMEOUT.
# Arguments after the image name are flags too and win over the environment.
#
# No Docker engine runs in CI, so cmd/hashrelay/image_test.go reads this file, builds
# the binary with the build stage's exact command and runs it in a root filesystem
# holding only what the final stage copies. It understands the instructions used here
# and fails on any other, so keep the build flags in the one RUN go build line and
# copy into the final stage only the binary, files from the build context, the CA
# bundle, and directories a build-stage `RUN mkdir -p` made.

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION is what `hashrelay -version`, /api/v1/summary and the dashboard show.
ARG VERSION=dev
# Set by BuildKit for each platform of a multi-platform build (--platform
# linux/amd64,linux/arm64); Go cross-compiles, so the build stage runs natively.
ARG TARGETOS
ARG TARGETARCH
ENV CGO_ENABLED=0
RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /out/hashrelay ./cmd/hashrelay
# The state directory (worker counters across restarts), copied empty into the image
# owned by its user, so a volume mounted there starts writable by it.
RUN mkdir -p /out/state

FROM scratch
# The CA bundle verifies stratum+ssl:// pools (Go reads this path on Linux).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# A passwd and group naming the non-root user, for tools that show user names.
COPY deploy/docker/passwd /etc/passwd
COPY deploy/docker/group /etc/group
COPY --from=build /out/hashrelay /hashrelay
COPY --from=build --chown=65532:65532 /out/state /var/lib/hashrelay
USER 65532:65532

# Miners (stratum) and HTTP (dashboard, /healthz, /readyz, /metrics, API). Both bind
# every interface inside the container; publish the HTTP port to loopback or a
# trusted network only, since its endpoints need no token.
EXPOSE 3333 8080
ENV HASHRELAY_LISTEN=0.0.0.0:3333 HASHRELAY_HTTP=0.0.0.0:8080
# Worker counters survive a restart of the container; mount a volume here
# (`-v hashrelay-state:/var/lib/hashrelay`) to keep them across new containers.
ENV HASHRELAY_STATE_DIR=/var/lib/hashrelay

# Open files: every miner is one file descriptor, and 19,000 miners need more than the
# usual 1,024. HashRelay raises its soft limit to the hard limit itself, so raise the
# hard limit: `docker run --ulimit nofile=65536:65536`, `ulimits: nofile:` in compose;
# on Kubernetes the runtime's default (usually 1048576) applies.

# There is no shell in the image: the healthcheck is the binary itself. With no
# arguments it asks /healthz on HASHRELAY_HTTP (0.0.0.0 is asked on loopback).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/hashrelay", "healthcheck"]

# SIGTERM starts the drain: /readyz turns 503, the listener closes, miners get
# client.reconnect (-reconnect-on-shutdown), forwarded shares are answered, and the
# process exits 0, all within -shutdown-timeout (10s by default). Give the runtime
# more than that before it sends SIGKILL: `docker run --stop-timeout`, compose
# `stop_grace_period`, Kubernetes `terminationGracePeriodSeconds` (defaults: 10 s,
# 10 s, 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/hashrelay"]
