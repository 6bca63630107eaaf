# One image for every cancelflow process; compose picks the command (README "Deployment").
# The default target, `production`, holds the runtime dependencies only: no dev or local extras
# (no embedded Valkey binary, no psutil), and no provider sandbox. Builds on amd64 and arm64.
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY tasks ./tasks
COPY webhooks ./webhooks
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 cancelflow
USER cancelflow

# The provider emulator, for `docker compose --profile sandbox` only: the runtime image plus the
# sandbox's source (`python -m sandbox` runs it from the working directory).
FROM runtime AS sandbox
COPY sandbox ./sandbox
CMD ["python", "-m", "sandbox", "--host", "0.0.0.0", "--port", "9000"]

# Last, so that a plain `docker build .` builds it.
FROM runtime AS production
