# syntax=docker/dockerfile:1
#
# sungrow2mqtt container image: SUNGROW iSolarCloud Open API -> MQTT / Home Assistant.
#
#   docker build -t sungrow2mqtt .
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t sungrow2mqtt .
#
#   docker run -d --name sungrow2mqtt --env-file .env \
#     -v "$PWD/config:/config:ro" -v sungrow2mqtt-data:/data sungrow2mqtt
#
# /config/config.yaml  the configuration (read-only is fine). It must set
#                        isolarcloud.token_file: /data/token.json
#                      and keep secrets in the environment ("${SUNGROW_PASSWORD}" etc.).
#                      The container runs as uid 10001: the file must be readable by it
#                      (chmod 644 when it holds no secrets inline, or chown 10001).
# /data                the login token and the status file read by `sungrow2mqtt health`
#                      (a named volume is initialised with the right owner; a bind mount
#                      needs `chown 10001:10001`). HOME is /data too, so even the default
#                      token_file (~/.local/state/...) lands in the volume.
#
# Multi-arch: every runtime dependency is pure Python except pycryptodome (and PyYAML's
# optional C extension). PyPI has wheels for amd64 and arm64; on linux/arm/v7 (32-bit
# Raspberry Pi OS) there are none, so the builder stage carries a C compiler and pip
# builds them from source there. The final stage only installs finished wheels: no
# compiler, no network access needed for the install.

ARG PYTHON_VERSION=3.12

# ---------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# gcc + libc headers: only for platforms without binary wheels (linux/arm/v7).
# DL3008 (pin apt versions) is ignored on purpose: Debian's versions differ per architecture
# and point release, a pin would break multi-arch builds, and this stage is thrown away.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.cfg setup.py README.md ./
COPY sungrow2mqtt ./sungrow2mqtt

# The project's wheel plus a wheel of every dependency (downloaded or built here).
RUN pip wheel --wheel-dir /wheels . \
    && ls -l /wheels

# ---------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown
# Set at build time, e.g. --build-arg SOURCE=https://github.com/OWNER/sungrow2mqtt
ARG SOURCE=""

LABEL org.opencontainers.image.title="sungrow2mqtt" \
      org.opencontainers.image.description="Bridge a SUNGROW iSolarCloud Open API account to MQTT with Home Assistant discovery" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/python:${PYTHON_VERSION}-slim-bookworm"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOME=/data

# Install from the builder's wheels only (bind-mounted: the wheels never become a layer).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/sungrow2mqtt-*.whl \
    && sungrow2mqtt --version

RUN groupadd --system --gid 10001 sungrow2mqtt \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin sungrow2mqtt \
    && mkdir -p /config /data \
    && chown 10001:10001 /data \
    && chmod 0700 /data

VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

# Healthy = the running bridge's status file (next to the token file) says so; see
# `sungrow2mqtt health --help`. The first cloud poll can take a while: start period 2 min.
HEALTHCHECK --interval=60s --timeout=15s --start-period=120s --retries=3 \
    CMD ["sungrow2mqtt", "health", "-c", "/config/config.yaml"]

# The bridge publishes "offline" and exits 0 within 5 s of SIGTERM (docker stop waits 10 s).
STOPSIGNAL SIGTERM

ENTRYPOINT ["sungrow2mqtt"]
CMD ["run", "-c", "/config/config.yaml"]
