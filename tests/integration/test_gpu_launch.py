"""Issue 13 row 11: the 72B sbatch script asks for all of each node's memory and starts no driver step that would
share GPUs with the Ray head step (srun --overlap, which older Slurm lacks).

The script runs for real under stand-ins for Slurm's ``srun`` / ``scontrol`` and for the Python interpreter, which
record how they were called: no cluster, Ray or GPU is needed.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SBATCH = REPO / "examples" / "rise_grpo_72b.sbatch"


def _tool(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_sbatch_requests_all_node_memory():
    directives = [line.split()[1] for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH ")]
    assert "--mem=0" in directives


def test_sbatch_driver_runs_in_the_batch_script_not_in_an_overlapping_step(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    # srun: record the call; answer `hostname -I` with an address; Ray steps return at once.
    _tool(bin_dir / "srun", f'echo "srun $*" >> {log}\ncase "$*" in *"hostname -I"*) echo "10.1.2.3 fe80::1";; esac\n')
    _tool(bin_dir / "scontrol", 'printf "gpu-a\\ngpu-b\\n"\n')
    _tool(bin_dir / "sleep", "exit 0\n")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    # The interpreter: `-m verl_rise.recipes` prints a recipes dir; the GPU wait and main_ppo are recorded.
    _tool(tmp_path / "python", f'echo "python RAY_ADDRESS=$RAY_ADDRESS $*" >> {log}\n'
                               f'[[ "$*" == "-m verl_rise.recipes" ]] && echo {recipes}\nexit 0\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHON=str(tmp_path / "python"), SLURM_SUBMIT_DIR=str(REPO),
               SLURM_JOB_NODELIST="gpu-[a-b]", TRAIN_FILES="/t.parquet", VAL_FILES="/v.parquet", MODEL_PATH="/m",
               CKPT_DIR="/c")
    out = subprocess.run(["bash", str(SBATCH), "trainer.total_epochs=1"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    sruns = [c for c in calls if c.startswith("srun ")]
    assert not any("--overlap" in c for c in sruns), sruns
    assert not any(" train" in c for c in sruns), "the driver must not be an srun step"
    assert any("rise_grpo_72b_ray.sh head" in c for c in sruns) and any("worker 10.1.2.3:6379" in c for c in sruns)
    main_ppo = [c for c in calls if "verl.trainer.main_ppo" in c]
    assert len(main_ppo) == 1 and "RAY_ADDRESS=10.1.2.3:6379" in main_ppo[0]
    assert "trainer.nnodes=2" in main_ppo[0] and main_ppo[0].endswith("trainer.total_epochs=1")
