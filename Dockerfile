# lsq-sink container image: a builder stage resolves the locked environment with uv, the runtime
# stage gets only that virtualenv on a slim Python base, run by a fixed non-root user.
#
#   docker build -t lsq-sink .
#   docker run --read-only lsq-sink run --config /etc/lsq-sink/config.yaml
#
# Both stages share one base so the virtualenv's interpreter link (/usr/local/bin/python3.11 on
# python:3.11-slim) exists at runtime; pin it by digest in CI with --build-arg PYTHON_BASE=...@sha256:…
# Behind a TLS-intercepting proxy, pass its CA as a build secret (never baked into a layer):
#   --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
# scripts/build-image.sh builds it without any registry, on a local Debian bookworm base.

ARG PYTHON_BASE=python:3.11-slim

# ---- builder: uv, then the locked dependencies, then the project (non-editable) ----
FROM ${PYTHON_BASE} AS builder

# The same uv as the Makefile's UV_VERSION, from PyPI, in a throwaway venv of this stage only.
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && python3.11 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

WORKDIR /app

# Dependency layer: changes only when the lockfile does. The repository is a uv workspace whose
# other member, devkit/ (simulator and test stack, a dev dependency only), must be declared for
# `--locked` to check the lockfile: its pyproject.toml is bind-mounted, never copied, and
# --no-dev keeps the devkit out of the venv.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=devkit/pyproject.toml,target=/app/devkit/pyproject.toml \
    --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && /opt/uv/bin/uv sync --locked --no-dev --no-editable --no-install-project

# Project layer: the package itself, installed as a wheel into the same venv.
COPY README.md ./
COPY connector ./connector
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=devkit/pyproject.toml,target=/app/devkit/pyproject.toml \
    --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export SSL_CERT_FILE=/run/secrets/ca; fi \
    && /opt/uv/bin/uv sync --locked --no-dev --no-editable

# ---- runtime: the venv only; no uv, no pip cache, no sources ----
FROM ${PYTHON_BASE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="lsq-sink" \
      org.opencontainers.image.description="Kafka sink connector that streams CRM change events into LeadSquared" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 lsq-sink \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin lsq-sink

# Root-owned and read-only to the app user: nothing is written at runtime.
COPY --from=builder /app/.venv /app/.venv

ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
USER 10001:10001

# Fails the build if the venv does not work on this base or as this user.
RUN ["python", "-c", "import connector.commands.run, connector.commands.validate"]

# /metrics, /livez, /readyz (health.port)
EXPOSE 9400
ENTRYPOINT ["lsq-sink"]
CMD ["--help"]
