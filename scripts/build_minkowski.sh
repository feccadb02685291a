#!/usr/bin/env bash
# Build MinkowskiEngine 0.5.4 from the PyPI sdist and install it into a venv (CPU-only here).
#
# Usage: bash scripts/build_minkowski.sh /abs/path/to/venv
#
# Why a script and not a pip extra (../shared/STACK.md, "MinkowskiEngine 0.5.4"):
# - its setup.py imports torch, so torch must already be installed and the build must use
#   --no-build-isolation;
# - its BLAS probe uses numpy.distutils, which crashes with current setuptools unless
#   SETUPTOOLS_USE_DISTUTILS=stdlib;
# - setup.py runs `rm -rf build` in the current directory and `pip uninstall MinkowskiEngine -y`
#   on every build or metadata step (pip download included), so everything happens in a
#   scratch directory;
# - it needs a C++ toolchain and a BLAS (Debian: build-essential, libopenblas-dev).
# On a CUDA machine the same script builds the CUDA extension when nvcc and a CUDA torch are
# present (see docs/model.md).
set -euo pipefail

VENV="${1:?usage: build_minkowski.sh /abs/path/to/venv}"
PY="$VENV/bin/python"
VERSION="0.5.4"
[ -x "$PY" ] || { echo "no python at $PY" >&2; exit 2; }

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "torch must be installed in $VENV before MinkowskiEngine (its setup.py imports torch)" >&2
    exit 2
fi

# System toolchain and BLAS. apt-get needs root; elsewhere use sudo when present.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! dpkg -s build-essential libopenblas-dev >/dev/null 2>&1; then
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends build-essential libopenblas-dev
fi

SCRATCH="$(mktemp -d -t minkowski-build.XXXXXX)"
trap 'rm -rf "$SCRATCH"' EXIT
cd "$SCRATCH"

export SETUPTOOLS_USE_DISTUTILS=stdlib
export MAX_JOBS="${MAX_JOBS:-2}"

# The sdist only (setup.py runs during pip download's metadata step, hence the scratch dir).
"$PY" -m pip download --no-deps --no-binary :all: --no-build-isolation \
    "MinkowskiEngine==$VERSION" -d "$SCRATCH/dist"
# CPU_ONLY is chosen by setup.py itself when torch has no CUDA, and the BLAS probe finds
# OpenBLAS once libopenblas-dev is installed. On a CUDA machine with nvcc, setup.py builds the
# CUDA extension; pass MINKOWSKI_BUILD_OPTIONS="--force_cuda --blas=openblas" to insist.
BUILD_OPTS=()
for opt in ${MINKOWSKI_BUILD_OPTIONS:-}; do BUILD_OPTS+=("--config-settings=--build-option=$opt"); done
"$PY" -m pip install -v --no-deps --no-build-isolation "${BUILD_OPTS[@]}" \
    "$SCRATCH/dist/MinkowskiEngine-$VERSION.tar.gz"

# MinkowskiEngine 0.5.4 does `from collections import Sequence` (removed in Python 3.10);
# vmac_core patches collections before importing it, and so does this smoke test.
cd /
"$PY" - <<'PY'
import collections, collections.abc
collections.Sequence = collections.abc.Sequence
import MinkowskiEngine as ME
print("MinkowskiEngine", ME.__version__, "imported from", ME.__file__)
PY
