FROM scratch as runtime
MAINTAINER someone@example.com
COPY app /app
USER 65532:65532
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
