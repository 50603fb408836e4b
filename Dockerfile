# capmon container image: one image for every role (`capmon run|produce|decide|deliver|api`).
#   docker build -t capmon .
#   docker run --rm -p 8080:8080 capmon            # everything in one process, SQLite store
# deploy/compose.yaml runs one container per role on Kafka and PostgreSQL.

# -- build: a virtualenv with capmon and its pinned dependencies, no compilers in the final image
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/capmon
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY producers ./producers
COPY consumers ./consumers
RUN /opt/capmon/bin/pip install . \
    && /opt/capmon/bin/capmon --help >/dev/null

# -- runtime
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="capmon" \
      org.opencontainers.image.description="Capacity alerts for California CCAs: CAISO notices and SCE DR events to webhook, SMS and email" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 capmon \
    && useradd --system --uid 10001 --gid capmon --home-dir /var/lib/capmon --create-home \
       --shell /usr/sbin/nologin capmon
COPY --from=build /opt/capmon /opt/capmon
COPY scenarios /usr/share/capmon/scenarios
ENV PATH=/opt/capmon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CAPMON_LOG_FORMAT=json \
    CAPMON_API_HOST=0.0.0.0 \
    CAPMON_API_OPS_HOST=0.0.0.0 \
    CAPMON_STORE_URL=sqlite+aiosqlite:////var/lib/capmon/capmon.db
USER 10001:10001
WORKDIR /var/lib/capmon
# 8080: API, status page and /metrics (api role, `capmon run`); 9464: ops server of the others.
EXPOSE 8080 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["capmon", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["capmon"]
CMD ["run"]
