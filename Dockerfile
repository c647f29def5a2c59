# syntax=docker/dockerfile:1
# One image for every nasfcn service: the Ray head and workers, the one-shot search, the
# leaderboard. CPU torch by default; for NVIDIA GPUs build with
#   docker compose build --build-arg TORCH_VARIANT=cu128
# (PyTorch's CUDA wheels bring their own CUDA runtime: the host needs only the NVIDIA
# driver and the NVIDIA Container Toolkit). BASE_IMAGE may name another Debian-based
# Python 3.10+ image, e.g. a CUDA base with Python installed.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment with torch first, then nasfcn ----------------------
FROM ${BASE_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/nasfcn && /opt/nasfcn/bin/pip install --upgrade pip
# torch is pinned and installed first, from PyTorch's index for the chosen variant, so
# that nasfcn's own range (torch>=2.4,<3) is already satisfied and pulls nothing more.
RUN /opt/nasfcn/bin/pip install "torch==${TORCH_VERSION}" \
        --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
        --extra-index-url https://pypi.org/simple
COPY pyproject.toml README.md /src/
COPY nasfcn /src/nasfcn
COPY leaderboard /src/leaderboard
RUN /opt/nasfcn/bin/pip install /src

# --- runtime: the environment, the shipped spaces, a non-root user --------------------
FROM ${BASE_IMAGE} AS runtime
RUN groupadd --gid 1000 nasfcn \
    && useradd --uid 1000 --gid nasfcn --create-home --shell /bin/bash nasfcn \
    && mkdir -p /work/runs \
    && chown -R nasfcn:nasfcn /work
COPY --from=build /opt/nasfcn /opt/nasfcn
COPY --chown=nasfcn:nasfcn search_spaces /work/search_spaces
COPY --chown=nasfcn:nasfcn examples /work/examples
COPY --chown=nasfcn:nasfcn docker/search.sh /work/docker/search.sh
ENV PATH=/opt/nasfcn/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0
USER nasfcn
WORKDIR /work
CMD ["nasfcn", "--help"]
