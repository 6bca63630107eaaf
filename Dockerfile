# One image for every cancelflow process; compose picks the command.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY tasks ./tasks
COPY webhooks ./webhooks
COPY sandbox ./sandbox
RUN pip install --no-cache-dir . "psycopg[binary]>=3.2" \
    && useradd --system --uid 10001 cancelflow
USER cancelflow
