"""The configuration saved as ``config.json`` in every S2D-Align checkpoint.

One config names a whole model (vision encoder architecture, projector, memory adapter, LLM
reference, LoRA) *and* the curriculum stage it was trained at, with that stage's prompt, reference
and key-phrase settings, so generation rebuilds exactly the inputs the model was trained on.
Every field marked "switch" is our choice: the paper's body was not available (reference/models.md
§3), see CARD.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.baselines.common.vision import ImageConfig

IMAGE_PLACEHOLDER = "<ImageHere>"
#: LLaVA/MiniGPT-4-style chat wrapper around the visual tokens (same wrapper as am_mrg's prompt)
PROMPT_HEAD = "Human: <Img>"
PROMPT_IMAGE_END = "</Img> "
INSTRUCTION = "Generate a comprehensive and detailed diagnosis report for this chest xray image."
INSTRUCTION_WITH_PHRASES = "List the key phrases of the findings, then generate the report for this chest xray image."
REFERENCES_INTRO = "Reference reports of similar cases:"
ASSISTANT = "\nAssistant:"
KEY_PHRASES_MARKER = "Key phrases:"
REPORT_MARKER = "Report:"
NO_PHRASES = "none"


class MemoryConfig(BaseModel):
    """The memory adapter (SMA in summaries): a learnable bank read by cross-attention from the
    projected visual tokens. Shape and read-out are switches (not verified against the paper)."""

    model_config = ConfigDict(extra="forbid")

    slots: int = Field(default=64, ge=1)
    heads: int = Field(default=8, ge=1)
    #: "residual": tokens + tanh(gate)·read (prefix length T); "append": [tokens ; tanh(gate)·reads] (2T)
    output: Literal["residual", "append"] = "residual"
    #: train the bank in every stage (False: it keeps its stage-1 values; still carried, never re-drawn)
    trainable: bool = True


class S2DAlignConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_type: Literal["s2d_align"] = "s2d_align"
    #: curriculum stage this checkpoint finished: 1 pairing, 2 + references, 3 + key phrases
    stage: Literal[1, 2, 3] = 1
    vision_config: dict[str, Any]
    image: ImageConfig = ImageConfig()
    #: switch: LLaVA-1.5's "mlp2x_gelu" or LLaVA-1's "linear"
    projector: Literal["mlp2x_gelu", "linear"] = "mlp2x_gelu"
    memory: MemoryConfig = MemoryConfig()
    #: LLM directory or hub id; relative paths are inside the checkpoint ("llm" when bundled)
    llm: str = "llm"
    llm_revision: str | None = None
    llm_sha256: str = ""
    llm_dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    lora: bool = False
    images: Literal["all", "frontal"] = "frontal"
    # -- stage 2: retrieved reference reports (switches) --
    #: references in the prompt (0 = none: stage-1 prompt)
    references_k: int = Field(0, ge=0)
    max_reference_tokens: int = Field(60, ge=1)
    #: knn_image encoder ("pixel", an HF dir/id) and which image it compares
    retrieval_encoder: str = "pixel"
    retrieval_revision: str | None = None
    retrieval_image: Literal["frontal", "first"] = "frontal"
    # -- stage 3: key phrases (switches) --
    #: "none" (stages 1-2), "prefix": target = key phrases then report; "head": multi-label phrase head
    keyphrase_target: Literal["none", "prefix", "head"] = "none"
    #: what was actually used to extract them (radgraph / chexpert_rules), for provenance
    keyphrase_source: str = ""
    keyphrase_polarity: Literal["all", "present"] = "all"
    #: phrase vocabulary of the "head" target (from train reports only)
    phrase_vocab: list[str] = Field(default_factory=list)
    keyphrase_weight: float = 1.0
    max_report_tokens: int = 100
    #: the *report's* new-token budget (the dataset's, set at stage 1)
    min_new_tokens: int = 80
    max_new_tokens: int = 120
    #: stage 3 "prefix": tokens its train targets hold beyond their report (phrase list, markers), as
    #: (fewest, most); generation adds them to the report's budget, else the phrases eat into it
    keyphrase_new_tokens: tuple[int, int] = (0, 0)
    trained_on: dict[str, Any] = Field(default_factory=dict)

    def save(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "config.json").write_text(json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True))

    @classmethod
    def load(cls, directory: Path) -> S2DAlignConfig:
        return cls.model_validate_json((Path(directory) / "config.json").read_text())

    @property
    def phrases_in_target(self) -> bool:
        return self.keyphrase_target == "prefix"

    def new_tokens(self) -> dict[str, int]:
        """The whole output's default budget: the report's, plus a prefix model's phrase list on top,
        so a target of phrases and a full-length report is never cut."""
        fewest, most = self.keyphrase_new_tokens if self.phrases_in_target else (0, 0)
        return {"min_new_tokens": self.min_new_tokens + fewest, "max_new_tokens": self.max_new_tokens + most}


def instruction_text(config: S2DAlignConfig, references: list[str]) -> str:
    """The text after the visual tokens: optional numbered references, the instruction, 'Assistant:'."""
    parts = []
    if config.references_k and references:
        parts.append(REFERENCES_INTRO + " " + " ".join(f"[{i + 1}] {r}" for i, r in enumerate(references)))
    parts.append(INSTRUCTION_WITH_PHRASES if config.phrases_in_target else INSTRUCTION)
    return PROMPT_IMAGE_END + " ".join(parts) + ASSISTANT


def target_text(config: S2DAlignConfig, report: str, phrases: list[str]) -> str:
    """What the LLM is trained to write: the report, or (prefix) key phrases first, then the report."""
    if not config.phrases_in_target:
        return report
    listed = "; ".join(phrases) if phrases else NO_PHRASES
    return f"{KEY_PHRASES_MARKER} {listed}. {REPORT_MARKER} {report}"


def report_from_output(config: S2DAlignConfig, text: str) -> str:
    """The report part of a generated text (prefix mode writes phrases first)."""
    if config.phrases_in_target and REPORT_MARKER in text:
        return text.split(REPORT_MARKER, 1)[1].strip()
    return text.strip()
