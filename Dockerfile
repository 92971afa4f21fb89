# One image for ingest, API (with its pages) and one-shot jobs (migrate, broker accounts).

# The pages' npm libraries, pinned by the lock file; only node_modules is kept.
FROM node:20-bookworm-slim AS pages
WORKDIR /pages
COPY dashboards/package.json dashboards/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ctt ctt
COPY ctt_common ctt_common
COPY protocol protocol
COPY schema schema
COPY ingest ingest
COPY geofence geofence
COPY tracking_api tracking_api
COPY firmware_sim firmware_sim
COPY deploy deploy
COPY dashboards dashboards
COPY --from=pages /pages/node_modules dashboards/node_modules
# /var/lib/ctt/push, /var/lib/ctt/audit-anchor: a fresh named volume mounted there takes this owner
# (the API's Web Push key; the audit signer's key and exported checkpoints).
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --uid 10001 ctt \
    && mkdir -p /var/lib/ctt/push /var/lib/ctt/audit-anchor && chown ctt /var/lib/ctt/push /var/lib/ctt/audit-anchor
USER ctt
# The package is installed into site-packages; the pages stay here. Numba's kernel cache must be
# writable by the unprivileged user.
ENV CTT_LOG_LEVEL=INFO CTT_DASHBOARDS_DIR=/app/dashboards NUMBA_CACHE_DIR=/tmp/numba-cache
CMD ["ctt", "ingest"]
