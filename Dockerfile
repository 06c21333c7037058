# The service image: one static binary on an empty base.
#
# `mage image:build` does not build this file's final stages: it compiles
# the binary, then assembles the image itself as OCI (go-containerregistry,
# as ko does: magefiles/dockerimage/assemble.go), one layer with /app and a
# configuration dated with the commit, so the same commit always gives the
# same image digest. The classic builder would write the build time into
# the image. The final stages here describe that same image for people who
# run `docker build .`; magefiles/dockerimage's tests check that the two
# declare the same USER, EXPOSE, HEALTHCHECK, ENTRYPOINT, CMD and labels.
#
# Where the binary comes from:
#
#   --target prebuilt (mage image:build, the default there)
#       bin/image/app, compiled on the host by mage with the host's Go build
#       cache (CGO_ENABLED=0 GOOS=linux GOARCH=<engine's arch>
#       go build -trimpath -buildvcs=false -ldflags ...). Needs no base image.
#   --target runtime (the default: plain `docker build .`)
#       compiles inside the golang builder stage. Needs the golang image.
#       mage image:build -target=runtime builds the builder stage through
#       the engine and assembles the image around its /out/app: with the
#       host's Go release, the same digest as prebuilt.
#
# Stage order matters. The classic builder (no BuildKit) builds every stage
# that comes before the target in file order, so prebuilt comes first: it
# builds without pulling anything. Building runtime with the classic builder
# builds prebuilt too, so bin/image/app must exist in the context (mage puts
# an empty placeholder there when it builds runtime). BuildKit skips stages
# the target does not use.
#
# The two final stages must stay identical apart from where /app comes from;
# magefiles/dockerimage's tests compare them.
#
# Only the API's port is EXPOSEd. The metrics port (metrics.port, 9090) is
# left out on purpose: EXPOSE is what `docker run -P` publishes and what
# proxies' port discovery picks from, and the metrics are for a scraper on
# the stack's network, never for the outside.

ARG GO_VERSION=1.26
ARG BUILDER_IMAGE=golang:${GO_VERSION}

# ============================================
# prebuilt: the host-built binary
# ============================================
FROM scratch AS prebuilt
COPY bin/image/app /app
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=
ARG SOURCE=https://github.com/fractionate/service-template
ARG TITLE=service-template
LABEL org.opencontainers.image.title="${TITLE}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}"
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
CMD ["serve"]

# ============================================
# builder: compiles the binary in the golang image
# ============================================
FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
# Modules first, in their own layer: it is rebuilt only when go.mod or go.sum
# change.
COPY go.mod go.sum ./
RUN go mod download
# Only the directories the binary is built from (tests keep this list in step
# with `go list -deps ./app`), so other files never invalidate the cache.
COPY app/ ./app/
COPY config/ ./config/
COPY internal/ ./internal/
COPY migrations/ ./migrations/
# Set by BuildKit for the platform being built; empty (the builder's own
# platform) with the classic builder.
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/fractionate/service-template/app/internal/buildinfo.Version=${VERSION} -X github.com/fractionate/service-template/app/internal/buildinfo.Commit=${COMMIT} -X github.com/fractionate/service-template/app/internal/buildinfo.Date=${CREATED}" \
      -o /out/app ./app

# ============================================
# runtime (default): the binary from the builder stage
# ============================================
FROM scratch AS runtime
COPY --from=builder /out/app /app
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=
ARG SOURCE=https://github.com/fractionate/service-template
ARG TITLE=service-template
LABEL org.opencontainers.image.title="${TITLE}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}"
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
CMD ["serve"]
