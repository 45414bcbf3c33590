"""Images from a Hugging Face dataset instead of files under the data root (``--images hf:…``).

Why a wrapper and not a generator option: every image generator reads ``Study.image_paths``; a
dataset that points those at images materialised from the ``datasets`` source (once, under the
runs directory, content-addressed) lets every generator use such a source unchanged. The
references, and so the dataset identity, are the wrapped dataset's.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.api.types import Study
from rrg_bench.errors import DataError
from rrg_bench.hashing import sha256_file, sha256_json, sha256_text


def _image_bytes(value: Any, where: str) -> bytes:
    """PNG bytes of a ``datasets`` image cell (a PIL image, ``{"bytes", "path"}``, or a file path)."""
    if isinstance(value, dict) and value.get("bytes"):
        return bytes(value["bytes"])
    if isinstance(value, dict) and value.get("path"):
        value = value["path"]
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_file():
            raise DataError(f"{where}: image file {path} does not exist")
        return path.read_bytes()
    if hasattr(value, "save"):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return buffer.getvalue()
    raise DataError(f"{where}: the image column holds a {type(value).__name__}, not an image")


class HFImages(Dataset):
    """``inner`` with each study's images taken from an ``hf:`` source, matched by study id."""

    def __init__(self, inner: Dataset, source: str, *, id_col: str, image_col: str, cache_root: Path) -> None:
        self.inner, self.source, self.id_col, self.image_col = inner, source, id_col, image_col
        # a wrapper is the dataset it wraps: per instance what the contract declares per class
        # a wrapper presents the wrapped dataset: the contract's class attributes, per instance
        self.name, self.description = inner.name, inner.description  # type: ignore[misc]
        self.splits, self.reference_policy = inner.splits, inner.reference_policy  # type: ignore[misc]
        self.data_root = inner.data_root
        self.folder = Path(cache_root) / sha256_text(f"{source}\x00{id_col}\x00{image_col}")[:16]
        self._images: dict[str, tuple[Path, ...]] | None = None

    def images(self) -> dict[str, tuple[Path, ...]]:
        """study id -> its images, written (once) as PNG files under the cache folder."""
        if self._images is not None:
            return self._images
        from rrg_bench import hf

        source = hf.parse(self.source)
        data = hf.load(source)
        hf.columns_of(data, source, self.id_col, self.image_col)
        found: dict[str, list[Path]] = {}
        for i, row in enumerate(data):
            sid = str(row[self.id_col])
            target = self.folder / sid / f"{len(found.get(sid, []))}.png"
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(_image_bytes(row[self.image_col], f"{source} row {i + 1} (study {sid})"))
                tmp.replace(target)
            found.setdefault(sid, []).append(target)
        self._images = {sid: tuple(paths) for sid, paths in found.items()}
        return self._images

    def images_sha256(self, studies: list[Study]) -> str:
        """Identity of the images these studies will be generated from (part of the run fingerprint)."""
        table = self.images()
        return sha256_json([[s.study_id, [sha256_file(p) for p in table.get(s.study_id, ())]] for s in studies])

    def studies(self, split: str) -> list[Study]:
        table = self.images()
        return [dataclasses.replace(s, image_paths=table.get(s.study_id, ()),
                                    frontal_image=(table.get(s.study_id) or (None,))[0])
                for s in self.inner.studies(split)]

    def verify(self) -> VerifyReport:
        return self.inner.verify()

    def identity(self, split: str) -> dict[str, Any]:
        return self.inner.identity(split)
