# Two images from one file: the scoring service (the default target, `api`) and the offline jobs (`jobs`:
# train, recalibrate, evaluate...), which is the service's image plus matplotlib for the reports' plots.
# Build with a local base image if public registries are unreachable:
#   docker build --build-arg BASE_IMAGE=<tag> -t vae-anomaly .
#   docker build --build-arg BASE_IMAGE=<tag> --target jobs -t vae-anomaly-jobs .
ARG BASE_IMAGE=python:3.11-slim

# ---- build stage: a virtualenv with the runtime dependencies, then the project itself ----
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from pyproject.toml and the pinned versions alone, so code changes do not
# reinstall TensorFlow.
COPY pyproject.toml constraints.txt README.md ./
# TensorFlow's C++ headers (for building custom ops) and libclang (its code generator) are not needed
# to run: dropping them takes ~350 MB off the image. Bytecode is compiled here (+90 MB), because
# compiling TensorFlow's modules at every start doubled the time to ready (8 s instead of 4 s).
RUN mkdir app training && touch app/__init__.py training/__init__.py \
    && pip install -c constraints.txt . \
    && pip uninstall --yes vae-anomaly libclang \
    && rm -rf app training /opt/venv/lib/python3.11/site-packages/tensorflow/include
COPY app app
COPY training training
# The service needs no installer at run time: drop pip and friends from the venv it ships in.
RUN pip install --no-deps . \
    && python -m pip uninstall --yes pip setuptools wheel

# ---- runtime stage: no compilers, no test tools, a non-root user; shared by both images ----
FROM ${BASE_IMAGE} AS runtime
RUN useradd --create-home --uid 10001 --user-group vae \
    && mkdir -p /srv/data && chown vae:vae /srv/data
COPY --from=build /opt/venv /opt/venv
# The default model, baked in; mount a volume on /srv/model_store to serve another store.
COPY --chown=vae:vae model_store /srv/model_store
WORKDIR /srv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VAE_MODEL_STORE=/srv/model_store \
    VAE_RESULTS_DB=/srv/data/results.db
USER 10001:10001

# ---- jobs: the runtime plus matplotlib (~70 MB, in a layer of its own), so that the reports the jobs write
# (each trained version's, evaluate's) have their plots. The service does not draw plots: its image has none.
FROM runtime AS jobs
USER 0
COPY constraints.txt /tmp/constraints.txt
# pip comes back for this one step only (ensurepip), and leaves with it: the layer holds matplotlib alone.
RUN python -m ensurepip --default-pip > /dev/null \
    && python -m pip install --no-cache-dir --disable-pip-version-check -c /tmp/constraints.txt matplotlib \
    && python -m pip uninstall --yes pip setuptools \
    && rm /tmp/constraints.txt
# Its font cache goes where any user can write it: evaluate runs as the host's user, whom the image does
# not know (no home), and matplotlib would otherwise warn at every run.
ENV MPLCONFIGDIR=/tmp/matplotlib
USER 10001:10001
ENTRYPOINT ["python", "-m", "training"]
CMD ["--help"]

# ---- api: the scoring service; the last stage, so a plain `docker build` makes it ----
FROM runtime AS api
ENV VAE_HOST=0.0.0.0 \
    VAE_PORT=8000 \
    VAE_WORKERS=1
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('VAE_PORT', '8000'), timeout=2)"]
# vae-serve runs uvicorn with host, port and workers from VAE_HOST, VAE_PORT, VAE_WORKERS.
CMD ["vae-serve"]
