"""What a report says is present, read with keywords and negations, as the demo's image drawer needs it.

Why not a labeler: the drawer only has to put the findings a report mentions where a model can
see them, so a keyword reading with "no"/"without" negation is enough — and exactly repeatable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


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
