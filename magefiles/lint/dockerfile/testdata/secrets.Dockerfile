ARG GITHUB_TOKEN
FROM scratch
ARG NPM_API_KEY=none
ENV DB_PASSWORD=dev \
    CACHE_ADDR=redis://user:hunter2@cache:6379/0
ENV DB_PASSWORD_FILE=/run/secrets/db_password
COPY app /app
USER 65532:65532
HEALTHCHECK CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
