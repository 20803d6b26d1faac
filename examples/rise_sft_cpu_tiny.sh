#!/usr/bin/env bash
# Metis-RISE stage 2 (SFT, recipe recipes/rise_sft_cpu_tiny.yaml) on a CPU: CI and development (docs/sft.md).
#
#   export TRAIN_FILES=/tmp/sft/sft.parquet MODEL_PATH=/tmp/rl_hf CKPT_DIR=/tmp/sft_ckpt
#   examples/rise_sft_cpu_tiny.sh [HYDRA_OVERRIDE...]      e.g. trainer.total_training_steps=5
#
# What a Hydra profile cannot set, and so this script does: VERL_PLATFORM=cpu in the environment of the torchrun
# rank (verl chooses its device platform on `import verl`, before it reads any config; verl-rise's CPU platform
# then makes verl's torchrun process group gloo), one process on this machine, and OMP_NUM_THREADS (default 2).
# Environment: TRAIN_FILES, MODEL_PATH, CKPT_DIR (required), VAL_FILES, PYTHON (optional); see rise_common.sh.
set -euo pipefail

# shellcheck source=examples/rise_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/rise_common.sh"

export VERL_PLATFORM=cpu
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
NNODES=1 rise_sft rise_sft_cpu_tiny 1 "$@"
