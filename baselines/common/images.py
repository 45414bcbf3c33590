"""Reading a study's images from the user's data root, for every image generator and trainer.

One place decides which file of a study is "the image" (the manifest's frontal view, or the first
listed file), how odd pixel formats become 8-bit grayscale/RGB, what the user is told when a file
is missing or broken (a ``DataError`` naming the study and the path, never a PIL traceback in the
middle of a run), and the resize + normalisation pretrained ViT/DINOv3/Swin encoders expect — so
training, feature caches and generation all see exactly the same pixels.

torch is imported only by the functions that return tensors: the text and retrieval baselines read
images through this module and must not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from rrg_bench.api.types import Study
from rrg_bench.errors import DataError
from rrg_bench.hashing import sha256_file

if TYPE_CHECKING:
    import torch

    from rrg_bench.baselines.common.vision import ImageConfig

ImageChoice = Literal["frontal", "first"]
ImageMode = Literal["L", "RGB"]

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
}


def select_image(study: Study, which: ImageChoice = "frontal") -> Path:
    """The file of ``study`` to use: its manifest frontal view, or its first listed image.

    ``frontal`` never guesses from the file index (IU X-Ray ``0.png`` is sometimes lateral):
    a study whose manifest names no frontal view is an error that points to ``image=first``.
    """
    if which == "frontal":
        if study.frontal_image is None:
            raise DataError(
                f"study {study.study_id}: the manifest names no frontal image "
                f"({len(study.image_paths)} image(s) listed); use image=first to take the first listed image"
            )
        return Path(study.frontal_image)
    if which == "first":
        if not study.image_paths:
            raise DataError(f"study {study.study_id}: the manifest lists no image for this study")
        return Path(study.image_paths[0])
    raise ValueError(f"unknown image choice {which!r}; expected 'frontal' or 'first'")


def _where(path: Path, study_id: str | None) -> str:
    return f"study {study_id}: image {path}" if study_id else f"image {path}"


def _missing(path: Path, study_id: str | None) -> DataError:
    return DataError(
        f"{_where(path, study_id)} not found; check that --data-root (or BENCH_DATA_ROOT) points at "
        f"the dataset's image folder (`bench data verify` lists what is missing)"
    )


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float images (DICOM-derived PNGs) scaled to 8 bits instead of clipped.

    PIL's own ``convert("L")`` clips 16-bit values at 255, which turns most X-rays white.
    ``I;16*`` uses its full range (divide by 257); 32-bit int/float images have no fixed range
    and are min-max scaled per image.
    """
    if image.mode.startswith("I;16"):
        array = np.asarray(image, dtype=np.float64) / 257.0
    elif image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        array = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
    else:
        return image
    return Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")


def load_image(path: Path | str, mode: ImageMode = "L", study_id: str | None = None) -> Image.Image:
    """Decode ``path`` fully (so truncated files fail here) and convert to ``mode``."""
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = _to_8bit(opened)
            return image.convert(mode)
    except FileNotFoundError:
        raise _missing(path, study_id) from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"{_where(path, study_id)} cannot be read ({type(exc).__name__}: {exc}); "
            f"replace it with a valid PNG/JPEG from the dataset"
        ) from None


def load_study_image(study: Study, which: ImageChoice = "frontal", mode: ImageMode = "L") -> Image.Image:
    """``study``'s chosen image (see ``select_image``) as 8-bit grayscale or RGB."""
    return load_image(select_image(study, which), mode=mode, study_id=study.study_id)


def file_sha256(path: Path | str, study_id: str | None = None) -> str:
    """sha256 of the file's bytes: the identity of an image for caches and index hashes."""
    path = Path(path)
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise _missing(path, study_id) from None
    except OSError as exc:
        raise DataError(f"{_where(path, study_id)} cannot be read ({type(exc).__name__}: {exc})") from None


def to_float_array(image: Image.Image, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Pixels as float32 in [0, 1], shape [H, W] (grayscale) or [H, W, C], optionally resized.

    ``size`` is ``(width, height)`` or one side of a square; resizing is bilinear with PIL's
    antialiasing, the same filter torchvision uses on PIL images.
    """
    if size is not None:
        width, height = (size, size) if isinstance(size, int) else size
        image = image.resize((width, height), resample=Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


# ---- encoder input: RGB, square resize, ToTensor, mean/std ----

def normalise(rgb: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """An RGB PIL image (already at its final size) -> normalised (3, H, W) float32 tensor."""
    import torch

    array = np.asarray(rgb, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (tensor - mean_t) / std_t


def pixel_values(path: Path, image: ImageConfig, study_id: str | None = None) -> torch.Tensor:
    """(3, size, size) float32, normalised per ``image``. Grayscale radiographs are replicated to RGB."""
    rgb = load_image(path, mode="RGB", study_id=study_id).resize((image.size, image.size), RESAMPLE[image.resample])
    return normalise(rgb, image.mean, image.std)


def pixel_batch(paths: Sequence[Path], image: ImageConfig,
                study_ids: Sequence[str | None] | None = None) -> torch.Tensor:
    """(B, 3, size, size) for ``paths``; ``study_ids`` name the study in a missing-file error."""
    import torch

    ids = study_ids if study_ids is not None else [None] * len(paths)
    return torch.stack([pixel_values(p, image, sid) for p, sid in zip(paths, ids)])
