#!/usr/bin/env bash
# Install openrlhf-mtgrpo with a CPU build of OpenRLHF 0.11.2 and the test tools.
# On a GPU cluster install OpenRLHF as usual (pip install openrlhf[vllm]) and then `pip install .`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# CPU build of torch (a bare 'torch' would pull several GB of CUDA packages)
$PY -m pip install -q "torch==2.13.0"
# flash-attn has no CPU wheel: build its pure-Python shell only
FLASH_ATTENTION_FORCE_BUILD=TRUE FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE \
  $PY -m pip install -q --no-build-isolation "flash-attn==2.8.3"
DS_BUILD_OPS=0 $PY -m pip install -q "openrlhf==0.11.2"
# the plugin itself (non-editable: the wheel carries the start-up hook file)
$PY -m pip install -q . pytest
$PY -m openrlhf_mtgrpo.cli doctor || true
