ARG UID=65532
FROM scratch AS redeclared
ARG UID
USER ${UID}:${UID}
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]

FROM scratch AS not-redeclared
USER ${UID}
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
