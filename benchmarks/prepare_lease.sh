#!/usr/bin/env bash
# Prepare what benchmarks/gpu_lease.sh needs on a device machine that has PyTorch but not this package's other
# dependencies and no data: pure-Python wheels in .whl/ (the build backend in .whl/build/) and the MNIST and
# Brodatz folders in .devdata/ (about 23 MB; both ignored through .git/info/exclude). Run in the repository root,
# with ../shared/data beside it (or DATA=folder). Then lease with carry [".whl", ".devdata"].
set -euo pipefail
DATA=${DATA:-../shared/data}
mkdir -p .git/info
for path in /.whl/ /.devdata/; do grep -qx "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude; done
mkdir -p .whl .devdata
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d .whl gymnasium==1.4.0 farama-notifications==0.0.6 mido==1.3.3
# the build backend (pyproject's build-system) that installs the checkout on the device, which has no index
python3 -m pip download -q --no-deps --only-binary=:all: -d .whl/build "setuptools>=77" wheel
cp -r "$DATA/mnist" .devdata/
mkdir -p .devdata/brodatz && cp -r "$DATA/brodatz/schlossvrl_300px" "$DATA/brodatz/SOURCE.md" .devdata/brodatz/
du -sh .whl .devdata
