# syntax=docker/dockerfile:1
# Grantflow: one image for the control plane (`grantflow serve`) and the connector
# (`grantflow connector run`). Build tools stay in the build stage.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/build-venv \
 && /opt/build-venv/bin/pip install --no-cache-dir build==1.6.1
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/build-venv/bin/python -m build --wheel --outdir /dist

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/grantflow/bin:$PATH \
    GRANTFLOW_HOST=0.0.0.0 \
    GRANTFLOW_LOG_FORMAT=json
RUN groupadd --system --gid 10001 grantflow \
 && useradd --system --uid 10001 --gid grantflow --home-dir /nonexistent --shell /usr/sbin/nologin grantflow
COPY --from=build /dist/*.whl /tmp/
RUN python -m venv /opt/grantflow \
 && /opt/grantflow/bin/pip install --no-cache-dir /tmp/*.whl \
 && rm -f /tmp/*.whl
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["grantflow"]
CMD ["serve"]
