"""Stand-in radiographs drawn from report text: the demo's images, and test images at real paths.

Why drawn and not random: shapes follow the report — a wider heart for cardiomegaly, a bright
meniscus at the costophrenic angle for an effusion, a dark band without lung markings for a
pneumothorax, a bright patch for consolidation, a bright line for atelectasis, thin lines and a
box for devices — so image-based retrieval beats a random report, which is what a smoke test of
an image model needs. ``draw_xray(text, seed, view)`` draws from any text, so tests can put
stand-in images at the paths of a real dataset (IU X-Ray ships no images).

Determinism: only numpy's PCG64 ``random()`` stream and elementwise +, -, *, /, sqrt (correctly
rounded in IEEE 754) are used; PNGs are written by Pillow with fixed settings and no metadata.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rrg_bench.datasets.demo.findings import Findings, parse_findings
from rrg_bench.manifests import sha256_text

if TYPE_CHECKING:
    import numpy as np

IMAGE_SIZE = 128
VIEWS = ("frontal", "lateral")


class _Canvas:
    """A float image in [0, 255] on unit coordinates; every operation is elementwise."""

    def __init__(self, size: int, value: float) -> None:
        import numpy as np

        self.np = np
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        self.y, self.x = np.meshgrid(centres, centres, indexing="ij")
        self.px = 1.0 / size
        self.img = np.full((size, size), float(value))

    def radius(self, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return self.np.sqrt(((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2)

    def ellipse_mask(self, cx: float, cy: float, rx: float, ry: float, soft: float = 0.04) -> np.ndarray:
        """1 inside, 0 outside, a linear ramp of relative width ``soft`` at the rim."""
        return self.np.clip((1.0 - self.radius(cx, cy, rx, ry)) / soft, 0.0, 1.0)

    def paint(self, mask: np.ndarray, value: float) -> None:
        self.img = self.img * (1.0 - mask) + value * mask

    def segment_mask(self, x0: float, y0: float, x1: float, y1: float, width: float) -> np.ndarray:
        dx, dy = x1 - x0, y1 - y0
        t = self.np.clip(((self.x - x0) * dx + (self.y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist = self.np.sqrt((self.x - (x0 + t * dx)) ** 2 + (self.y - (y0 + t * dy)) ** 2)
        return self.np.clip((width - dist) / self.px + 0.5, 0.0, 1.0)

    def box_mask(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        inside = (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)
        return inside.astype(self.np.float64)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Uniform noise on a ``cells``×``cells`` grid, bilinearly upsampled: blotchy lung texture in [-1, 1]."""
    import numpy as np

    grid = rng.random((cells + 1, cells + 1)) * 2.0 - 1.0
    pos = (np.arange(size, dtype=np.float64) + 0.5) / size * cells
    i0 = np.minimum(pos.astype(np.int64), cells - 1)
    f = pos - i0
    rows = grid[i0, :] * (1.0 - f)[:, None] + grid[i0 + 1, :] * f[:, None]
    return rows[:, i0] * (1.0 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def draw_xray(text: str, seed: int, view: str = "frontal", size: int = IMAGE_SIZE) -> np.ndarray:
    """A ``size``×``size`` uint8 grayscale stand-in radiograph for ``text`` (``view``: frontal|lateral)."""
    import numpy as np

    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    findings = parse_findings(text, seed)
    rng = np.random.Generator(np.random.PCG64(seed))
    jitter = rng.random(4) * 2.0 - 1.0  # small anatomical variation between studies
    canvas = _Canvas(size, 16.0 + 4.0 * jitter[0])
    if view == "frontal":
        _draw_frontal(canvas, findings, jitter)
    else:
        _draw_lateral(canvas, findings, jitter)
    # blotchy texture plus finer mottle; both smooth, so the PNGs stay small (~5 kB)
    texture = _smooth_noise(rng, size, 8) * 6.0 + _smooth_noise(rng, size, 32) * 3.0
    return np.clip(np.floor(canvas.img + texture + 0.5), 0, 255).astype(np.uint8)


def _draw_frontal(c: _Canvas, f: Findings, jitter: np.ndarray) -> None:
    np = c.np
    scale = 1.0 + 0.03 * jitter[1]
    c.paint(c.ellipse_mask(0.5, 0.56, 0.46 * scale, 0.50, soft=0.06), 92.0 + 5.0 * jitter[2])
    lungs = {}
    for side, cx in (("right", 0.31), ("left", 0.69)):  # patient's right on the image's left
        lungs[side] = (cx, 0.46, 0.15 * scale, 0.30 * scale)
        c.paint(c.ellipse_mask(*lungs[side]), 38.0)
    c.paint(c.box_mask(0.465, 0.04, 0.535, 1.0), 150.0)  # mediastinum and spine
    heart_rx = 0.23 if f.cardiomegaly else 0.14
    c.paint(c.ellipse_mask(0.55, 0.66, heart_rx * scale, 0.13 * scale), 176.0)
    for side, (cx, cy, rx, ry) in lungs.items():
        lung = c.ellipse_mask(cx, cy, rx, ry)
        lateral_edge = cx - rx if side == "right" else cx + rx
        if side in f.consolidation:
            c.paint(c.ellipse_mask(cx, 0.55, 0.085, 0.085, soft=0.3) * lung, 132.0)
        if side in f.atelectasis:
            c.paint(c.segment_mask(cx - 0.09, 0.66, cx + 0.09, 0.655, 0.012) * lung, 125.0)
        if side in f.effusion:  # fluid climbs laterally: the meniscus is higher at the lateral edge
            t = np.clip(np.abs(c.x - lateral_edge) / (2.0 * rx), 0.0, 1.0)
            level = 0.58 + 0.14 * t
            c.paint(np.clip((c.y - level) / 0.02, 0.0, 1.0) * lung, 150.0)
        if side in f.pneumothorax:  # lucent rim without lung markings, edged by the pleural line
            r = c.radius(cx, cy, rx, ry)
            upper = np.clip((0.62 - c.y) / 0.03, 0.0, 1.0)
            c.paint(np.clip((r - 0.74) / 0.03, 0.0, 1.0) * lung * upper, 4.0)
            c.paint(np.clip(1.0 - np.abs(r - 0.72) / 0.025, 0.0, 1.0) * lung * upper, 95.0)
    if "et_tube" in f.devices:
        c.paint(c.segment_mask(0.5, 0.0, 0.5, 0.34, 0.008), 235.0)
    if "pacemaker" in f.devices:
        c.paint(c.box_mask(0.74, 0.12, 0.84, 0.18), 245.0)
        c.paint(c.segment_mask(0.76, 0.17, 0.55, 0.62, 0.005), 230.0)
    if "central_line" in f.devices:
        c.paint(c.segment_mask(0.34, 0.04, 0.47, 0.36, 0.006), 225.0)


def _draw_lateral(c: _Canvas, f: Findings, jitter: np.ndarray) -> None:
    np = c.np
    scale = 1.0 + 0.03 * jitter[1]
    c.paint(c.ellipse_mask(0.5, 0.56, 0.40 * scale, 0.50, soft=0.06), 92.0 + 5.0 * jitter[2])
    cx, cy, rx, ry = 0.52, 0.46, 0.30 * scale, 0.33 * scale
    lung = c.ellipse_mask(cx, cy, rx, ry)
    c.paint(lung, 42.0)
    for k in range(6):  # vertebral bodies, posterior
        c.paint(c.box_mask(0.80, 0.18 + 0.13 * k, 0.88, 0.28 + 0.13 * k), 155.0)
    c.paint(c.ellipse_mask(0.38, 0.63, (0.19 if f.cardiomegaly else 0.12) * scale, 0.14 * scale), 168.0)
    if f.consolidation:
        c.paint(c.ellipse_mask(0.56, 0.56, 0.08, 0.08, soft=0.3) * lung, 128.0)
    if f.atelectasis:
        c.paint(c.segment_mask(0.45, 0.68, 0.70, 0.66, 0.012) * lung, 122.0)
    if f.effusion:  # the posterior costophrenic sulcus fills first
        level = 0.68 - 0.12 * np.clip((c.x - 0.5) / 0.3, 0.0, 1.0)
        posterior = np.clip((c.x - 0.5) / 0.03, 0.0, 1.0)
        c.paint(np.clip((c.y - level) / 0.02, 0.0, 1.0) * lung * posterior, 150.0)
    if f.pneumothorax:
        c.paint(np.clip((0.26 - c.y) / 0.03, 0.0, 1.0) * lung, 5.0)
    if "et_tube" in f.devices:
        c.paint(c.segment_mask(0.40, 0.0, 0.42, 0.30, 0.008), 235.0)
    if "pacemaker" in f.devices:
        c.paint(c.box_mask(0.26, 0.12, 0.34, 0.17), 245.0)
    if "central_line" in f.devices:
        c.paint(c.segment_mask(0.45, 0.04, 0.47, 0.36, 0.006), 225.0)


def png_bytes(pixels: np.ndarray) -> bytes:
    """8-bit grayscale PNG, fixed compression, no metadata chunks (no time, no text, no dpi)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def write_synthetic_images(text: str, seed: int, frontal: Path, others: Iterable[Path] = (),
                           size: int = IMAGE_SIZE) -> None:
    """Write a drawn frontal image at ``frontal`` and lateral images at ``others`` for ``text``.

    For stand-in images at a real dataset's paths, e.g. IU X-Ray's ``images/<id>/<k>.png``.
    """
    frontal.parent.mkdir(parents=True, exist_ok=True)
    frontal.write_bytes(png_bytes(draw_xray(text, seed, "frontal", size)))
    for n, path in enumerate(others):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(draw_xray(text, seed + 7919 * (n + 1), "lateral", size)))


def seed_for(study_id: str, base: int = 0) -> int:
    """A per-study seed from the id (stable across processes, unlike ``hash``)."""
    return int(sha256_text(f"{base}:{study_id}")[:16], 16)
