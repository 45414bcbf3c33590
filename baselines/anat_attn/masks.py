"""Where the lung/heart prior comes from: precomputed files, CheXmask RLE tables, or segmenters.

Every source returns raw masks at its own resolution; ``GridMaskProvider`` turns them into the
model's (G, G) prior (min–max normalised, bilinear-resized — steps 1–2 of the recipe) and caches
that per image, so a mask is computed once per image and source no matter how many epochs or runs
read it. The per-layer blur (steps 3–4) is cheap and done by the model.

File layout for ``FileMasks``: ``<mask_dir>/<image path relative to image_root>`` with the suffix
replaced by ``.npy`` or ``.png``; without ``image_root`` the image's last two path parts are used
(R2Gen ``<study>/0.png``, MIMIC ``s5…/<dicom_id>.jpg``). PNG/NPY values are used as given: a binary
lung ∪ heart mask for ``mask_source=lung_heart``, a lung logit/probability map for ``lung_logits``.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from PIL import Image

from rrg_bench.baselines.anat_attn.presets import MaskOptions
from rrg_bench.baselines.anat_attn.smoothing import masks_to_prior
from rrg_bench.baselines.common.checkpoints import state_dict_sha256
from rrg_bench.errors import DataError, UsageError, WeightsUnavailable

MASK_KINDS = ("auto", "segmenter", "files", "chexmask", "none")
CHEXMASK_COLUMNS = ("Left Lung", "Right Lung", "Heart")


def _sha256_bytes(path: Path) -> str:
    from rrg_bench.baselines.common.images import file_sha256

    return file_sha256(path)


class MaskSource(ABC):
    """A producer of raw anatomy masks for images (any resolution, any value range)."""

    kind: ClassVar[str]
    #: True if ``raw_masks`` needs the normalised pixels (a segmenter); files only need paths
    needs_pixels: ClassVar[bool] = False

    @abstractmethod
    def raw_masks(self, image_paths: Sequence[Path], pixel_values: torch.Tensor | None) -> list[torch.Tensor]:
        """One (H, W) float tensor per image."""

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Everything that can change the masks (weights hash, files, variant)."""

    def cache_key(self, image_path: Path) -> str:
        """Identity of one image's mask under this source (default: the image's content)."""
        return _sha256_bytes(image_path)


# ------------------------------------------------------------------ files (PNG / NPY)
class FileMasks(MaskSource):
    kind = "files"

    def __init__(self, mask_dir: Path | str, image_root: Path | str | None = None) -> None:
        self.mask_dir = Path(mask_dir).expanduser().resolve()
        self.image_root = Path(image_root).expanduser().resolve() if image_root else None
        if not self.mask_dir.is_dir():
            raise UsageError(f"mask_dir {self.mask_dir} is not a directory")

    def mask_path(self, image_path: Path) -> Path:
        image_path = Path(image_path)
        if self.image_root is not None:
            try:
                rel = image_path.resolve().relative_to(self.image_root)
            except ValueError:
                raise DataError(f"image {image_path} is not under mask_image_root {self.image_root}") from None
        else:
            rel = Path(image_path.parent.name) / image_path.name
        for suffix in (".npy", ".png"):
            candidate = self.mask_dir / rel.with_suffix(suffix)
            if candidate.is_file():
                return candidate
        raise DataError(
            f"no mask for image {image_path}: expected {self.mask_dir / rel.with_suffix('.npy')} or .png"
        )

    def raw_masks(self, image_paths: Sequence[Path], pixel_values: torch.Tensor | None = None) -> list[torch.Tensor]:
        return [self._load(self.mask_path(p)) for p in image_paths]

    @staticmethod
    def _load(path: Path) -> torch.Tensor:
        try:
            if path.suffix == ".npy":
                array = np.load(path, allow_pickle=False)
            else:
                with Image.open(path) as img:
                    array = np.asarray(img.convert("L"))
        except Exception as exc:  # corrupt file: name it
            raise DataError(f"cannot read mask {path}: {exc}") from None
        array = np.squeeze(array)
        if array.ndim != 2:
            raise DataError(f"mask {path} has shape {array.shape}; expected a 2-D (H, W) array")
        return torch.from_numpy(array.astype(np.float32))

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "mask_dir": str(self.mask_dir), "image_root": str(self.image_root or "")}

    def cache_key(self, image_path: Path) -> str:
        path = self.mask_path(image_path)
        stat = path.stat()
        return hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()


# ------------------------------------------------------------------ CheXmask RLE table
def decode_rle(rle: str | float | None, height: int, width: int) -> np.ndarray:
    """CheXmask run-length encoding: "start length" pairs, 1-based starts, row-major (H, W) order.
    Empty / NaN -> all-zero mask."""
    mask = np.zeros(height * width, dtype=bool)
    if rle is None or (isinstance(rle, float) and np.isnan(rle)) or not str(rle).strip():
        return mask.reshape(height, width)
    runs = np.asarray(str(rle).split(), dtype=np.int64)
    if runs.size % 2:
        raise ValueError("RLE string has an odd number of values")
    for start, length in zip(runs[0::2] - 1, runs[1::2]):
        mask[start : start + length] = True
    return mask.reshape(height, width)


class ChexmaskMasks(MaskSource):
    """Lung ∪ heart from a CheXmask CSV (OriginalResolution tables: columns Left Lung, Right Lung,
    Heart as RLE, Height, Width, and an image id column — ``dicom_id`` for MIMIC-CXR-JPG).
    Images are matched by file stem (the dicom id of a MIMIC-CXR-JPG file name)."""

    kind = "chexmask"

    def __init__(self, csv_path: Path | str, id_column: str = "dicom_id", default_size: int = 1024) -> None:
        self.csv_path = Path(csv_path).expanduser().resolve()
        self.id_column = id_column
        self.default_size = default_size
        if not self.csv_path.is_file():
            raise UsageError(f"chexmask_csv {self.csv_path} not found")
        self._rows: dict[str, tuple[Any, ...]] | None = None

    def _table(self) -> dict[str, tuple[Any, ...]]:
        if self._rows is None:
            import pandas as pd

            header = pd.read_csv(self.csv_path, nrows=0).columns
            missing = [c for c in (self.id_column, *CHEXMASK_COLUMNS) if c not in header]
            if missing:
                raise DataError(
                    f"{self.csv_path}: missing column(s) {missing}; found {list(header)[:12]} "
                    "(set chexmask_id_column to the table's image id column)"
                )
            size_cols = [c for c in ("Height", "Width") if c in header]
            frame = pd.read_csv(self.csv_path, usecols=[self.id_column, *CHEXMASK_COLUMNS, *size_cols], dtype=str)
            rows: dict[str, tuple[Any, ...]] = {}
            for data in frame.to_dict(orient="records"):
                h = int(float(data["Height"])) if "Height" in data else self.default_size
                w = int(float(data["Width"])) if "Width" in data else self.default_size
                rows[str(data[self.id_column])] = (h, w, data["Left Lung"], data["Right Lung"], data["Heart"])
            self._rows = rows
        return self._rows

    def raw_masks(self, image_paths: Sequence[Path], pixel_values: torch.Tensor | None = None) -> list[torch.Tensor]:
        table = self._table()
        out = []
        for path in image_paths:
            key = Path(path).stem
            if key not in table:
                raise DataError(f"image {path}: id {key!r} not in {self.csv_path} (column {self.id_column!r})")
            h, w, left, right, heart = table[key]
            try:
                union = decode_rle(left, h, w) | decode_rle(right, h, w) | decode_rle(heart, h, w)
            except (ValueError, IndexError) as exc:
                raise DataError(f"{self.csv_path}: bad RLE for {key!r}: {exc}") from None
            out.append(torch.from_numpy(union.astype(np.float32)))
        return out

    def fingerprint(self) -> dict[str, Any]:
        return {"kind": self.kind, "csv_sha256": _sha256_bytes(self.csv_path), "id_column": self.id_column}

    def cache_key(self, image_path: Path) -> str:
        return hashlib.sha256(f"{self.csv_path}\0{Path(image_path).stem}".encode()).hexdigest()


# ------------------------------------------------------------------ segmenters
class SegmenterMasks(MaskSource):
    """The authors' route: frozen lung (and heart) segmenters on the same normalised pixels.
    ``lung_heart``: binary lung (sigmoid > 0.5) ∪ heart (argmax == 2); ``lung_logits``: the lung
    model's raw logits, not thresholded (the paper checkpoint's era)."""

    kind = "segmenter"
    needs_pixels = True

    def __init__(self, lung, heart=None, mask_source: str = "lung_heart") -> None:
        if mask_source == "lung_heart" and heart is None:
            raise UsageError("mask_source=lung_heart needs a heart segmenter (heart_segmenter=...)")
        self.lung = lung.eval()
        self.heart = heart.eval() if heart is not None else None
        self.mask_source = mask_source
        self._fingerprint: dict[str, Any] | None = None

    @classmethod
    def load(
        cls,
        lung_ref: str,
        heart_ref: str | None,
        mask_source: str,
        revision: str | None = None,
        device: str = "cpu",
    ) -> SegmenterMasks:
        from rrg_bench.baselines.anat_attn.segmenter import AnatSegmenter

        def _load(ref: str):
            try:
                return AnatSegmenter.from_pretrained(ref, revision=revision).to(device)
            except OSError as exc:
                raise WeightsUnavailable(
                    f"anat_attn: cannot load segmenter {ref!r}: {exc}. Give a local directory saved by "
                    "AnatSegmenter.save_pretrained (the importer converts the authors' .pth files)."
                ) from None

        heart = _load(heart_ref) if (heart_ref and mask_source == "lung_heart") else None
        return cls(_load(lung_ref), heart, mask_source)

    @torch.no_grad()
    def raw_masks(self, image_paths: Sequence[Path], pixel_values: torch.Tensor | None) -> list[torch.Tensor]:
        if pixel_values is None:
            raise ValueError("segmenter masks need pixel values")
        device = next(self.lung.parameters()).device
        pixels = pixel_values.to(device)
        lung_logits = self.lung(pixels)
        if self.mask_source == "lung_logits":
            maps = lung_logits[:, self.lung.config.target_class]
        elif self.heart is not None:  # always, for lung_heart (``__init__`` refuses it without a heart)
            maps = torch.maximum(self.lung.binary_mask(lung_logits), self.heart.binary_mask(self.heart(pixels)))
        else:
            raise UsageError(f"mask_source={self.mask_source} needs a heart segmenter (heart_segmenter=...)")
        return [m.float().cpu() for m in maps]

    def fingerprint(self) -> dict[str, Any]:
        if self._fingerprint is None:
            self._fingerprint = {
                "kind": self.kind,
                "mask_source": self.mask_source,
                "lung_sha256": state_dict_sha256(self.lung),
                "heart_sha256": state_dict_sha256(self.heart) if self.heart is not None else None,
            }
        return self._fingerprint


# ------------------------------------------------------------------ grid-level cache
class GridMaskProvider:
    """Source + model grid + cache: (B, G, G) priors for a batch of images.

    Entries are keyed by the source's fingerprint, the grid and the image's mask identity; they
    live in memory (bounded) and, with ``cache_dir``, as ``.npy`` files shared by later runs.
    """

    def __init__(
        self, source: MaskSource, grid: int, cache_dir: Path | str | None = None, memory_items: int = 4096,
        prior: str = "minmax",
    ) -> None:
        self.source = source
        self.grid = grid
        #: ``minmax`` (the paper's) or ``clamp`` (lana_radgen); named in the fingerprint only when not the default,
        #: so the cache keys of existing priors do not move
        self.prior = prior
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.memory_items = memory_items
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._prefix = hashlib.sha256(json.dumps(self.fingerprint(), sort_keys=True).encode()).hexdigest()
        self.hits = 0
        self.misses = 0

    def fingerprint(self) -> dict[str, Any]:
        out = {"source": self.source.fingerprint(), "grid": self.grid}
        return out if self.prior == "minmax" else {**out, "prior": self.prior}

    def _key(self, image_path: Path) -> str:
        return hashlib.sha256(f"{self._prefix}\0{self.source.cache_key(Path(image_path))}".encode()).hexdigest()

    def _disk_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.npy" if self.cache_dir else None

    def _lookup(self, key: str) -> torch.Tensor | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self._disk_path(key)
        if path is not None and path.is_file():
            try:
                value = torch.from_numpy(np.load(path, allow_pickle=False))
            except Exception:  # a torn write from a killed process: recompute
                return None
            self._remember(key, value)
            return value
        return None

    def _remember(self, key: str, value: torch.Tensor) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def _store(self, key: str, value: torch.Tensor) -> None:
        self._remember(key, value)
        path = self._disk_path(key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{uuid.uuid4().hex}.tmp")  # unique across processes
            with open(tmp, "wb") as fh:
                np.save(fh, value.numpy())
            tmp.replace(path)

    def grid_masks(self, image_paths: Sequence[Path], pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        keys = [self._key(p) for p in image_paths]
        found = [self._lookup(k) for k in keys]
        missing = [i for i, v in enumerate(found) if v is None]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            pixels = pixel_values[missing] if (pixel_values is not None and self.source.needs_pixels) else None
            raws = self.source.raw_masks([image_paths[i] for i in missing], pixels)
            for i, raw in zip(missing, raws):
                grid = masks_to_prior(raw[None], self.grid, self.prior)[0].contiguous()
                self._store(keys[i], grid)
                found[i] = grid
        return torch.stack(cast(list[torch.Tensor], found))  # every missing row was filled above


def build_mask_source(
    kind: str,
    *,
    mask_source: str,
    mask_dir: str = "",
    mask_image_root: str = "",
    chexmask_csv: str = "",
    chexmask_id_column: str = "dicom_id",
    lung_segmenter: str = "",
    heart_segmenter: str = "",
    segmenter_revision: str | None = None,
    bundled_dir: Path | None = None,
    device: str = "cpu",
) -> MaskSource | None:
    """The one place option strings become a source. ``auto``: segmenters bundled with the checkpoint
    (``<checkpoint>/segmenters/{lung,heart}``) if present, else explicit segmenter options."""
    if kind not in MASK_KINDS:
        raise UsageError(f"masks={kind!r}: choose one of {', '.join(MASK_KINDS)}")
    if kind == "none":
        return None
    if kind == "files":
        if not mask_dir:
            raise UsageError("masks=files needs mask_dir=<directory of .npy/.png masks>")
        return FileMasks(mask_dir, mask_image_root or None)
    if kind == "chexmask":
        if mask_source == "lung_logits":
            raise UsageError("CheXmask tables hold binary masks; they cannot provide mask_source=lung_logits")
        if not chexmask_csv:
            raise UsageError("masks=chexmask needs chexmask_csv=<CheXmask CSV>")
        return ChexmaskMasks(chexmask_csv, chexmask_id_column)
    lung, heart = lung_segmenter, heart_segmenter
    if not lung and bundled_dir is not None and (bundled_dir / "segmenters" / "lung").is_dir():
        lung = str(bundled_dir / "segmenters" / "lung")
        if not heart and (bundled_dir / "segmenters" / "heart").is_dir():
            heart = str(bundled_dir / "segmenters" / "heart")
    if not lung:
        raise UsageError(
            "anatomical attention needs masks: give masks=files mask_dir=..., masks=chexmask chexmask_csv=..., "
            "or masks=segmenter lung_segmenter=... heart_segmenter=... (or a checkpoint with bundled segmenters/)"
        )
    return SegmenterMasks.load(lung, heart or None, mask_source, revision=segmenter_revision, device=device)


#: the options of ``presets.MaskOptions`` (generator params and training recipe) besides ``masks``
MASK_OPTIONS = tuple(name for name in MaskOptions.model_fields if name != "masks")


def mask_kind(masks: str) -> str:
    """``masks=auto`` means the segmenters (bundled with the checkpoint, else the explicit ones)."""
    return "segmenter" if masks == "auto" else masks


def mask_source_for(options: MaskOptions, *, mask_source: str, bundled_dir: Path | None, device: str
                    ) -> MaskSource | None:
    """``build_mask_source`` from an object carrying ``masks`` and the ``MASK_OPTIONS`` (a
    generator's params or a training recipe), so both read the options the same way."""
    return build_mask_source(mask_kind(options.masks), mask_source=mask_source,
                             **{name: getattr(options, name) for name in MASK_OPTIONS},
                             bundled_dir=bundled_dir, device=device)
