# shellcheck shell=bash
# Helpers shared by the verl-rise launch scripts (sourced, not run). Bash 4+.
#
# Environment read here:
#   PYTHON        interpreter of the environment where verl and verl-rise are installed (default: python3)
#   TRAIN_FILES   RL training parquet(s) written by data_prep: one path, or a Hydra list "['a.parquet','b.parquet']"
#   VAL_FILES     validation parquet(s), same forms
#   MODEL_PATH    the Qwen2.5-VL checkpoint (HF format dir; multi-node: on a filesystem every node can read)
#   CKPT_DIR      checkpoint dir (trainer.default_local_dir); rerunning with the same dir resumes from the last
#                 checkpoint (trainer.resume_mode=auto). Multi-node: a filesystem every node can write.
#   RISE_RECIPES_DIR  optional: take the recipes from this dir instead of the installed ones (`python -m
#                 verl_rise.recipes`), e.g. a checkout's recipes/ or your own profiles beside a copy of rise_grpo.yaml

PYTHON="${PYTHON:-python3}"

rise_die() {
    echo "error: $*" >&2
    exit 2
}

# rise_require_env NAME DESCRIPTION: stop with a message naming NAME when it is unset or empty.
rise_require_env() {
    local name="$1" description="$2"
    if [[ -z "${!name:-}" ]]; then
        rise_die "${name} is not set: export ${name}=<${description}> and rerun"
    fi
}

# rise_recipes_dir: print the recipes directory (the --config-path for main_ppo): RISE_RECIPES_DIR or the
# installed one.
# Run from / so that a verl_rise/ source dir in the current directory (a checkout's root) cannot shadow the
# installed package, whose verl_rise.recipes is mapped from the checkout's recipes/ by pyproject.
rise_recipes_dir() {
    if [[ -n "${RISE_RECIPES_DIR:-}" ]]; then
        # Absolute, since Hydra resolves a relative --config-path against verl's main_ppo module, not the cwd.
        (cd "${RISE_RECIPES_DIR}" 2>/dev/null && pwd) ||
            rise_die "RISE_RECIPES_DIR=${RISE_RECIPES_DIR} is not a directory"
        return
    fi
    (cd / && "${PYTHON}" -m verl_rise.recipes) ||
        rise_die "'${PYTHON} -m verl_rise.recipes' failed: install verl-rise in that environment or set PYTHON"
}

# rise_main_ppo PROFILE [HYDRA_OVERRIDE...]: run verl's main_ppo on a recipe profile with the paths from the
# environment; overrides given here come last, so they win.
rise_main_ppo() {
    local profile="$1"
    shift
    rise_require_env TRAIN_FILES "RL training parquet written by data_prep"
    rise_require_env VAL_FILES "validation parquet written by data_prep"
    rise_require_env MODEL_PATH "Qwen2.5-VL model dir or hub id"
    rise_require_env CKPT_DIR "checkpoint directory"
    local recipes
    recipes="$(rise_recipes_dir)"
    set -x
    "${PYTHON}" -m verl.trainer.main_ppo \
        --config-path "${recipes}" \
        --config-name "${profile}" \
        "data.train_files=${TRAIN_FILES}" \
        "data.val_files=${VAL_FILES}" \
        "actor_rollout_ref.model.path=${MODEL_PATH}" \
        "trainer.default_local_dir=${CKPT_DIR}" \
        "$@"
}

# rise_sft PROFILE NPROC_PER_NODE [HYDRA_OVERRIDE...]: run verl's SFT trainer (torchrun -m verl.trainer.sft_trainer)
# on an SFT recipe profile, with the paths from the environment; overrides given here come last, so they win.
#   TRAIN_FILES  the SFT parquet written by `python -m verl_rise.sft_data build` (sft.parquet)
#   MODEL_PATH   the RL stage's checkpoint merged to HF format (python -m verl.model_merger merge ...)
#   CKPT_DIR     SFT checkpoint dir (trainer.default_local_dir); rerunning with the same dir resumes
#   VAL_FILES    optional validation parquet (same layout); also set trainer.test_freq to validate
#   NNODES       nodes (default 1: torchrun --standalone); above 1 also NODE_RANK, MASTER_ADDR, MASTER_PORT
rise_sft() {
    local profile="$1" nproc="$2"
    shift 2
    rise_require_env TRAIN_FILES "SFT parquet written by python -m verl_rise.sft_data build"
    rise_require_env MODEL_PATH "the RL checkpoint merged to HF format"
    rise_require_env CKPT_DIR "checkpoint directory"
    local nnodes="${NNODES:-1}"
    local launch=(--standalone --nnodes=1)
    if [[ "${nnodes}" != "1" ]]; then
        rise_require_env NODE_RANK "this node's rank, 0..NNODES-1"
        rise_require_env MASTER_ADDR "address of the node with NODE_RANK=0"
        launch=(--nnodes="${nnodes}" --node_rank="${NODE_RANK}" --master_addr="${MASTER_ADDR}"
            --master_port="${MASTER_PORT:-29500}")
    fi
    local val=()
    if [[ -n "${VAL_FILES:-}" ]]; then
        val=("data.val_files=${VAL_FILES}")
    fi
    local recipes
    recipes="$(rise_recipes_dir)"
    set -x
    "${PYTHON}" -m torch.distributed.run "${launch[@]}" --nproc_per_node="${nproc}" \
        -m verl.trainer.sft_trainer \
        --config-path "${recipes}" \
        --config-name "${profile}" \
        "data.train_files=${TRAIN_FILES}" \
        "model.path=${MODEL_PATH}" \
        "trainer.default_local_dir=${CKPT_DIR}" \
        "trainer.nnodes=${nnodes}" \
        "trainer.n_gpus_per_node=${nproc}" \
        "${val[@]}" \
        "$@"
}
