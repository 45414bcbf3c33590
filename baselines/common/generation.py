"""What the checkpoint-based generators (anat_attn, am_mrg, s2d_align) share: a checkpoint resolved
and content-hashed once (so the fingerprint is the same before and after ``setup``), the LLM
decoding params with the checkpoint's dataset defaults (and the per-dataset lengths a new LLM
checkpoint records), the images of a study, and turning generated token rows into reports.

Kept free of torch/transformers at import time: the registry imports generator modules for
``bench ls``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.api.generator import Generator
from rrg_bench.api.types import Study

if TYPE_CHECKING:
    from torch import nn

#: min/max new tokens per dataset family (AM-MRG's test scripts: MIMIC-CXR and CheXpert Plus 80/120,
#: IU X-Ray 40/100); S2D-Align published none and uses the same
NEW_TOKENS = {"iu_xray": (40, 100), "mimic_cxr": (80, 120), "chexpert_plus": (80, 120)}
#: report token budget in training (AM-MRG's ``max_length``): 100, IU X-Ray 60
MAX_REPORT_TOKENS = {"iu_xray": 60, "mimic_cxr": 100, "chexpert_plus": 100}


def dataset_family(dataset: str) -> str:
    """``iu_xray/r2gen`` -> ``iu_xray``; unknown families decode like MIMIC-CXR."""
    family = dataset.split("/", 1)[0]
    return family if family in NEW_TOKENS else "mimic_cxr"


def report_lengths(dataset: str, recipe: Any) -> dict[str, int]:
    """A new LLM checkpoint's ``max_report_tokens`` / ``min_new_tokens`` / ``max_new_tokens``: the
    recipe's where set, else the dataset family's."""
    family = dataset_family(dataset)
    min_new, max_new = NEW_TOKENS[family]
    return {
        "max_report_tokens": recipe.max_report_tokens or MAX_REPORT_TOKENS[family],
        "min_new_tokens": recipe.min_new_tokens if recipe.min_new_tokens is not None else min_new,
        "max_new_tokens": recipe.max_new_tokens if recipe.max_new_tokens is not None else max_new,
    }


class CheckpointParams(BaseModel):
    """What ``CheckpointGenerator`` reads of every checkpoint generator's params, so that it can resolve
    the weights without knowing the model."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str = Field(description="checkpoint: local directory or hub id (with revision)")
    revision: str | None = Field(None, description="hub commit id (required for hub ids)")


class LLMDecodingParams(CheckpointParams):
    """Params of an LLM report generator (am_mrg, s2d_align): the checkpoint and its decoding.
    Subclasses redefine ``checkpoint`` to describe their own checkpoint."""

    num_beams: int = Field(3, ge=1)
    repetition_penalty: float = Field(2.0, gt=0)
    length_penalty: float = 2.0
    min_new_tokens: int | None = Field(None, ge=0, description="default: the checkpoint's (dataset's) value")
    max_new_tokens: int | None = Field(None, ge=1, description="default: the checkpoint's (dataset's) value")
    no_repeat_ngram_size: int = Field(0, ge=0)
    #: check an external LLM's files against the sha256 recorded at training
    verify_llm: bool = True


def llm_decoding(params: LLMDecodingParams, config: Any) -> dict[str, Any]:
    """Effective decoding settings: params, else the checkpoint's (dataset's) min/max new tokens."""
    p = params
    return {
        "strategy": "beam" if p.num_beams > 1 else "greedy",
        "num_beams": p.num_beams,
        "repetition_penalty": p.repetition_penalty,
        "length_penalty": p.length_penalty,
        "min_new_tokens": p.min_new_tokens if p.min_new_tokens is not None else config.min_new_tokens,
        "max_new_tokens": p.max_new_tokens if p.max_new_tokens is not None else config.max_new_tokens,
        "no_repeat_ngram_size": p.no_repeat_ngram_size,
    }


class CheckpointGenerator(Generator):
    """A generator whose weights are one checkpoint (``params.checkpoint`` at ``params.revision``).

    The checkpoint is resolved and hashed on first use, so ``fingerprint`` can name the weights by
    content before ``setup`` loads them. Subclasses set ``checkpoint_model`` (named in messages) and
    ``Params`` (a ``CheckpointParams``), and declare ``_model`` as the model class they load."""

    checkpoint_model: ClassVar[str]
    params: CheckpointParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model: nn.Module | None = None
        self._tokenizer: Any = None
        self._checkpoint_dir: Path | None = None
        self._checkpoint_sha256: str | None = None
        self._device = "cpu"

    def _resolved(self) -> Path:
        from rrg_bench.baselines.common.checkpoints import checkpoint_sha256, resolve_checkpoint

        if self._checkpoint_dir is None:
            self._checkpoint_dir = resolve_checkpoint(self.params.checkpoint, self.params.revision,
                                                      model=self.checkpoint_model)
        if self._checkpoint_sha256 is None:
            self._checkpoint_sha256 = checkpoint_sha256(self._checkpoint_dir)
        return self._checkpoint_dir


def generation_images(study: Study, images: str) -> list[Path]:
    """The images a checkpoint reads for a study: every listed image (``images="all"``), else the frontal one."""
    from rrg_bench.baselines.common.images import select_image

    if images == "all" and study.image_paths:
        return [Path(p) for p in study.image_paths]
    return [select_image(study, "frontal")]


def batch_pixels(batch: Sequence[Study], images: str, image: Any) -> tuple[Any, list[int]]:
    """(pixel values of every image of every study, in order; number of images per study)."""
    from rrg_bench.baselines.common.images import pixel_batch

    per_study = [generation_images(s, images) for s in batch]
    ids = [s.study_id for s, ps in zip(batch, per_study) for _ in ps]
    return pixel_batch([p for ps in per_study for p in ps], image, ids), [len(ps) for ps in per_study]


def decode_rows(tokenizer: Any, rows: Sequence[Sequence[int]], eos: int | None) -> list[tuple[str, int, bool]]:
    """(text with whitespace collapsed, number of tokens before EOS, whether EOS was written) per row;
    a tokenizer without an EOS token (``eos`` None) never stops a row early."""
    decoded = []
    for row in rows:
        row = list(row)
        end = row.index(eos) if eos is not None and eos in row else None
        tokens, stopped = row[:end], end is not None
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        decoded.append((" ".join(text.split()), len(tokens), stopped))
    return decoded
