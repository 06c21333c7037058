FROM golang:latest AS builder
RUN go build -o /out/app ./app

FROM scratch
COPY --from=builder /out/app /app
ENV API_TOKEN=dev
HEALTHCHECK CMD /app healthcheck
ENTRYPOINT ["/app"]
