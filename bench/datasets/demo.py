"""``demo``: a small synthetic chest X-ray dataset we wrote ourselves, shipped in the wheel.

Why it exists: the first ``bench run`` on a fresh machine must work with no download and no
data-use agreement. 60 studies (36 train / 12 val / 12 test), findings-style reports
composed from templates, and two drawn grayscale PNGs per study (frontal, lateral) whose
shapes follow the report: a wider heart for cardiomegaly, a bright meniscus at the
costophrenic angle for an effusion, a dark band without lung markings for a pneumothorax, a
bright patch for consolidation, a bright line for atelectasis, thin lines and a box for
devices. Image-based retrieval therefore beats a random report, which is what a smoke test
of an image model needs.

``draw_xray(text, seed, view)`` draws an image from any report text, so tests can put
stand-in images at the paths of a real dataset (IU X-Ray ships no images).

Determinism: only stdlib ``random`` (Mersenne Twister), numpy's PCG64 ``random()`` stream and
elementwise +, -, *, /, sqrt (correctly rounded in IEEE 754) are used; PNGs are written by
Pillow with fixed settings and no metadata. ``build_demo`` reproduces the shipped files byte
for byte (a test checks it).
"""

from __future__ import annotations

import functools
import io
import json
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from rrg_bench.api.dataset import Dataset, VerifyReport
from rrg_bench.errors import DataError
from rrg_bench.manifests import (
    Manifest,
    atomic_write,
    find_dataset_root,
    jsonl_bytes,
    load_manifest,
    mismatch_error,
    sha256_bytes,
    sha256_text,
    write_manifest_dir,
)
from rrg_bench.api.types import Study

if TYPE_CHECKING:
    import numpy as np

NAME = "demo"
SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 36, "val": 12, "test": 12}
IMAGE_SIZE = 128
VIEWS = ("frontal", "lateral")
REPORTS_FILE = "reports.jsonl"
#: the shipped data root, relative to the manifest folder
SHIPPED_DATA = "data"

HOW_TO_GET = (
    "The demo data ships inside rrg-bench (data_manifests/demo/data). If it is missing or modified, "
    "reinstall rrg-bench; a data root containing demo/ or reports.jsonl + images/ overrides it."
)

# ----------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Findings:
    """What a report says is present, as the image drawer needs it.

    Sides are the patient's ("left" is drawn on the image's right, as on a PA film).
    """

    cardiomegaly: bool = False
    effusion: frozenset[str] = frozenset()
    pneumothorax: frozenset[str] = frozenset()
    consolidation: frozenset[str] = frozenset()
    atelectasis: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()  # "et_tube", "pacemaker", "central_line"

    def labels(self) -> list[str]:
        """Flat, sorted label names, e.g. ``["cardiomegaly", "effusion_left"]``."""
        out = ["cardiomegaly"] if self.cardiomegaly else []
        for name in ("effusion", "pneumothorax", "consolidation", "atelectasis"):
            out += [f"{name}_{side}" for side in sorted(getattr(self, name))]
        out += [f"device_{d}" for d in sorted(self.devices)]
        return sorted(out) or ["normal"]


_NEGATION = re.compile(r"\b(no|not|without|negative for|free of|resolved|removed|removal of|absence of)\b")
_PATTERNS = {
    "cardiomegaly": re.compile(r"cardiomegaly|(heart|cardiac silhouette)[^.]*\benlarged|enlarged (heart|cardiac)"),
    "effusion": re.compile(r"effusion"),
    "pneumothorax": re.compile(r"pneumothora"),
    "consolidation": re.compile(r"consolidation|airspace (opacity|disease)|opacit|infiltrate|pneumonia"),
    "atelectasis": re.compile(r"atelecta"),
    "et_tube": re.compile(r"endotracheal|\bet tube|\bett\b"),
    "pacemaker": re.compile(r"pacemaker|pacer|defibrillator|\baicd\b|\bicd\b"),
    "central_line": re.compile(r"central (venous )?(line|catheter)|\bpicc\b|jugular|catheter"),
}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"[.!?;\n]+", text.lower()) if s.strip()]


def _sides(sentence: str, seed: int) -> frozenset[str]:
    if re.search(r"\b(bilateral|bibasilar|bibasal|both)\b", sentence):
        return frozenset({"left", "right"})
    sides = {s for s in ("left", "right") if re.search(rf"\b{s}\b", sentence)}
    return frozenset(sides) if sides else frozenset({("left", "right")[seed % 2]})


def parse_findings(text: str, seed: int = 0) -> Findings:
    """Keyword + negation reading of a report (a mention after "no"/"without"… is negative).

    Meant for drawing stand-in images, not as a labeler. A finding without a side gets the
    side ``seed`` picks.
    """
    found: dict[str, Any] = {"cardiomegaly": False, "devices": set()}
    for key in ("effusion", "pneumothorax", "consolidation", "atelectasis"):
        found[key] = set()
    for sentence in _sentences(text):
        for key, pattern in _PATTERNS.items():
            match = pattern.search(sentence)
            if match is None:
                continue
            negation = _NEGATION.search(sentence)
            if negation is not None and negation.start() < match.start():
                continue
            if key == "cardiomegaly":
                found[key] = True
            elif key in ("et_tube", "pacemaker", "central_line"):
                found["devices"].add(key)
            else:
                found[key] |= _sides(sentence, seed)
    return Findings(
        cardiomegaly=found["cardiomegaly"],
        effusion=frozenset(found["effusion"]),
        pneumothorax=frozenset(found["pneumothorax"]),
        consolidation=frozenset(found["consolidation"]),
        atelectasis=frozenset(found["atelectasis"]),
        devices=frozenset(found["devices"]),
    )


# ----------------------------------------------------------------------------- drawing


class _Canvas:
    """A float image in [0, 255] on unit coordinates; every operation is elementwise."""

    def __init__(self, size: int, value: float) -> None:
        import numpy as np

        self.np = np
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        self.y, self.x = np.meshgrid(centres, centres, indexing="ij")
        self.px = 1.0 / size
        self.img = np.full((size, size), float(value))

    def radius(self, cx: float, cy: float, rx: float, ry: float) -> "np.ndarray":
        return self.np.sqrt(((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2)

    def ellipse_mask(self, cx: float, cy: float, rx: float, ry: float, soft: float = 0.04) -> "np.ndarray":
        """1 inside, 0 outside, a linear ramp of relative width ``soft`` at the rim."""
        return self.np.clip((1.0 - self.radius(cx, cy, rx, ry)) / soft, 0.0, 1.0)

    def paint(self, mask: "np.ndarray", value: float) -> None:
        self.img = self.img * (1.0 - mask) + value * mask

    def segment_mask(self, x0: float, y0: float, x1: float, y1: float, width: float) -> "np.ndarray":
        np = self.np
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((self.x - x0) * dx + (self.y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist = np.sqrt((self.x - (x0 + t * dx)) ** 2 + (self.y - (y0 + t * dy)) ** 2)
        return np.clip((width - dist) / self.px + 0.5, 0.0, 1.0)

    def box_mask(self, x0: float, y0: float, x1: float, y1: float) -> "np.ndarray":
        inside = (self.x >= x0) & (self.x <= x1) & (self.y >= y0) & (self.y <= y1)
        return inside.astype(self.np.float64)


def _smooth_noise(rng: "np.random.Generator", size: int, cells: int) -> "np.ndarray":
    """Uniform noise on a ``cells``×``cells`` grid, bilinearly upsampled: blotchy lung texture in [-1, 1]."""
    import numpy as np

    grid = rng.random((cells + 1, cells + 1)) * 2.0 - 1.0
    pos = (np.arange(size, dtype=np.float64) + 0.5) / size * cells
    i0 = np.minimum(pos.astype(np.int64), cells - 1)
    f = pos - i0
    rows = grid[i0, :] * (1.0 - f)[:, None] + grid[i0 + 1, :] * f[:, None]
    return rows[:, i0] * (1.0 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def draw_xray(text: str, seed: int, view: str = "frontal", size: int = IMAGE_SIZE) -> "np.ndarray":
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


def _draw_frontal(c: _Canvas, f: Findings, jitter: "np.ndarray") -> None:
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


def _draw_lateral(c: _Canvas, f: Findings, jitter: "np.ndarray") -> None:
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


def png_bytes(pixels: "np.ndarray") -> bytes:
    """8-bit grayscale PNG, fixed compression, no metadata chunks (no time, no text, no dpi)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def write_synthetic_images(text: str, seed: int, frontal: Path, others: Iterable[Path] = (), size: int = IMAGE_SIZE) -> None:
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


# ----------------------------------------------------------------------------- reports

_TEMPLATES = {
    "heart_normal": ["The heart size is normal.", "The cardiomediastinal silhouette is within normal limits."],
    "cardiomegaly": ["The heart is enlarged.", "There is moderate cardiomegaly."],
    "lungs_clear": ["The lungs are clear.", "The lungs are clear without focal consolidation."],
    "consolidation": ["There is focal consolidation in the {side} lower lobe.", "Patchy airspace opacity at the {side} lung base."],
    "atelectasis": ["Mild {side} basilar atelectasis.", "Linear atelectasis at the {side} base."],
    "atelectasis_both": ["Mild bibasilar atelectasis."],
    "pleura_normal": ["No pleural effusion or pneumothorax.", "There is no pleural effusion or pneumothorax."],
    "effusion": ["Small {side} pleural effusion.", "There is a {side} pleural effusion with blunting of the costophrenic angle."],
    "pneumothorax": ["There is a small {side} apical pneumothorax.", "A {side} pneumothorax is present."],
    "no_pneumothorax": ["No pneumothorax."],
    "no_effusion": ["No pleural effusion."],
    "et_tube": ["An endotracheal tube terminates 4 cm above the carina.", "The endotracheal tube is in standard position."],
    "pacemaker": ["A left chest wall pacemaker is present with leads in the right atrium and right ventricle."],
    "central_line": ["A right internal jugular central venous catheter terminates in the superior vena cava."],
    "bones": ["No acute osseous abnormality."],
}
_FINDING_WEIGHTS = [("cardiomegaly", 3), ("effusion", 3), ("pneumothorax", 2), ("consolidation", 3),
                    ("atelectasis", 2), ("device", 2)]


def _sample_findings(rng: random.Random) -> Findings:
    if rng.random() < 0.3:
        return Findings()
    kinds = [k for k, _ in _FINDING_WEIGHTS]
    weights = [w for _, w in _FINDING_WEIGHTS]
    chosen: set[str] = set()
    for _ in range(1 if rng.random() < 0.6 else 2):
        chosen.add(rng.choices(kinds, weights)[0])
    side = lambda: frozenset({rng.choice(("left", "right"))})  # noqa: E731
    return Findings(
        cardiomegaly="cardiomegaly" in chosen,
        effusion=side() if "effusion" in chosen else frozenset(),
        pneumothorax=side() if "pneumothorax" in chosen else frozenset(),
        consolidation=side() if "consolidation" in chosen else frozenset(),
        atelectasis=(frozenset({"left", "right"}) if rng.random() < 0.3 else side()) if "atelectasis" in chosen else frozenset(),
        devices=frozenset({rng.choice(("et_tube", "pacemaker", "central_line"))}) if "device" in chosen else frozenset(),
    )


def compose_report(findings: Findings, rng: random.Random) -> str:
    """A findings paragraph for ``findings`` from the templates above."""
    pick = lambda key, **kw: rng.choice(_TEMPLATES[key]).format(**kw)  # noqa: E731
    one = lambda sides: next(iter(sides))  # noqa: E731
    parts = [pick(d) for d in sorted(findings.devices)]
    parts.append(pick("cardiomegaly") if findings.cardiomegaly else pick("heart_normal"))
    if findings.consolidation:
        parts.append(pick("consolidation", side=one(findings.consolidation)))
    if findings.atelectasis:
        both = len(findings.atelectasis) == 2
        parts.append(pick("atelectasis_both") if both else pick("atelectasis", side=one(findings.atelectasis)))
    if not findings.consolidation and not findings.atelectasis:
        parts.append(pick("lungs_clear"))
    if findings.effusion:
        parts.append(pick("effusion", side=one(findings.effusion)))
    if findings.pneumothorax:
        parts.append(pick("pneumothorax", side=one(findings.pneumothorax)))
    if findings.effusion and not findings.pneumothorax:
        parts.append(pick("no_pneumothorax"))
    elif findings.pneumothorax and not findings.effusion:
        parts.append(pick("no_effusion"))
    elif not findings.effusion and not findings.pneumothorax:
        parts.append(pick("pleura_normal"))
    if rng.random() < 0.5:
        parts.append(pick("bones"))
    return " ".join(parts)


# ----------------------------------------------------------------------------- builder


def build_demo(out_dir: Path, seed: int = 0) -> Path:
    """Write the demo dataset (manifest.yaml, <split>.jsonl, data/reports.jsonl, data/images/*.png).

    Maintainer tool: ``build_demo(Path("data_manifests/demo"))`` regenerates the shipped copy.
    """
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    rows_by_split: dict[str, list[dict[str, Any]]] = {}
    reports: list[dict[str, str]] = []
    images: dict[str, bytes] = {}
    for split in SPLITS:
        rows = []
        for n in range(1, SPLIT_SIZES[split] + 1):
            sid = f"demo-{split}-{n:03d}"
            text = compose_report(_sample_findings(rng), rng)
            study_seed = seed_for(sid, seed)
            rels = [f"images/{sid}_{view}.png" for view in VIEWS]
            for k, (view, rel) in enumerate(zip(VIEWS, rels)):
                images[rel] = png_bytes(draw_xray(text, study_seed + 7919 * k, view))
            reports.append({"study_id": sid, "findings": text})
            rows.append({
                "study_id": sid,
                "images": rels,
                "frontal": rels[0],
                "labels": parse_findings(text, study_seed).labels(),
                "reference_sha256": sha256_text(text),
                "image_sha256": [sha256_bytes(images[r]) for r in rels],
            })
        rows_by_split[split] = rows
    data_dir = out_dir / SHIPPED_DATA
    atomic_write(data_dir / REPORTS_FILE, jsonl_bytes(reports))
    for rel, data in images.items():
        atomic_write(data_dir / rel, data)
    header = {
        "name": NAME,
        "version": "1",
        "description": (
            "Synthetic chest X-ray studies written by rrg-bench: template findings reports and drawn "
            "128x128 grayscale frontal + lateral images whose shapes follow the findings. For smoke tests "
            "and first runs; numbers on it say nothing about clinical performance."
        ),
        "reference_policy": "findings",
        "reference_policy_detail": "the 'findings' text of data/reports.jsonl exactly as stored",
        "view_policy": "two images per study, images/<id>_frontal.png (frontal) and images/<id>_lateral.png",
        "sources": [{"file": f"{SHIPPED_DATA}/{REPORTS_FILE}", "sha256": sha256_bytes(jsonl_bytes(reports)),
                     "role": "reference text", "origin": f"bench.datasets.demo.build_demo(seed={seed})"}],
        "exclusions": {},
        "builder": {"function": "bench.datasets.demo.build_demo", "seed": seed},
    }
    return write_manifest_dir(out_dir, header, rows_by_split)


# ----------------------------------------------------------------------------- dataset


def shipped_dir() -> Path:
    """The shipped demo folder (manifest + data) as a real path."""
    return Path(str(resources.files("rrg_bench.data_manifests").joinpath("demo")))


@functools.lru_cache(maxsize=1)
def _manifest() -> Manifest:
    return load_manifest(NAME)


class DemoDataset(Dataset):
    """The shipped synthetic dataset; works with no data root at all."""

    name: ClassVar[str] = NAME
    description: ClassVar[str] = "synthetic demo: 36/12/12 template reports with drawn images (ships with rrg-bench)"
    splits: ClassVar[tuple[str, ...]] = SPLITS
    reference_policy: ClassVar[str] = "findings"

    def root(self) -> Path:
        """``<data root>/demo`` or a data root that is itself a demo copy; else the shipped copy."""
        found = find_dataset_root(self.data_root, ("demo", f"demo/{SHIPPED_DATA}"), (REPORTS_FILE,))
        return found if found is not None else shipped_dir() / SHIPPED_DATA

    @functools.cached_property
    def _texts(self) -> dict[str, str]:
        path = self.root() / REPORTS_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{NAME}: cannot read {path} ({type(exc).__name__}). {HOW_TO_GET}") from None
        texts: dict[str, str] = {}
        for lineno, line in enumerate(lines, start=1):
            try:
                obj = json.loads(line)
                texts[obj["study_id"]] = obj["findings"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}:{lineno}: expected {{\"study_id\": ..., \"findings\": ...}}") from None
        return texts

    def _problems(self, split: str) -> list[str]:
        problems = []
        for row in _manifest().rows(split):
            text = self._texts.get(row["study_id"])
            if text is None:
                problems.append(f"{row['study_id']}: missing from {REPORTS_FILE}")
            elif sha256_text(text) != row["reference_sha256"]:
                problems.append(f"{row['study_id']}: reference sha256 differs")
        return problems

    def studies(self, split: str) -> list[Study]:
        rows = _manifest().rows(split)
        problems = self._problems(split)
        if problems:
            raise mismatch_error(NAME, split, len(rows), problems, f"text from {self.root() / REPORTS_FILE}", HOW_TO_GET)
        root = self.root()
        return [
            Study(
                study_id=row["study_id"],
                split=split,
                reference=self._texts[row["study_id"]],
                reference_sha256=row["reference_sha256"],
                image_paths=tuple(root / p for p in row["images"]),
                frontal_image=root / row["frontal"],
                meta={"labels": tuple(row["labels"])},
            )
            for row in rows
        ]

    def verify(self) -> VerifyReport:
        root = self.root()
        report = VerifyReport(dataset=NAME, data_root=root, ok=False, how_to_get=HOW_TO_GET)
        try:
            self._texts
        except DataError as exc:
            report.missing.append(str(exc))
            return report
        report.present.append(f"reference text: {root / REPORTS_FILE}")
        for split in SPLITS:
            rows = _manifest().rows(split)
            problems = self._problems(split)
            report.mismatched += [f"{split}/{p}" for p in problems]
            absent = [p for row in rows for p in row["images"] if not (root / p).is_file()]
            changed = [
                p for row in rows for p, digest in zip(row["images"], row["image_sha256"])
                if (root / p).is_file() and sha256_bytes((root / p).read_bytes()) != digest
            ]
            report.mismatched += [f"{split}/{p}: image sha256 differs" for p in changed]
            report.missing += [f"{split}/{p}: image missing" for p in absent]
            if not problems:
                report.present.append(f"{split}: {len(rows)} references match the manifest")
        report.ok = not report.mismatched and not report.missing
        return report

    def identity(self, split: str) -> dict[str, Any]:
        return _manifest().identity(split)
