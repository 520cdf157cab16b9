# The Ocean CI exporter. Build:
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     -t ocean-ci/circleci-exporter:0.1.0 .
# Without arguments it runs the demo (a simulated CircleCI organisation); pass
# `--config /path/exporter.yml` and CIRCLECI_TOKEN_FILE to watch a real one.
#
# Reproducible: the dependencies are installed from requirements.lock, every file pinned by its
# hash. Regenerate it after changing pyproject.toml's dependencies with pip-tools:
#   pip-compile --generate-hashes --allow-unsafe --build-deps-for=wheel --strip-extras \
#     --no-emit-index-url -o requirements.lock pyproject.toml

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependencies first, in a layer of their own: a change to exporter/ reuses it.
COPY requirements.lock ./
RUN pip wheel --require-hashes --wheel-dir /wheels/deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
# The build backend comes from the locked wheels too; nothing unpinned is downloaded.
RUN pip install --no-index --find-links /wheels/deps setuptools \
    && pip wheel --no-deps --no-build-isolation --no-index --wheel-dir /wheels/app .

FROM python:3.11.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="circleci-exporter" \
      org.opencontainers.image.description="Prometheus exporter for CircleCI (Ocean CI)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/ocean-ci/ocean-ci" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Ocean CI"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter \
    && install -d -o 10001 -g 10001 /var/lib/circleci-exporter  # backfill's output volume
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels/deps /wheels/deps
RUN pip install --no-index --find-links /wheels/deps --require-hashes -r /tmp/requirements.lock \
    && rm -rf /wheels/deps /tmp/requirements.lock
COPY --from=build /wheels/app /wheels/app
# The version label must be the version of the code inside: a wrong --build-arg fails the build.
RUN pip install --no-index --no-deps /wheels/app/*.whl && rm -rf /wheels \
    && test "$(python -c 'import exporter; print(exporter.__version__)')" = "${VERSION}"

USER 10001:10001
EXPOSE 10027
# Asks /healthz on the port the settings give (CIRCLECI_EXPORTER_CONFIG, CIRCLECI_EXPORTER_WEB__*),
# so a changed listen address is followed. The slim image has no curl or wget.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "exporter.healthcheck"]
ENTRYPOINT ["circleci-exporter"]
CMD ["--demo"]
