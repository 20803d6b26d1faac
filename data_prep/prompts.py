"""The Metis-RISE prompt contract: the released system prompt and image pixel range.

Source: the Metis-RISE model card / README "Usage Example" (github.com/MM-Thinking/Metis-RISE,
"Best practices to use the following system_prompt and pixel range by default"). The text is kept
verbatim, grammar included, because the released checkpoints were trained with it.
"""

METIS_RISE_SYSTEM_PROMPT = (
    "Solve the question. The user asks a question, and you solves it. You first thinks about the reasoning "
    "process in the mind and then provides the user with the answer. The answer is in latex format and wrapped "
    "in $...$. The final answer must be wrapped using the \\boxed{} command. The reasoning process and answer are "
    "enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> Since $1+1=2$, so "
    "the answer is $2$. </think><answer> The answer is $\\boxed{2}$ </answer>, which means assistant's output "
    "should start with <think> and end with </answer>."
)

#: Qwen2.5-VL patches are 14x14 pixels merged 2x2, so one visual token covers 28x28 pixels.
PIXELS_PER_VISUAL_TOKEN = 28 * 28
#: Smallest image area (pixels) the Metis-RISE processor is configured with: 128 visual tokens.
MIN_PIXELS = 128 * PIXELS_PER_VISUAL_TOKEN
#: Largest image area (pixels): 16384 visual tokens.
MAX_PIXELS = 16384 * PIXELS_PER_VISUAL_TOKEN
