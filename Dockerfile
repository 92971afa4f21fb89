# One image for ingest, API and one-shot jobs (migrate, broker accounts).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ctt ctt
COPY ingest ingest
COPY tracking_api tracking_api
COPY firmware_sim firmware_sim
COPY deploy deploy
RUN pip install --no-cache-dir -c constraints.txt . && useradd --system --uid 10001 ctt
USER ctt
ENV CTT_LOG_LEVEL=INFO
CMD ["ctt", "ingest"]
