# closedloop itself (closedloop[all]) from this repository's source: the compose `schema`
# job runs `closedloop migrate` in it, the `demo` profile examples/compose_traffic.py.
# Build context: the repository root.
#   docker build -f deploy/app.Dockerfile -t closedloop-app:0.1.0 .
FROM python:3.12.12-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The wheel ships collector/otel-collector.yaml through a link under src/, so it comes too.
COPY pyproject.toml README.md ./
COPY collector/otel-collector.yaml collector/
COPY src src
RUN pip install ".[all]"
COPY examples/compose_traffic.py examples/

RUN useradd --create-home --uid 10001 closedloop
USER closedloop
CMD ["closedloop", "--help"]
