"""Verifier subprocess: runs math-verify on requests read from stdin, one JSON object per line.

Started by :class:`reward_fns.verifier.VerifierPool`; not meant to be run by hand. It is a separate
process so that the parent can kill it when a comparison runs past its time limit: math-verify's own
timeouts use SIGALRM, which only works in a main thread, and verl calls reward functions from worker
threads inside Ray actors (math-verify raises or disables its timeout there).

Protocol (newline-delimited JSON on stdin/stdout):
    -> {"op": "equiv", "gold": str, "pred": str}      <- {"equal": bool} | {"error": str}
    -> {"op": "options", "pred": str, "options": [str]} <- {"matches": [bool, ...]} | {"error": str}
    -> {"op": "ping"}                                 <- {"pong": true}
The first line written is {"ready": true}, once math-verify is imported.
"""

from __future__ import annotations

import json
import os
import sys


def _die_with_parent() -> None:
    # A worker stuck inside sympy never reads stdin, so EOF alone would not end it if the parent dies.
    # PR_SET_PDEATHSIG fires when the parent *thread* that forked us exits: the pool forks only from one
    # long-lived thread (reward_fns.verifier._Spawner) so that this means "the parent process is gone".
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except Exception:  # noqa: BLE001 - not Linux: rely on EOF and the parent's kill
        pass
    # The parent may have died before prctl took effect: then we were already re-parented.
    parent = os.environ.get("REWARD_FNS_VERIFIER_PARENT_PID", "")
    if parent.isdigit() and os.getppid() != int(parent):
        os._exit(0)


def _limit_memory() -> None:
    limit_mb = int(os.environ.get("REWARD_FNS_VERIFIER_MEMORY_MB", "0") or 0)
    if limit_mb <= 0:
        return
    try:
        import resource

        limit = limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def main() -> None:
    _die_with_parent()
    _limit_memory()
    out = sys.stdout
    # Library chatter must not corrupt the protocol stream.
    sys.stdout = sys.stderr

    import logging

    logging.disable(logging.WARNING)
    from latex2sympy2_extended.math_normalization import NormalizationConfig
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # math-verify's defaults, except unit stripping: its unit list removes letters that are variables
    # ("3ab" parses as 3, "ab" being a unit there). reward_fns.normalize strips units after numbers first.
    latex = LatexExtractionConfig(
        normalization_config=NormalizationConfig(
            basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
        )
    )
    configs = [latex, ExprExtractionConfig()]

    def parse_gold(s: str):
        return parse(f"${s}$", extraction_config=configs, parsing_timeout=None)

    def parse_pred(s: str):
        return parse(f"\\boxed{{{s}}}", extraction_config=configs, parsing_timeout=None)

    def equal(gold: str, pred: str) -> bool:
        g, p = parse_gold(gold), parse_pred(pred)
        return bool(g and p and verify(g, p, timeout_seconds=None))

    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "equiv":
                resp = {"equal": equal(req["gold"], req["pred"])}
            elif op == "options":
                resp = {"matches": [equal(opt, req["pred"]) for opt in req["options"]]}
            elif op == "ping":
                resp = {"pong": True}
            else:
                resp = {"error": f"unknown op {op!r}"}
        except MemoryError:
            resp = {"error": "MemoryError"}
        except Exception as exc:  # noqa: BLE001 - any parser failure is an answer, not a crash
            resp = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
