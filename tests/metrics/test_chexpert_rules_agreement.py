"""Agreement of the rule labeler with Open-i's human MeSH codes, pinned.

A labeler or phrase change that moves any count fails here: re-run
``python -m rrg_bench.metrics.chexpert_rules.agreement`` (train+val) and
``python -m rrg_bench.metrics.chexpert_rules.agreement --splits test`` (held-out check), then update
PINNED below and the two tables in ``metrics/chexpert_rules/CARD.md`` together.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rrg_bench.metrics.chexpert_rules.agreement import compute, markdown, mesh_labels, shared_dir
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

CARD = Path(__file__).resolve().parents[2] / "metrics" / "chexpert_rules" / "CARD.md"

#: label -> (MeSH support, labeler positives, true positives,
#:           positives with uncertain counted, true positives with uncertain counted)
PINNED_TRAIN_VAL = {
    "Enlarged Cardiomediastinum": (17, 18, 11, 172, 11),
    "Cardiomegaly": (223, 198, 196, 249, 220),
    "Lung Opacity": (333, 328, 321, 343, 330),
    "Lung Lesion": (111, 108, 100, 126, 102),
    "Edema": (25, 22, 18, 60, 25),
    "Consolidation": (20, 21, 18, 27, 20),
    "Pneumonia": (30, 31, 26, 77, 30),
    "Atelectasis": (195, 126, 123, 227, 192),
    "Pneumothorax": (13, 10, 10, 13, 12),
    "Pleural Effusion": (83, 72, 72, 125, 82),
    "Pleural Other": (34, 24, 24, 31, 27),
    "Fracture": (64, 63, 59, 79, 63),
    "Support Devices": (124, 132, 118, 134, 119),
    "No Finding": (814, 776, 755, 776, 755),
    "micro": (2086, 1929, 1851, 2439, 1988),
}
PINNED_STUDIES = 2320


@pytest.fixture(scope="module")
def shared() -> Path:
    root = shared_dir()
    if not (root / "data" / "iu_xray" / "indiana_reports.csv").exists():
        pytest.skip(f"IU X-Ray reports not found under {root} (set BENCH_SHARED)")
    return root


@pytest.fixture(scope="module")
def train_val(shared):
    return compute(shared)


def _counts(strict, lenient) -> dict[str, tuple[int, ...]]:
    return {k: (strict[k]["support"], strict[k]["predicted"], strict[k]["tp"],
                lenient[k]["predicted"], lenient[k]["tp"]) for k in strict}


def test_train_val_agreement_is_pinned(train_val):
    n, strict, lenient = train_val
    assert n == PINNED_STUDIES
    assert _counts(strict, lenient) == PINNED_TRAIN_VAL


def _card_table(title_prefix: str) -> str:
    text = CARD.read_text(encoding="utf-8")
    start = text.index(title_prefix)
    block = text[start:].split("\n\n", 2)
    return "\n\n".join(block[:2]).strip()


def test_card_shows_the_computed_train_val_table(train_val):
    assert _card_table("IU X-Ray R2Gen train+val,") == markdown(*train_val).strip()


def test_card_shows_the_computed_held_out_table(shared):
    n, strict, lenient = compute(shared, ("test",))
    assert _card_table("IU X-Ray R2Gen test,") == markdown(n, strict, lenient, ("test",)).strip()


def test_card_never_calls_it_chexbert():
    text = CARD.read_text(encoding="utf-8")
    assert "chexpert_rules_f1[labels=14,avg=micro,uncertain=positive]" in text
    assert re.search(r"not CheXbert", text)


# ---- the MeSH mapping ---------------------------------------------------------------------------

def _names(row) -> set[str]:
    return {CHEXPERT_LABELS[j] for j in np.flatnonzero(row)}


@pytest.mark.parametrize("mesh,expected", [
    ("normal", {"No Finding"}),
    ("Cardiomegaly/mild", {"Cardiomegaly"}),
    ("Cardiac Shadow/enlarged/severe", {"Cardiomegaly"}),
    ("Cardiac Shadow/borderline", set()),
    ("Opacity/lung/base/left", {"Lung Opacity"}),
    ("Opacity/lung/upper lobe/right/round", {"Lung Opacity", "Lung Lesion"}),
    ("Density/lung/base/left", set()),
    ("Density/lung/base/left/round", {"Lung Lesion"}),
    ("Thickening/pleura/apex/left", {"Pleural Other"}),
    ("Thickening/bronchovascular", set()),
    ("Calcified Granuloma/lung/base/right", set()),
    ("Catheters, Indwelling/right", {"Support Devices", "No Finding"}),
    ("Catheters, Indwelling/right;Cardiomegaly", {"Support Devices", "Cardiomegaly"}),
    ("Hydropneumothorax/right", {"Pneumothorax", "Pleural Effusion"}),
    ("Mediastinum/prominent/mild", {"Enlarged Cardiomediastinum"}),
    ("Fractures, Bone/ribs/left/healed", {"Fracture"}),
])
def test_mesh_mapping(mesh, expected):
    assert _names(mesh_labels(mesh)) == expected


def test_not_indexed_studies_are_left_out():
    assert mesh_labels("No Indexing") is None
    assert mesh_labels("") is None
