# Two final stages (each a --target) and a builder whose image comes from ARG defaults.
ARG GO_VERSION=1.26
ARG BUILDER_IMAGE=golang:${GO_VERSION}

FROM scratch AS prebuilt
COPY bin/app /app
USER 65532:65532
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
CMD ["serve"]

FROM ${BUILDER_IMAGE} AS builder
ARG VERSION=dev
ENV CGO_ENABLED=0 PASSWORD_FILE=/run/secrets/password
RUN go build -o /out/app ./app

FROM scratch AS base
USER 65532
HEALTHCHECK CMD ["/app", "healthcheck"]

# Inherits USER and HEALTHCHECK from base.
FROM base AS runtime
COPY --from=builder /out/app /app
ENTRYPOINT ["/app"]
