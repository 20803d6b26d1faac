#!/usr/bin/env bash
# Compose and import-check the recipes and verl-rise's verl extensions under the transformers release that
# verl[vllm] pins for GPU installs (5.9.0; the main test venv runs a newer 5.10.x), without any CUDA wheel.
#
#   bash .ci/check_pinned_stack.sh            # prints the elapsed seconds of each phase and in all
#
# A second venv WITHOUT --system-site-packages, so nothing leaks in from the main one. torch comes from the CPU
# wheel already on this machine's disk (TORCH_CPU_WHEEL; pip must never download another torch); no torchvision
# (PyPI's builds are CUDA builds that break beside a CPU torch). Then verl-rise itself with its own dependencies
# (verl 0.9.1 and its base deps) and transformers==$PINNED_TRANSFORMERS, and two checks:
#   1. import: `import verl` loads the verl-rise plugin with every registration step succeeding, and every module
#      that touches verl internals imports;
#   2. compose: tests/integration/test_recipes_compose.py (every recipe against verl's schema and verl's start-up validation) on
#      that stack, less the tests that need the Qwen2.5-VL processor's torchvision part (see below).
# Measured on the 2-core development machine under load from other jobs: venv 1635 s (pip, mostly downloads),
# imports 81 s, compose 374 s; 35.5 min in all.
# Environment: PINNED_VENV (default /tmp/verl-rise-pinned-venv, rebuilt each time), TORCH_CPU_WHEEL, PYTHON_BIN
# (default python3.11), PINNED_TRANSFORMERS (default 5.9.0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PINNED_VENV:-/tmp/verl-rise-pinned-venv}"
TORCH_CPU_WHEEL="${TORCH_CPU_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
PINNED_TRANSFORMERS="${PINNED_TRANSFORMERS:-5.9.0}"

[[ -f "${TORCH_CPU_WHEEL}" ]] || { echo "error: TORCH_CPU_WHEEL=${TORCH_CPU_WHEEL} not found" >&2; exit 2; }
t0=$(date +%s)
phase() { echo "[pinned-stack] $1: $(( $(date +%s) - t0 )) s"; }

"${PYTHON_BIN}" -m venv --clear "${VENV}"
PY="${VENV}/bin/python"
"${PY}" -m pip install -q "${TORCH_CPU_WHEEL}"
# A constraints file pins torch to the wheel just installed, so no dependency can pull another build.
constraints="$(mktemp)"
trap 'rm -f "${constraints}"' EXIT
"${PY}" -c 'import torch; print(f"torch=={torch.__version__}")' > "${constraints}"
PIP_CONSTRAINT="${constraints}" "${PY}" -m pip install -q "${ROOT}[test]" "transformers==${PINNED_TRANSFORMERS}"
phase "venv"
"${PY}" -m pip list 2>/dev/null | grep -iE '^(torch|torchvision|transformers|verl|vllm|nvidia-.*) ' || true

# 1. Imports, from outside the checkout so that the installed package is what gets imported.
(cd / && "${PY}" - "${PINNED_TRANSFORMERS}" <<'PYEOF'
import importlib
import sys

import transformers

assert transformers.__version__ == sys.argv[1], transformers.__version__
import verl  # noqa: F401  (loads the verl-rise plugin through its entry point)
from verl_rise.verl_ext.registry import STATE

assert STATE.loaded and not STATE.errors, f"plugin registration steps failed: {STATE.errors}"
modules = ["verl_rise.verl_ext.vision_freeze", "verl_rise.verl_ext.sft_freeze", "verl_rise.verl_ext.cpu_backend", "verl_rise.verl_ext.cpu_platform",
           "verl_rise.verl_ext.hf_rollout.server", "verl_rise.verl_ext.passrate_hooks", "verl_rise.verl_ext.sft_dataset",
           "verl_rise.schedule.preflight", "verl_rise.validation_run", "reward_fns.rise"]
for name in modules:
    importlib.import_module(name)
print(f"imports ok: plugin steps {STATE.registered}; {len(modules)} modules; transformers {transformers.__version__}")
PYEOF
)
phase "imports"

# 2. Recipes composed and validated by verl on this stack. Left out: the tests that build verl's SFT dataset on a real
# image row. transformers 5.x's Qwen2.5-VL processor includes a video processor that needs torchvision, and no
# torchvision build that runs beside the CPU torch is on disk, so verl loads no processor there ("processor is needed
# to process image and video"); a GPU install has torchvision (vllm's pin), the main test venv runs these tests.
T=tests/integration/test_recipes_compose.py
(cd "${ROOT}" && "${PY}" -m pytest -q -p no:cacheprovider "${T}" \
    --deselect "${T}::test_sft_profile_passes_verl_startup_validation" \
    --deselect "${T}::test_sft_trains_only_on_the_assistant_turn" \
    --deselect "${T}::test_invalid_sft_value_fails_verl_validation[data.max_length=64-ValueError-is larger than]")
phase "compose (total)"
