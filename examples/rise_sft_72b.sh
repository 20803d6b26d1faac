#!/usr/bin/env bash
# Metis-RISE stage 2 (SFT, recipe recipes/rise_sft_72b.yaml): the Qwen2.5-VL-72B RL model on NNODES nodes of
# GPUS_PER_NODE GPUs. Run this script on EVERY node (torchrun's static rendezvous at MASTER_ADDR:MASTER_PORT):
#
#   export TRAIN_FILES=... MODEL_PATH=... CKPT_DIR=... MASTER_ADDR=<node 0's address> NNODES=4
#   NODE_RANK=0 examples/rise_sft_72b.sh [HYDRA_OVERRIDE...]     # on node 0
#   NODE_RANK=1 examples/rise_sft_72b.sh [HYDRA_OVERRIDE...]     # on node 1, ...
#   (under Slurm: srun --nodes=4 --ntasks-per-node=1 bash -c 'NODE_RANK=$SLURM_NODEID examples/rise_sft_72b.sh')
#
# Every node needs the same environment (verl + verl-rise) and sees TRAIN_FILES, MODEL_PATH and CKPT_DIR at the same
# paths (each rank writes its own checkpoint shard). Environment: as rise_sft in rise_common.sh, plus NNODES
# (default 4), NODE_RANK, MASTER_ADDR (required), MASTER_PORT (default 29500), GPUS_PER_NODE (default 8).
set -euo pipefail

# shellcheck source=examples/rise_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/rise_common.sh"

NNODES="${NNODES:-4}" rise_sft rise_sft_72b "${GPUS_PER_NODE:-8}" "$@"
