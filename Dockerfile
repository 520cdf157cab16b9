# The Ocean CI exporter. Build: docker build -t ocean-ci/circleci-exporter .
# Without arguments it runs the demo (a simulated CircleCI organisation); pass
# `--config /path/exporter.yml` and CIRCLECI_TOKEN to watch a real one.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter/ exporter/
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter \
    && install -d -o 10001 -g 10001 /var/lib/circleci-exporter  # backfill's output volume
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels

USER 10001:10001
EXPOSE 10027
# The slim image has no curl or wget; Python's urllib is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:10027/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["circleci-exporter"]
CMD ["--demo"]
