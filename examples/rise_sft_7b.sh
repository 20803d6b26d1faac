#!/usr/bin/env bash
# Metis-RISE stage 2 (SFT, recipe recipes/rise_sft_7b.yaml): the Qwen2.5-VL-7B RL model on one node of 8 GPUs.
#
#   export TRAIN_FILES=runs/sft/sft.parquet MODEL_PATH=runs/rl_hf CKPT_DIR=/ckpt/rise_sft_7b
#   examples/rise_sft_7b.sh [HYDRA_OVERRIDE...]      e.g. trainer.total_epochs=2 optim.lr=5e-6
#
# Environment: TRAIN_FILES, MODEL_PATH, CKPT_DIR (required), VAL_FILES, GPUS_PER_NODE (default 8), PYTHON
# (optional); see rise_sft in rise_common.sh. Afterwards merge the checkpoint to HF format (docs/sft.md).
set -euo pipefail

# shellcheck source=examples/rise_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/rise_common.sh"

NNODES=1 rise_sft rise_sft_7b "${GPUS_PER_NODE:-8}" "$@"
