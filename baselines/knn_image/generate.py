"""The ``knn_image`` generator: the report of the most similar training image.

The retrieval floor of the RRG literature (Boag et al. 2019, "nearest neighbor report
retrieval"): any model that conditions on the image should beat copying the report of the
closest train image. The index holds the train split only; an evaluated study is never its own
neighbour. ``neighbours`` is public: s2d_align retrieves its reference reports through it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.api.generator import Generator, GeneratorContext
from rrg_bench.api.types import Generation, Study
from rrg_bench.baselines.common.images import ImageChoice, file_sha256, load_image
from rrg_bench.baselines.knn_image.encoders import EmbeddingCache, make_encoder
from rrg_bench.errors import DataError
from rrg_bench.hashing import sha256_json

SELECTION_RULE = (
    "cosine similarity of L2-normalised embeddings; ties -> earlier train study in split order; "
    "k>1 -> the report text most frequent among the top k, ties -> the better-ranked one"
)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    """Unit rows; an all-zero row (e.g. a blank image under ``pixel``) stays zero."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def vote(ranked: Sequence[int], texts: Sequence[str]) -> int:
    """The neighbour whose report text is most frequent among ``ranked``; ties -> better-ranked."""
    counts = Counter(texts[i] for i in ranked)
    best = max(counts.values())
    return next(i for i in ranked if counts[texts[i]] == best)


class KnnParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: "pixel", a Hugging Face model id (already in the local cache) or a local checkpoint directory
    encoder: str = Field("pixel", min_length=1)
    #: revision (commit, tag or branch) of a hub id; record a commit for reproducible runs
    revision: str | None = None
    #: which image of a study: the manifest's frontal view, or the first listed file
    image: Literal["frontal", "first"] = "frontal"
    #: neighbours that vote on the report (1 = plain nearest neighbour)
    k: int = Field(1, ge=1)


class KnnImage(Generator):
    """Nearest train image by cosine similarity -> that study's report (see module docstring)."""

    name = "knn_image"
    version = "1"
    needs_images = True
    Params = KnnParams
    params: KnnParams

    def setup(self, ctx: GeneratorContext) -> None:
        params = self.params
        self._image_choice: ImageChoice = params.image
        self._k = params.k
        self._batch_size = max(1, ctx.batch_size)
        self._progress = ctx.progress_task if ctx.progress else None
        self._encoder = make_encoder(params.encoder, params.revision, ctx.device)
        self._cache = EmbeddingCache(ctx.cache_dir, self._encoder)

        train = list(ctx.train_studies())
        indexed = [s for s in train if self._image_path(s) is not None]
        if not indexed:
            raise DataError(
                f"knn_image: none of the {len(train)} train studies of dataset {ctx.dataset!r} has a "
                f"{params.image} image, so there is nothing to retrieve from"
                + ("; try image=first" if params.image == "frontal" and train else "")
            )
        self._n_skipped = len(train) - len(indexed)
        shas = [file_sha256(self._required_path(s), s.study_id) for s in indexed]
        self._index = l2_normalise(self._embed(indexed, shas, "embedding train images"))
        self._train_ids = [s.study_id for s in indexed]
        self._train_texts = [s.reference for s in indexed]
        self._position = {sid: i for i, sid in enumerate(self._train_ids)}
        self._index_sha256 = sha256_json([[s.study_id, sha, s.reference_sha256] for s, sha in zip(indexed, shas)])

    def _image_path(self, study: Study) -> Path | None:
        if self._image_choice == "frontal":
            return Path(study.frontal_image) if study.frontal_image is not None else None
        return Path(study.image_paths[0]) if study.image_paths else None

    def _required_path(self, study: Study) -> Path:
        path = self._image_path(study)
        if path is None:
            raise DataError(
                f"study {study.study_id}: the manifest names no {self._image_choice} image "
                f"({len(study.image_paths)} image(s) listed); knn_image needs one (try image=first)"
            )
        return path

    def _embed(self, studies: Sequence[Study], shas: Sequence[str | None], label: str) -> np.ndarray:
        """Embeddings of each study's image, from the cache where possible, in batches."""
        vectors: list[np.ndarray | None] = [self._cache.get(sha) if sha else None for sha in shas]
        todo = [i for i, v in enumerate(vectors) if v is None]
        batches: Iterable[Sequence[int]] = list(_chunks(todo, self._batch_size))
        advance = (self._progress(f"knn_image: {label}", len(todo))
                   if self._progress and len(todo) > self._batch_size else None)
        for chunk in batches:
            images = [
                load_image(self._required_path(studies[i]), mode=self._encoder.mode, study_id=studies[i].study_id)
                for i in chunk
            ]
            embedded = self._encoder.embed(images)
            for i, row in zip(chunk, embedded):
                vectors[i] = row
                sha = shas[i]
                if sha:
                    self._cache.put(sha, row)
            if advance is not None:
                advance(len(chunk))
        filled = [v for v in vectors if v is not None]
        assert len(filled) == len(vectors), "every image was embedded or read from the cache"
        return np.stack(filled).astype(np.float32)

    def generate(self, batch: Sequence[Study], seeds: Sequence[int]) -> list[Generation]:
        if not hasattr(self, "_index"):
            raise RuntimeError("knn_image: setup(ctx) must be called before generate()")
        if len(seeds) != len(batch):
            raise ValueError("one seed per study")
        if not batch:
            return []
        out = []
        for study, hits in zip(batch, self.neighbours(batch, self._k, label="embedding studies")):
            if not hits:
                raise DataError(f"knn_image: study {study.study_id} is the only train study; nothing else to retrieve")
            chosen = hits[vote(range(len(hits)), [text for _, text, _ in hits])]
            out.append(Generation(study.study_id, chosen[1], {"retrieved_from": chosen[0]}))
        return out

    @property
    def train_ids(self) -> list[str]:
        """The indexed train studies (those with the chosen image), in index order."""
        return list(self._train_ids)

    def neighbours(self, studies: Sequence[Study], k: int, label: str = "embedding queries"
                   ) -> list[list[tuple[str, str, float]]]:
        """For each study (after ``setup``), up to ``k`` (train study id, its report, cosine
        similarity) of the most similar indexed train images, best first (ties: earlier train
        study), the study itself excluded: empty when it is the only indexed study. ``label`` names
        the embedding step in the progress bar."""
        paths = [self._required_path(s) for s in studies]
        caching = self._cache.directory is not None
        shas = [file_sha256(p, s.study_id) if caching else None for p, s in zip(paths, studies)]
        similarity = l2_normalise(self._embed(studies, shas, label)) @ self._index.T
        out = []
        for row, study in zip(similarity, studies):
            own = self._position.get(study.study_id)
            if own is not None:
                row[own] = -np.inf
            candidates = len(self._train_ids) - (own is not None)
            ranked = np.argsort(-row, kind="stable")[: min(k, candidates)].tolist() if candidates > 0 else []
            out.append([(self._train_ids[i], self._train_texts[i], float(row[i])) for i in ranked])
        return out

    def fingerprint(self) -> dict[str, Any]:
        fp = super().fingerprint()
        fp["selection"] = SELECTION_RULE
        if hasattr(self, "_index"):
            fp["encoder_identity"] = self._encoder.fingerprint()
            fp["train_index"] = {
                "n": len(self._train_ids),
                "n_skipped_no_image": self._n_skipped,
                "sha256": self._index_sha256,
            }
        return fp
