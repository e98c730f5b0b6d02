# syntax=docker/dockerfile:1.7
# The edge: a static binary on distroless, as an unprivileged user.
#   docker build -f deploy/docker/edge.Dockerfile -t edgeapp/edge .
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/edge ./cmd/edge && \
    go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./deploy/docker/healthcheck

# static-debian12: CA certificates, /etc/passwd with nonroot (65532), tzdata; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edge /out/healthcheck /usr/local/bin/
# The shipped routes; docker-compose.yml mounts deploy/edge/routes.yaml over it.
COPY routes.yaml /etc/edge/routes.yaml
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:9180/healthz"]
ENTRYPOINT ["/usr/local/bin/edge"]
CMD ["run", "-config", "/etc/edge/routes.yaml"]
