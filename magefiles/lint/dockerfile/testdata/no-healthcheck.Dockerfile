FROM scratch AS with-none
COPY app /app
USER 65532:65532
HEALTHCHECK NONE
ENTRYPOINT ["/app"]

FROM scratch AS without
COPY app /app
USER 65532:65532
ENTRYPOINT ["/app"]
