"""The 14 CheXpert observations and the class codes every labeler in this package emits.

One definition shared by the CheXbert labeler and the offline rule labeler, so their label
matrices are interchangeable inputs to the same F1 code (while their scores keep separate
metric ids). Order and codes follow f1chexbert 0.0.2 / CheXbert.
"""

from __future__ import annotations

#: f1chexbert's ``target_names`` order
CHEXPERT_LABELS: tuple[str, ...] = (
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
    "No Finding",
)

#: the CheXpert competition five used for "5-label" F1, in 14-label order
CHEXPERT_5: tuple[str, ...] = ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")
CHEXPERT_5_INDICES: tuple[int, ...] = tuple(CHEXPERT_LABELS.index(n) for n in CHEXPERT_LABELS if n in CHEXPERT_5)

NO_FINDING = CHEXPERT_LABELS.index("No Finding")

# CheXbert class codes (constants.py CLASS_MAPPING)
BLANK, POSITIVE, NEGATIVE, UNCERTAIN = 0, 1, 2, 3
