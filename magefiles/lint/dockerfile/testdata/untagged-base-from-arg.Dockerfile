ARG BUILDER_IMAGE=golang
ARG UNSET_IMAGE

FROM ${BUILDER_IMAGE} AS builder
RUN go build -o /out/app ./app

FROM ${UNSET_IMAGE} AS tools

FROM scratch
COPY --from=builder /out/app /app
COPY --from=alpine /etc/ssl /etc/ssl
COPY --from=tools /bin/true /true
USER 65532:65532
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
