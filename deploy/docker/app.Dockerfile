# syntax=docker/dockerfile:1.7
# The app: a static binary (pure-Go SQLite, no cgo) on distroless, as an
# unprivileged user, with its data in /data.
#   docker build -f deploy/docker/app.Dockerfile -t edgeapp/app .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/app ./cmd/app && \
    go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/docker/healthcheck && \
    mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /out/healthcheck /usr/local/bin/
# An empty /data owned by nonroot, so a fresh named volume mounted there
# starts out writable by the app.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV APP_ADDR=:8000 METRICS_ADDR=:9091 DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["/usr/local/bin/app"]
