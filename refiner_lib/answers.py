"""The short answer inside a generator's output: small instruction models often
wrap it in a sentence ("The answer is X."), add explanations after it, or end
it with a period, none of which EM can score."""
from __future__ import annotations

import re

# "the answer is X", "Answer: X", "final answer - X"
LEAD_IN = re.compile(r"^(?:.*?\b)?(?:final\s+)?answer\s*(?:is\s*:?|:|-|=)\s*", re.IGNORECASE | re.DOTALL)
QUOTES = "\"'`“”‘’"


def extract_answer(generation: str) -> str:
    """The first line, after any 'the answer is' lead-in, cut at the end of its
    first sentence, without wrapping quotes, markdown bold or a final period."""
    text = generation.strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    line = LEAD_IN.sub("", line, count=1) if LEAD_IN.match(line) else line
    line = first_sentence(line)
    return line.strip().strip("*").strip(QUOTES).rstrip(".!;:,").strip()


def first_sentence(text: str) -> str:
    """Up to the first sentence end: a period, '!' or '?' after a lower-case word
    and before a capital letter (decimal points, initials such as 'J. R.' and
    titles such as 'Dr.' stay)."""
    match = re.search(r"(?<=[a-z0-9]{2})[.!?](?=\s+[A-Z])", text)
    return text[: match.start()] if match else text
