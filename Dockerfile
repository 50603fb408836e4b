# capmon container image: one image for every role (`capmon run|produce|decide|deliver|api`).
#   make image                                   # = docker build -t capmon:0.1.0 .
#   docker run --rm -p 8080:8080 capmon:0.1.0    # everything in one process, SQLite store
#   docker build --build-arg EXTRAS=demo -t capmon:0.1.0-demo .
#   docker run --rm capmon:0.1.0-demo demo       # the 2022 heat wave into local sinks
# deploy/compose.yaml runs one container per role on Kafka and PostgreSQL; deploy/k8s names
# the same image (push it to your registry: deploy/k8s/kustomization.yaml).

# -- build: a virtualenv with capmon and its pinned dependencies, no compilers in the final image
FROM python:3.11-slim-bookworm AS build
# Extras to install beside the roles: empty for production, `demo` for `capmon demo`'s sinks.
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/capmon
WORKDIR /src
COPY pyproject.toml README.md ./
COPY capmon ./capmon
COPY monitor ./monitor
COPY producers ./producers
COPY consumers ./consumers
# The demo's scenario, installed as package data (pyproject.toml).
COPY scenarios ./scenarios
RUN /opt/capmon/bin/pip install ".${EXTRAS:+[$EXTRAS]}" \
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
