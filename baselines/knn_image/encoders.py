"""The image encoders knn_image compares images with, and the on-disk cache of their embeddings.

The encoder is pluggable so the same baseline runs offline with raw pixels and, for real
comparisons, with any frozen Hugging Face vision encoder the user has on disk. Generation never
downloads: a hub id must already be in the local Hugging Face cache.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from rrg_bench.baselines.common.images import file_sha256, to_float_array
from rrg_bench.errors import UsageError, WeightsUnavailable
from rrg_bench.hashing import sha256_json

#: side of the square grayscale thumbnail the ``pixel`` encoder compares
PIXEL_SIZE = 64

#: files whose bytes decide an HF encoder's output (weights, architecture, preprocessing)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5")
CONFIG_FILES = ("config.json", "preprocessor_config.json")


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
    from rrg_bench.weights import hub_snapshot

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
    snapshot = hub_snapshot(encoder, revision, local_files_only=True, who="knn_image encoder",
                            fix=f"The harness never downloads weights while generating; {_how_to_pass_local(encoder)}")
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
            "checkpoint_sha256": sha256_json(self._files),
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
        key = sha256_json({"encoder": encoder.fingerprint(), "libraries": encoder.library_versions()})
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
