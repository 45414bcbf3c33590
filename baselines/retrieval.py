"""knn_image: the report of the most similar training image (nearest-neighbour retrieval).

The retrieval floor of the RRG literature (Boag et al. 2019, "nearest neighbor report
retrieval"): any model that conditions on the image should beat copying the report of the
closest train image. The image encoder is pluggable so the same baseline runs offline with
raw pixels and, for real comparisons, with any frozen Hugging Face vision encoder the user
has on disk. The index holds the train split only; an evaluated study is never its own
neighbour.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Protocol, Sequence

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from rrg_bench.baselines.image_io import ImageChoice, file_sha256, load_image, to_float_array
from rrg_bench.errors import DataError, UsageError, WeightsUnavailable
from rrg_bench.api.generator import Generator, GeneratorContext
from rrg_bench.api.types import Generation, Study

#: side of the square grayscale thumbnail the ``pixel`` encoder compares
PIXEL_SIZE = 64

#: files whose bytes decide an HF encoder's output (weights, architecture, preprocessing)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5")
CONFIG_FILES = ("config.json", "preprocessor_config.json")

SELECTION_RULE = (
    "cosine similarity of L2-normalised embeddings; ties -> earlier train study in split order; "
    "k>1 -> the report text most frequent among the top k, ties -> the better-ranked one"
)


def canonical_sha256(obj: Any) -> str:
    """sha256 of sorted-key compact JSON: a stable key for dicts of settings."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class ImageEncoder(Protocol):
    """Turns a batch of PIL images into one embedding row each."""

    #: PIL mode the images are loaded in
    mode: Literal["L", "RGB"]

    def fingerprint(self) -> dict[str, Any]:
        """What decides the embeddings: part of the run identity and of the cache key."""
        ...

    def library_versions(self) -> dict[str, str | None]:
        """Library versions that can move the numbers: part of the cache key only."""
        ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray: ...


class PixelEncoder:
    """Raw pixels: grayscale, bilinear resize to 64x64, per-image z-score, flattened (4,096-d).

    Cosine similarity of z-scored pixel vectors is the Pearson correlation of the two
    thumbnails: invariant to global brightness and contrast, needs no weights, and is fast
    enough for IU X-Ray on a laptop CPU.
    """

    mode: Literal["L", "RGB"] = "L"

    def fingerprint(self) -> dict[str, Any]:
        return {
            "encoder": "pixel",
            "size": PIXEL_SIZE,
            "color": "grayscale",
            "resize": "PIL bilinear",
            "normalise": "per-image z-score",
        }

    def library_versions(self) -> dict[str, str | None]:
        return {"pillow": _version("pillow"), "numpy": _version("numpy")}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        rows = np.stack([to_float_array(im, PIXEL_SIZE).reshape(-1) for im in images]).astype(np.float64)
        rows -= rows.mean(axis=1, keepdims=True)
        rows /= rows.std(axis=1, keepdims=True) + 1e-8
        return rows.astype(np.float32)


def _looks_like_path(encoder: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else path-like is meant as a folder."""
    return encoder.startswith((".", "/", "~")) or encoder.count("/") > 1 or "\\" in encoder


def checkpoint_file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every weight and config file under ``directory`` (hidden folders skipped)."""
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
        and (p.suffix in WEIGHT_SUFFIXES or p.name in CONFIG_FILES)
    )
    return {p.relative_to(directory).as_posix(): file_sha256(p) for p in files}


def _how_to_pass_local(encoder: str) -> str:
    return (
        "pass a local checkpoint directory instead: --model-arg encoder=/path/to/dir (a folder written by "
        "save_pretrained with config.json, the weights and preprocessor_config.json), or download the model "
        f"where the Hub is reachable: `huggingface-cli download {encoder} --revision <commit>`"
    )


def resolve_hf_encoder(encoder: str, revision: str | None) -> tuple[Path, dict[str, Any]]:
    """Local directory of ``encoder`` and where it came from, without any network access.

    A hub id must already be in the local Hugging Face cache: generation never downloads
    silently, and the resolved snapshot commit is recorded.
    """
    local = Path(encoder).expanduser()
    if local.is_dir():
        if revision is not None:
            raise UsageError(
                f"knn_image: revision={revision!r} applies to Hugging Face hub ids, but encoder {encoder!r} "
                f"is a local directory; drop the revision"
            )
        return local.resolve(), {"source": "local"}
    if local.exists() or _looks_like_path(encoder):
        raise WeightsUnavailable(
            f"knn_image: encoder {encoder!r} is not a directory; pass a folder written by save_pretrained "
            f"(config.json, weights, preprocessor_config.json), a Hugging Face id, or encoder=pixel"
        )
    from huggingface_hub import snapshot_download

    try:
        snapshot = Path(snapshot_download(repo_id=encoder, revision=revision, local_files_only=True))
    except (OSError, ValueError) as exc:
        raise WeightsUnavailable(
            f"knn_image: encoder {encoder!r} (revision {revision or 'main'}) cannot be loaded offline: it is "
            f"not in the local Hugging Face cache ({type(exc).__name__}). The harness never downloads weights "
            f"while generating; {_how_to_pass_local(encoder)}"
        ) from None
    return snapshot, {"source": "hub", "id": encoder, "revision": revision, "resolved_commit": snapshot.name}


class HFEncoder:
    """A frozen Hugging Face vision model (``AutoModel`` + ``AutoImageProcessor``).

    Embedding: ``get_image_features`` for dual encoders (CLIP, SigLIP); otherwise
    ``pooler_output`` when the checkpoint has trained pooler weights, else the mean over the
    spatial grid for convolutional feature maps, else the CLS token when the model has one,
    else the mean over tokens. A checkpoint missing any other weights is refused: those would
    be randomly initialised and the neighbours meaningless.
    """

    mode: Literal["L", "RGB"] = "RGB"

    def __init__(self, encoder: str, revision: str | None, device: str = "cpu") -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel

        self._torch = torch
        directory, self._origin = resolve_hf_encoder(encoder, revision)
        self._files = checkpoint_file_hashes(directory)
        if not any(name.endswith(WEIGHT_SUFFIXES) for name in self._files):
            raise WeightsUnavailable(
                f"knn_image: no weight files ({', '.join(WEIGHT_SUFFIXES)}) in {directory}; "
                + _how_to_pass_local(encoder)
            )
        try:
            # the slow (PIL/numpy) processor: the reference implementation, and the default
            # fast/slow choice changes between transformers versions
            self._processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True, use_fast=False)
            model, info = AutoModel.from_pretrained(directory, local_files_only=True, output_loading_info=True)
        except (OSError, ValueError, KeyError) as exc:
            raise WeightsUnavailable(
                f"knn_image: cannot load an image encoder from {directory} ({type(exc).__name__}: {exc})"
            ) from None
        missing = sorted(info.get("missing_keys", ()))
        self._pooler_missing = any("pooler" in key for key in missing)
        untrained = [key for key in missing if "pooler" not in key]
        if untrained:
            raise WeightsUnavailable(
                f"knn_image: checkpoint {directory} has no weights for {len(untrained)} parameter(s) of "
                f"{type(model).__name__} (e.g. {untrained[0]}); they would be random. Pass a complete checkpoint."
            )
        self._device = device
        self._model = model.to(device).eval()
        self._pooling = self._decide_pooling()

    def _decide_pooling(self) -> str:
        if hasattr(self._model, "get_image_features"):
            return "image_features"
        out = self._forward(self._pixels([Image.new("RGB", (PIXEL_SIZE, PIXEL_SIZE))]))
        if getattr(out, "pooler_output", None) is not None and not self._pooler_missing:
            return "pooler_output"
        if out.last_hidden_state.ndim == 4:
            return "spatial_mean"
        if any(name.endswith("cls_token") for name, _ in self._model.named_parameters()):
            return "cls"
        return "token_mean"

    def _pixels(self, images: Sequence[Image.Image]) -> Any:
        return self._processor(images=list(images), return_tensors="pt")["pixel_values"].to(self._device)

    def _forward(self, pixel_values: Any) -> Any:
        with self._torch.inference_mode():
            return self._model(pixel_values=pixel_values)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "encoder": "hf",
            **self._origin,
            "model_class": type(self._model).__name__,
            "image_processor": type(self._processor).__name__,
            "pooling": self._pooling,
            "files_sha256": self._files,
            "checkpoint_sha256": canonical_sha256(self._files),
        }

    def library_versions(self) -> dict[str, str | None]:
        return {"torch": _version("torch"), "transformers": _version("transformers"), "pillow": _version("pillow")}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        pixel_values = self._pixels(images)
        with self._torch.inference_mode():
            if self._pooling == "image_features":
                features = self._model.get_image_features(pixel_values=pixel_values)
                if not isinstance(features, self._torch.Tensor):  # newer transformers return an output object
                    features = features.pooler_output
            else:
                out = self._model(pixel_values=pixel_values)
                if self._pooling == "pooler_output":
                    features = out.pooler_output
                elif self._pooling == "spatial_mean":
                    features = out.last_hidden_state.mean(dim=(2, 3))
                elif self._pooling == "cls":
                    features = out.last_hidden_state[:, 0]
                else:
                    features = out.last_hidden_state.mean(dim=1)
            return features.flatten(1).float().cpu().numpy()


def make_encoder(encoder: str, revision: str | None, device: str) -> ImageEncoder:
    if encoder == "pixel":
        if revision is not None:
            raise UsageError("knn_image: revision applies to Hugging Face encoders, not encoder=pixel")
        return PixelEncoder()
    return HFEncoder(encoder, revision, device)


class EmbeddingCache:
    """One ``.npy`` per image under ``cache_dir/knn_image/<encoder key>/``, keyed by file sha256.

    The key covers the encoder fingerprint and the library versions, so a changed checkpoint
    or preprocessing never reuses stale vectors. Writes are atomic (temp file + replace), so
    concurrent runs can share the folder; an unreadable entry is recomputed.
    """

    def __init__(self, cache_dir: Path | None, encoder: ImageEncoder) -> None:
        key = canonical_sha256({"encoder": encoder.fingerprint(), "libraries": encoder.library_versions()})
        self.directory = Path(cache_dir) / "knn_image" / key[:24] if cache_dir is not None else None

    def _path(self, image_sha256: str) -> Path:
        assert self.directory is not None
        return self.directory / image_sha256[:2] / f"{image_sha256}.npy"

    def get(self, image_sha256: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        try:
            return np.load(self._path(image_sha256), allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, image_sha256: str, vector: np.ndarray) -> None:
        if self.directory is None:
            return
        path = self._path(image_sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, vector, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


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

    def setup(self, ctx: GeneratorContext) -> None:
        params: KnnParams = self.params  # type: ignore[assignment]
        self._image_choice: ImageChoice = params.image
        self._k = params.k
        self._batch_size = max(1, ctx.batch_size)
        self._progress = ctx.progress
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
        self._index_sha256 = canonical_sha256(
            [[s.study_id, sha, s.reference_sha256] for s, sha in zip(indexed, shas)]
        )

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
        if self._progress and len(todo) > self._batch_size:
            from rich.progress import track

            batches = track(batches, description=f"knn_image: {label}")
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
