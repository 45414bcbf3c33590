"""GREEN's text side: the prompt, the chat framing, cleaning the decoded output, reading the
counts back and the score. Written from RadEval's ``green_score`` (which follows the authors'
Stanford-AIMI/GREEN code) and tested against outputs recorded from it; no torch here.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

PROMPT_FILE = Path(__file__).with_name("prompt.json")
#: RadEval's ``make_prompt(max_len=300)``: each report cut to its first 300 whitespace words
MAX_WORDS = 300
SIGNIFICANT = "Clinically Significant Errors"
INSIGNIFICANT = "Clinically Insignificant Errors"
MATCHED = "Matched Findings"
ERROR_KINDS = (
    "(a) False report of a finding in the candidate",
    "(b) Missing a finding present in the reference",
    "(c) Misidentification of a finding's anatomic location/position",
    "(d) Misassessment of the severity of a finding",
    "(e) Mentioning a comparison that isn't in the reference",
    "(f) Omitting a comparison detailing a change from a prior study",
)


@lru_cache(maxsize=1)
def _template() -> str:
    return str(json.loads(PROMPT_FILE.read_text())["template"])


def make_prompt(reference: str, candidate: str, max_words: int = MAX_WORDS) -> str:
    """The authors' instruction with both reports (whitespace collapsed, first ``max_words`` words)."""
    ref = " ".join(reference.split()[:max_words])
    cand = " ".join(candidate.split()[:max_words])
    return _template().replace("{reference}", ref, 1).replace("{candidate}", cand, 1)


def chat_text(prompt: str, eos: str) -> str:
    """RadEval's chat framing, as its Jinja template renders a human turn, an empty gpt turn and
    the generation prompt (trim_blocks/lstrip_blocks, as transformers compiles templates)."""
    return f"<|user|>\n{prompt}{eos}\n<|assistant|>\n{eos}\n<|assistant|>\n"


def clean_response(text: str) -> str:
    """RadEval's ``clean_responses``. Its second test is ``("..." or "...") in text``, i.e. only
    the first literal is looked for; that is reproduced, not fixed."""
    if "[Explanation]:" in text:
        if "<|assistant|>" in text:
            text = text.split("<|assistant|>")[-1]
        parts = text.split("[Explanation]:")
        text = parts[1] if "[Explanation]:\n    <Explanation>\n" in text else parts[-1]
    if "<|assistant|>" in text:
        text = text.split("<|assistant|>")[-1]
    return text.replace("</s>", "").replace("<unk>", "")


def _section(text: str, category: str) -> str | None:
    found = re.search(rf"\[{category}\]:\s*(.*?)(?:\n\s*\n|\Z)", text, re.DOTALL)
    return None if found is None else found.group(1)


def matched_findings(text: str) -> int:
    """The leading number of the first ``N.`` line of [Matched Findings] (RadEval reads any line,
    ``re.MULTILINE``); 0 when the section is missing or starts with "No"."""
    body = _section(text, MATCHED)
    if body is None or body.startswith("No"):
        return 0
    counts = re.findall(r"^\b\d+\b(?=\.)", body, re.MULTILINE)
    return int(counts[0]) if counts else 0


def error_counts(text: str, category: str = SIGNIFICANT) -> list[int]:
    """Counts (a)..(f) of an error section (or its (1)..(6) form); the last line of a kind wins."""
    counts = [0] * len(ERROR_KINDS)
    body = _section(text, category)
    if body is None or body.startswith("No"):
        return counts
    lines = sorted(re.findall(r"\([a-f]\) .*", body))
    prefixes = [k.split(" ", 1)[0] + " " for k in ERROR_KINDS]
    if not lines:
        lines = sorted(re.findall(r"\([1-6]\) .*", body))
        prefixes = [f"({i}) " for i in range(1, len(ERROR_KINDS) + 1)]
    for i, prefix in enumerate(prefixes):
        for line in lines:
            if line.startswith(prefix):
                number = re.search(r"(?<=: )\b\d+\b(?=\.)", line)
                if number:
                    counts[i] = int(number.group(0))
    return counts


def green_score(matched: int, significant: list[int]) -> float:
    """matched / (matched + significant errors), 0 when nothing matched."""
    if matched == 0:
        return 0.0
    return matched / (matched + sum(significant))
