FROM golang:latest AS builder
RUN go build -o /out/app ./app

FROM scratch
COPY --from=builder /out/app /app
USER 65532:65532
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
