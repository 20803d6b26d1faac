"""Input caps and default time limits shared by the reward functions.

Every cap exists so that work per call is bounded before any parser runs: the rewards run inside verl's
reward workers (Ray actors, thread pools), where one slow call stalls a whole training step.
"""

#: Responses longer than this (characters) score 0 with reason ``response_too_long``. 100k characters is
#: about 25k tokens, beyond any max_response_length used for GRPO on 7B/72B VLMs.
MAX_RESPONSE_CHARS = 100_000

#: A final answer (the content of the last ``\boxed{}``) longer than this scores 0 (``answer_too_long``).
MAX_ANSWER_CHARS = 1_000

#: Ground truths longer than this are rejected as invalid input.
MAX_GROUND_TRUTH_CHARS = 1_000

#: Default hard wall-clock limit (seconds) for one symbolic verification in the verifier subprocess.
DEFAULT_TIMEOUT_S = 5.0

#: Longest wait (seconds) for a verifier subprocess to start (it imports sympy and math-verify once). Not
#: charged to a call's ``timeout_s``: on a loaded machine a start-up can take longer than a comparison may.
STARTUP_TIMEOUT_S = 60.0

#: Longest wait (seconds) of a call for a free verifier subprocess (queued behind other calls, or behind a
#: starting worker). Not charged to ``timeout_s`` either: every request ahead in the queue is itself bounded
#: by its own limit, so the wait is finite; this cap only guards against a pool that stops making progress.
QUEUE_TIMEOUT_S = 300.0

#: Verifier subprocesses per process when ``REWARD_FNS_VERIFIER_WORKERS`` is unset or invalid, and the most
#: it may ask for (each holds ~100 MB once sympy is loaded).
DEFAULT_VERIFIER_WORKERS = 2
MAX_VERIFIER_WORKERS = 64

#: Address-space limit (MiB) of each verifier subprocess, so a sympy blow-up cannot take the host down.
VERIFIER_MEMORY_LIMIT_MB = 2048

#: Most acceptable answers in one ground-truth list; longer lists are rejected (``invalid_input``).
MAX_GROUND_TRUTHS = 64

#: Most options of a multiple-choice prompt (one per letter A-Z); more score 0 (``too_many_options``).
MAX_OPTIONS = 26

#: Longest option text (characters); a longer one scores 0 (``option_too_long``). Real option texts are
#: a few words or a formula; a megabyte option would cost seconds of normalisation outside any time limit.
MAX_OPTION_CHARS = 2_000
