"""Stage 2's instance-level guidance: top-k train reports retrieved by image-embedding similarity,
and the prompt text that carries them.

The index *is* knn_image's: this module builds the registered ``knn_image`` generator
(``baselines.knn_image.generate.KnnImage``) and asks its public ``neighbours`` for the k best
neighbours instead of one voted report, so encoders, embedding cache, L2 normalisation and the
train-split index are the same. Guarantees, tested: the index holds studies of the train split
only (and never the test split), and a study's references are neither itself nor any study of its
patient (``Study.meta["subject_id"]``, MIMIC-CXR's): a patient's other report mostly describes the
same chest, so in training it would teach copying instead of guidance.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrg_bench.api.generator import GeneratorContext
from rrg_bench.api.types import Study
from rrg_bench.baselines.knn_image.generate import KnnImage
from rrg_bench.baselines.s2d_align.configuration import S2DAlignConfig, instruction_text
from rrg_bench.errors import DataError, UsageError

INDEX_FILE = "reference_index.json"
#: the ``Study.meta`` key naming a study's patient (datasets without it: every study its own patient)
PATIENT_KEY = "subject_id"
SELECTION = ("top-k cosine similarity, ties -> earlier train study; the query itself and every study of its "
             f"patient (meta {PATIENT_KEY}) excluded")


def patient_of(study: Study) -> str | None:
    value = (study.meta or {}).get(PATIENT_KEY)
    return None if value is None or str(value) == "" else str(value)


def save_index_ids(directory: Path, dataset: str, split: str, study_ids: Sequence[str]) -> None:
    """The train studies a checkpoint retrieved from, so inference searches the same database."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / INDEX_FILE).write_text(json.dumps({"dataset": dataset, "split": split,
                                                          "study_ids": list(study_ids)}))


def index_studies(directory: Path, dataset: str, train: Sequence[Study]) -> tuple[list[Study], str]:
    """The run's train studies to index: the checkpoint's own reference database when the run uses
    the dataset it was trained on (every id must be there), else the run's whole train split."""
    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        return list(train), "run train split (checkpoint names no index)"
    saved = json.loads(path.read_text())
    if saved["dataset"] != dataset:
        return list(train), f"run train split (checkpoint index is of {saved['dataset']})"
    by_id = {s.study_id: s for s in train}
    missing = [i for i in saved["study_ids"] if i not in by_id]
    if missing:
        raise DataError(f"s2d_align: {len(missing)} reference studies of the checkpoint ({path}) are not in the "
                        f"{dataset} train split, e.g. {', '.join(missing[:3])}")
    return [by_id[i] for i in saved["study_ids"]], "checkpoint's training index"


class ReferenceIndex:
    def __init__(self, train: Sequence[Study], *, split: str = "train", encoder: str = "pixel",
                 revision: str | None = None, image: str = "frontal", device: str = "cpu",
                 cache_dir: Path | None = None, batch_size: int = 16, dataset: str = "") -> None:
        if split == "test":
            raise UsageError("s2d_align: reference reports are retrieved from a train split, never from 'test'")
        wrong = [s.study_id for s in train if s.split != split]
        if wrong:
            raise UsageError(f"s2d_align: {len(wrong)} studies given to the reference index are not from split "
                             f"{split!r}, e.g. {', '.join(wrong[:3])}")
        self.split = split
        self._knn = KnnImage(encoder=encoder, revision=revision, image=image)
        studies = list(train)
        self._patient = {s.study_id: patient_of(s) for s in studies}
        self._studies_of = Counter(p for p in self._patient.values() if p is not None)
        self._knn.setup(GeneratorContext(dataset=dataset, split=split, device=device, batch_size=batch_size,
                                         train_studies=lambda: studies, cache_dir=cache_dir, progress=False))

    @property
    def study_ids(self) -> list[str]:
        return self._knn.train_ids

    def neighbours(self, queries: Sequence[Study], k: int) -> list[list[tuple[str, str]]]:
        """For each query, up to ``k`` (study id, report) of the most similar train images, best
        first (ties: earlier train study), neither the query nor a study of its patient."""
        if k <= 0 or not queries:
            return [[] for _ in queries]
        patients = [patient_of(q) for q in queries]
        # ask for enough that k remain once the query's own patient's studies are dropped
        wider = k + max((self._studies_of[p] for p in patients if p is not None), default=0)
        out = []
        for study, patient, hits in zip(queries, patients, self._knn.neighbours(queries, wider,
                                                                                label="embedding queries")):
            kept = [(sid, text) for sid, text, _ in hits if patient is None or self._patient.get(sid) != patient][:k]
            if not kept:
                why = "every other indexed study is of its patient" if hits else "it is the only indexed study"
                raise DataError(f"s2d_align: no reference exists for study {study.study_id}: {why}")
            out.append(kept)
        return out

    def fingerprint(self) -> dict[str, Any]:
        fp = self._knn.fingerprint()
        return {"split": self.split, "encoder": fp.get("encoder_identity"), "train_index": fp.get("train_index"),
                "selection": SELECTION}


def clip_text(tokenizer: Any, text: str, max_tokens: int) -> str:
    """``text`` cut to its first ``max_tokens`` tokens (a reference report's prompt budget)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens]).strip()


def reference_tails(config: S2DAlignConfig, tokenizer: Any, neighbours: Sequence[Sequence[tuple[str, str]]]
                    ) -> list[str]:
    """The prompt text after the visual tokens for each study, given its retrieved (id, report) pairs."""
    return [instruction_text(config, [clip_text(tokenizer, r, config.max_reference_tokens) for _, r in refs])
            for refs in neighbours]
