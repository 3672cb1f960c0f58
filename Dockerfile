# syntax=docker/dockerfile:1
# Build stage: wheels for the project (with its C extension) and its dependencies (numba/llvmlite,
# granian, msgspec ship wheels).
FROM python:3.11-slim AS build
# A compiler and OpenSSL's headers for the bidder's C extension; the runtime image has libssl3 already.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY setup.py ./
COPY pyproject.toml README.md ./
COPY bidder ./bidder
COPY shield ./shield
COPY connectors ./connectors
COPY control ./control
COPY bench ./bench
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: the wheels only, a non-root user, state in /data.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/data/numba-cache \
    RTB_DATA_DIR=/data \
    RTB_BIND=0.0.0.0:8080 \
    RTB_CAMPAIGNS=/app/examples/campaigns.json
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin rtb \
    && mkdir -p /data /app/examples && chown rtb /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels rtb==0.1.0 && rm -rf /wheels
COPY examples/campaigns.json /app/examples/campaigns.json
USER 10001
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["rtb", "bidder"]
