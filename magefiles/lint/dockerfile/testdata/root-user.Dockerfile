FROM scratch
COPY app /app
USER 0:0
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
