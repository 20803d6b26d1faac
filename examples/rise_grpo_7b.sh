#!/usr/bin/env bash
# Metis-RISE stage 1 (GRPO, recipe recipes/rise_grpo_7b.yaml): Qwen2.5-VL-7B-Instruct on one node of 8 GPUs.
#
#   export TRAIN_FILES=data/rl/train.parquet VAL_FILES=data/rl/testmini.parquet \
#          MODEL_PATH=/models/Qwen2.5-VL-7B-Instruct CKPT_DIR=/ckpt/rise_grpo_7b
#   examples/rise_grpo_7b.sh [HYDRA_OVERRIDE...]      e.g. trainer.total_epochs=3 algorithm.filter_groups.enable=false
#
# The profile runs 2 epochs (trainer.total_epochs; verl's own default is 30) with DAPO dynamic sampling on.
#
# Environment: TRAIN_FILES, VAL_FILES, MODEL_PATH, CKPT_DIR (required), PYTHON (optional); see rise_common.sh.
# main_ppo starts a local Ray instance on this node itself.
set -euo pipefail

# shellcheck source=examples/rise_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/rise_common.sh"

rise_main_ppo rise_grpo_7b "$@"
