# shipper: ships an application's log files to CloudWatch Logs (an ECS sidecar).
#
#   docker build -t shipper .
#   docker run --read-only -v logs:/logs:ro -v shipper-state:/var/lib/shipper shipper
#
# The build stage makes a virtualenv with shipper and its dependencies (compiling any
# wheel it must); the final stage copies only that virtualenv onto a clean slim image,
# so no compiler, pip cache or source tree ships.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/shipper
COPY pyproject.toml README.md ./
COPY shipper ./shipper
RUN /opt/shipper/bin/pip install .

FROM python:${PYTHON_VERSION}-slim
# A fixed, unprivileged id: volumes can be prepared for it (ECS, Kubernetes fsGroup).
RUN groupadd --system --gid 10001 shipper \
    && useradd --system --uid 10001 --gid shipper --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shipper \
    && mkdir -p /var/lib/shipper \
    && chown shipper:shipper /var/lib/shipper
COPY --from=build /opt/shipper /opt/shipper
COPY config/shipper.container.yaml /etc/shipper/shipper.yaml
# No .pyc files written at run time: the root filesystem may be read-only.
ENV PATH=/opt/shipper/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHIPPER_CONFIG=/etc/shipper/shipper.yaml \
    SHIPPER_HEALTH_LISTEN=127.0.0.1:9880
# Checkpoints are the only thing written: keep them on a volume.
VOLUME ["/var/lib/shipper"]
USER 10001:10001
# slim has no curl: ask /healthz with the interpreter that is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://' + os.environ.get('SHIPPER_HEALTH_LISTEN', '127.0.0.1:9880') + '/healthz', timeout=4)"]
# SIGTERM: deliver what was read, save checkpoints, exit 0 within shutdown_timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["shipper"]
CMD ["run"]
