FROM scratch
COPY app /app
SERVE /app
