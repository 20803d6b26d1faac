"""``python -m verl_rise.doctor``: check that verl-rise is installed and active in this environment.

verl swallows plugin load errors (verl/__init__.py logs them at DEBUG level), so a broken install looks
like a working one until a run fails. The doctor imports verl the way a trainer does and reports:
verl's version and whether it is in the supported range, whether verl loaded the verl-rise plugin through
the ``verl.plugins`` entry point and which registration steps failed, whether the reward functions import
and score (including one symbolic check in the verifier subprocess), and whether torch sees a GPU.

Exit status: 0 when every required check passes, 1 otherwise.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from dataclasses import dataclass



@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def check_verl() -> Check:
    from verl_rise.verl_ext.compat import SUPPORTED_VERL, installed_verl_version, version_supported

    try:
        version = installed_verl_version()
    except Exception as exc:  # noqa: BLE001 - report, don't crash
        return Check("verl", False, f"import failed: {type(exc).__name__}: {exc}")
    lo, hi = SUPPORTED_VERL
    return Check("verl", version_supported(version), f"{version} (supported: >={lo},<{hi})")


def check_plugin() -> Check:
    eps = [ep for ep in md.entry_points(group="verl.plugins") if ep.value.startswith("verl_rise")]
    if not eps:
        return Check("plugin", False, "no verl.plugins entry point for verl_rise: reinstall verl-rise")
    if "verl_rise.verl_ext.plugin" not in sys.modules:
        return Check("plugin", False, "entry point exists but `import verl` did not load it "
                     "(is VERL_USE_EXTERNAL_PLUGINS set to 'none' or to a list without verl_rise?)")
    from verl_rise.verl_ext.registry import STATE as state
    if state.errors:
        failed = "; ".join(f"{k}: {v}" for k, v in state.errors.items())
        return Check("plugin", False, f"loaded, but steps failed: {failed}")
    return Check("plugin", True, f"loaded by `import verl`; steps: {', '.join(state.registered) or 'none'}")


def check_rewards() -> Check:
    try:
        from reward_fns import compute_score
    except Exception as exc:  # noqa: BLE001
        return Check("reward_fns", False, f"import failed: {type(exc).__name__}: {exc}")
    response = "<think>4 = sqrt(16)</think><answer>$\\boxed{\\sqrt{16}}$</answer>"
    result = compute_score("doctor", response, "4", timeout_s=30)
    ok = result["score"] == 1.0
    return Check("reward_fns", ok, f"compute_score on a symbolic answer -> {result}")


def check_torch() -> Check:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return Check("torch", False, f"import failed: {type(exc).__name__}: {exc}")
    gpu = torch.cuda.is_available()
    where = f"GPU: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}" if gpu else "no GPU visible (CPU only)"
    return Check("torch", True, f"{torch.__version__}; {where}", required=False)


def run_checks() -> list[Check]:
    """Run every check; verl first, because importing it is what loads the plugin."""
    return [check_verl(), check_plugin(), check_rewards(), check_torch()]


def main() -> int:
    checks = run_checks()
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark}] {c.name:<{width}}  {c.detail}")
    failed = [c.name for c in checks if c.required and not c.ok]
    print("verl-rise is active." if not failed else f"verl-rise is NOT ready: {', '.join(failed)} failed.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
