FROM scratch
COPY app /app
USER nobody
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
