# syntax=docker/dockerfile:1
# Build: docker build -t briefbot .
# Run:   docker run -e DISCORD_TOKEN=... -v briefbot-data:/data -p 9464:9464 briefbot
# Health and Prometheus metrics: http://HOST:9464/healthz and /metrics (see README: Docker)

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN python -m venv /opt/briefbot \
    && /opt/briefbot/bin/pip install --no-cache-dir ".[postgres]"

FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="briefbot" \
      org.opencontainers.image.description="News briefing bot for Discord and Slack" \
      org.opencontainers.image.documentation="README.md: Discord, Slack (briefbot slack manifest --url)"
RUN groupadd --system --gid 10001 briefbot \
    && useradd --system --uid 10001 --gid briefbot --home-dir /data --shell /usr/sbin/nologin briefbot \
    && mkdir -p /data /etc/briefbot \
    && chown 10001:10001 /data
COPY --from=build /opt/briefbot /opt/briefbot
COPY config /etc/briefbot
ENV PATH="/opt/briefbot/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    BRIEFBOT_CONFIG_DIR=/etc/briefbot \
    BRIEFBOT_STORAGE__DATA_DIR=/data \
    BRIEFBOT_METRICS__HOST=0.0.0.0 \
    BRIEFBOT_METRICS__PORT=9464
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# Slack's HTTP endpoint (/slack/events) when SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are set
EXPOSE 3000
EXPOSE 9464
# /healthz answers 200 while polling ticks and Discord is connected, 503 otherwise (no
# curl in slim images: Python's urllib raises on a 503 or no answer, so the exit is 1)
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BRIEFBOT_METRICS__PORT', '9464'), timeout=8)"]
ENTRYPOINT ["briefbot"]
CMD ["run"]
