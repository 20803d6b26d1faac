#!/usr/bin/env bash
# Metis-RISE stage 1 (GRPO, recipe recipes/rise_grpo_72b.yaml): Qwen2.5-VL-72B-Instruct on NNODES nodes of
# GPUS_PER_NODE GPUs through one Ray cluster (verl's multi-node mode: trainer.nnodes x trainer.n_gpus_per_node).
#
# Every node needs the same Python environment (verl, vLLM, verl-rise installed: Ray workers load the verl-rise
# plugin through its entry point) and must see MODEL_PATH, the parquet files and CKPT_DIR at the same paths
# (a shared filesystem: every rank writes its own checkpoint shard).
#
#   1. head node:        examples/rise_grpo_72b_ray.sh head                 [extra `ray start` args]
#   2. every other node: examples/rise_grpo_72b_ray.sh worker HEAD_IP:6379  [extra `ray start` args]
#   3. head node:        TRAIN_FILES=... VAL_FILES=... MODEL_PATH=... CKPT_DIR=... \
#                        examples/rise_grpo_72b_ray.sh train                [HYDRA_OVERRIDE...]
#   (stop with `ray stop` on every node afterwards)
#
# The profile runs 2 epochs (trainer.total_epochs; verl's own default is 30) with DAPO dynamic sampling on; pass
# e.g. trainer.total_epochs=3 or algorithm.filter_groups.enable=false to `train` to change either.
#
# `train` waits until the cluster shows NNODES x GPUS_PER_NODE GPUs (at most RAY_WAIT_S seconds), then runs
# verl's main_ppo on this node; main_ppo's ray.init() joins the running cluster through RAY_ADDRESS (default
# "auto": the cluster this node belongs to).
#
# Environment: NNODES (default 4), GPUS_PER_NODE (default 8), RAY_PORT (head, default 6379), RAY_WAIT_S
# (default 900), RAY_ADDRESS (train, default auto), RAY_AUTH_MODE / RAY_AUTH_TOKEN (see match_head_auth_mode),
# and for `train` those of rise_common.sh.
set -euo pipefail

# shellcheck source=examples/rise_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/rise_common.sh"

NNODES="${NNODES:-4}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"

usage() {
    # The header comment of this file, without its leading '# '.
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# wait_for_gpus WANT TIMEOUT_S: block until the Ray cluster offers WANT GPUs; fail after TIMEOUT_S seconds.
wait_for_gpus() {
    "${PYTHON}" - "$1" "$2" <<'EOF'
import os
import sys
import time

import ray

want, timeout = int(sys.argv[1]), float(sys.argv[2])
ray.init(address=os.environ.get("RAY_ADDRESS", "auto"), logging_level="ERROR")
deadline = time.monotonic() + timeout
while True:
    have = int(ray.cluster_resources().get("GPU", 0))
    nodes = sum(1 for node in ray.nodes() if node["Alive"])
    print(f"ray cluster: {nodes} node(s), {have}/{want} GPUs", flush=True)
    if have >= want:
        break
    if time.monotonic() > deadline:
        sys.exit(f"error: the Ray cluster still has {have} of the {want} GPUs needed after {timeout:.0f} s: "
                 "start the missing workers (`rise_grpo_72b_ray.sh worker HEAD_IP:PORT`) or lower NNODES")
    time.sleep(10)
ray.shutdown()
EOF
}

# Recent Ray (2.60 measured) turns token authentication on in `ray start --head` when RAY_AUTH_MODE is unset and
# a token exists (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), but `ray start --address` and
# ray.init(address=...) never do: apply the head's rule on every node and in the driver so that all sides agree.
# The token itself must be the same everywhere (a shared home directory, or RAY_AUTH_TOKEN exported on every node).
match_head_auth_mode() {
    if [[ -z "${RAY_AUTH_MODE:-}" ]] &&
        [[ -n "${RAY_AUTH_TOKEN:-}" || -s "${RAY_AUTH_TOKEN_PATH:-${HOME}/.ray/auth_token}" ]]; then
        export RAY_AUTH_MODE=token
    fi
}

mode="${1:-}"
[[ -n "${mode}" ]] || usage
shift
match_head_auth_mode

case "${mode}" in
head)
    set -x
    ray start --head --port="${RAY_PORT:-6379}" --num-gpus="${GPUS_PER_NODE}" "$@"
    ;;
worker)
    [[ $# -ge 1 ]] || rise_die "worker needs the head's address, e.g. 'worker 10.0.0.1:6379'"
    address="$1"
    shift
    set -x
    ray start --address="${address}" --num-gpus="${GPUS_PER_NODE}" "$@"
    ;;
train)
    export RAY_ADDRESS="${RAY_ADDRESS:-auto}"
    wait_for_gpus "$((NNODES * GPUS_PER_NODE))" "${RAY_WAIT_S:-900}"
    rise_main_ppo rise_grpo_72b "trainer.nnodes=${NNODES}" "trainer.n_gpus_per_node=${GPUS_PER_NODE}" "$@"
    ;;
*)
    usage
    ;;
esac
