"""TEMPORARY (delete when reward_fns.rise lands on main): a stand-in RISE reward with the brief's contract.

0.9 * exact-match accuracy of the last \\boxed{} + 0.1 * <think>..</think><answer>..</answer> format.
"""

import re


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", solution_str)
    pred = boxed[-1].strip() if boxed else ""
    acc = float(pred != "" and pred == str(ground_truth).strip())
    fmt = float(re.fullmatch(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", solution_str, re.S) is not None)
    return {"score": 0.9 * acc + 0.1 * fmt, "acc": acc, "format": fmt, "pred": pred, "reason": "tmp"}
