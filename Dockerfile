# syntax=docker/dockerfile:1.7
# GPU image of the refit service. On a machine without a GPU it serves on CPU.
#   docker build -t refit .
#   docker run --gpus all -p 3000:3000 -v refit-data:/data refit
# What a container keeps where (docs/scaling.md):
#   BENTOML_HOME       /home/refit/bentoml, in the container: BentoML's metrics folder,
#                      which every start wipes, is never shared by two containers
#   REFIT_MODEL_STORE  /data/bentoml/models, on the volume: every version; several
#                      containers may share it ($BENTOML_HOME/models links to it)
#   REFIT_STATE_DIR    /data/bentoml/refit, on the volume: champion pointer, reports,
#                      and the SQLite prediction log unless REFIT_PREDICTION_LOG_URL
#                      names a PostgreSQL (which replicas sharing the volume need)
# These are the paths an earlier image used with BENTOML_HOME=/data/bentoml, so an
# existing volume keeps its versions and its champion.
FROM nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    BENTOML_HOME=/home/refit/bentoml \
    REFIT_MODEL_STORE=/data/bentoml/models \
    REFIT_STATE_DIR=/data/bentoml/refit \
    BENTOML_DO_NOT_TRACK=true \
    TOKENIZERS_PARALLELISM=false \
    REFIT_HOST=0.0.0.0

RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && python3 -m venv /opt/venv

WORKDIR /app

# Dependencies first, from pyproject.toml alone, so that a source change does not
# reinstall torch.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY core ./core
COPY datagen ./datagen
COPY training ./training
COPY monitoring ./monitoring
COPY retraining ./retraining
COPY service ./service
COPY refit ./refit
RUN pip install --no-deps . \
    && useradd --create-home --uid 1000 refit \
    && mkdir -p /data /home/refit/bentoml && chown refit /data /home/refit/bentoml

USER refit
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s \
    CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/readyz')"
# Trains the default model into the /data volume on first start, then serves.
CMD ["refit", "serve", "--train-if-missing"]
