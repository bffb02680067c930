# One image for tokensrv and for the example orders service (docker-compose.yml runs the cluster).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /app
# tini (Debian's) is PID 1: it forwards SIGTERM to tokensrv, whose clean shutdown then runs (a
# process that is PID 1 gets no default signal handling), and reaps what --workers leaves behind
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --no-create-home tokensrv

# the verifier first (tokensrv-verify, verify/: the server depends on it and it is on no index),
# then the server with uvloop (the fast extra), both at the versions CI tested
COPY constraints.txt ./
COPY verify ./verify
RUN pip install -c constraints.txt ./verify
COPY setup.cfg pyproject.toml README.md LICENSE ./
COPY tokensrv ./tokensrv
RUN pip install -c constraints.txt '.[fast]' \
    && mkdir -p /app/keys \
    && chown tokensrv /app/keys \
    && chmod 700 /app/keys
# the example service runs from /app as `python -m examples.orders`
COPY examples ./examples

USER tokensrv
# keys/ is a volume shared by every instance: private keys live there, never in the image
VOLUME ["/app/keys"]
ENV TOKENSRV_HOST=0.0.0.0 TOKENSRV_PORT=8080 TOKENSRV_KEYS_DIR=/app/keys TOKENSRV_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["tokensrv", "serve"]
