FROM golang:1.26 AS builder
RUN go build -o /out/app ./app

FROM scratch
COPY --from=builder /out/app /app
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
