"""Why an input row was rejected: one exception type carrying the field and a stable reason code.

Every converter turns bad input into :class:`RowRejected`; the writer (:mod:`data_prep.writer`) catches it and
writes one rejects-JSONL record naming the file, row, field and reason, so nothing is lost silently.
"""

from __future__ import annotations

# Reason codes written to the rejects file. Stable strings: tests, dashboards and users grep for them.
MISSING_IMAGE = "missing_image"  # the image file does not exist / no image value where one is required
UNREADABLE_IMAGE = "unreadable_image"  # permissions, not a regular file (directory, FIFO, device), bad base64
BAD_IMAGE_PATH = "bad_image_path"  # the path leads out of the dataset root (absolute, "..", a symlink out)
IMAGE_TOO_LARGE = "image_too_large"  # more encoded bytes than the converter's --max-image-bytes
CORRUPT_IMAGE = "corrupt_image"  # bytes that PIL cannot decode completely (truncated JPEG, not an image)
BAD_IMAGE_SHAPE = "bad_image_shape"  # decodes, but an aspect ratio the Qwen2.5-VL processor refuses (> 200:1)
PLACEHOLDER_MISMATCH = "placeholder_mismatch"  # number of <image> placeholders != number of images
EMPTY_QUESTION = "empty_question"
EMPTY_ANSWER = "empty_answer"
ANSWER_NOT_IN_OPTIONS = "answer_not_in_options"  # a choice row whose answer is not the letter of a given option
DUPLICATE_PROMPT = "duplicate_prompt"  # same prompt_id as an earlier row of this run
BAD_ROW = "bad_row"  # unparsable line, missing column, wrong type

REASONS = (
    MISSING_IMAGE,
    UNREADABLE_IMAGE,
    BAD_IMAGE_PATH,
    IMAGE_TOO_LARGE,
    CORRUPT_IMAGE,
    BAD_IMAGE_SHAPE,
    PLACEHOLDER_MISMATCH,
    EMPTY_QUESTION,
    EMPTY_ANSWER,
    ANSWER_NOT_IN_OPTIONS,
    DUPLICATE_PROMPT,
    BAD_ROW,
)


class RowRejected(Exception):
    """An input row that cannot become an output row.

    Args:
        field: the input field at fault (e.g. ``"image"``, ``"answer"``, ``"question"``).
        reason: one of :data:`REASONS`.
        detail: a human-readable explanation (the exception text, the offending value).
    """

    def __init__(self, field: str, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reject reason {reason!r}; expected one of {REASONS}")
        super().__init__(f"{field}: {reason}: {detail}" if detail else f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.detail = detail

    def __reduce__(self):
        # Crosses process boundaries (data_prep.image_pool); the default pickling would call __init__(message).
        return (RowRejected, (self.field, self.reason, self.detail))
