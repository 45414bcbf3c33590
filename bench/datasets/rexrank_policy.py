"""ReXrank's two reference policies, shared by its IU X-Ray, MIMIC-CXR and CheXpert Plus sets.

Why a module of its own: ReXrank scores every dataset against text built the same way, and a
reference policy must be one named, testable function rather than three similar f-strings.

* ``findings_impression`` — what ReXrank's published evaluation script
  (github.com/rajpurkarlab/ReXrank ``example_files/evaluation_script.md``, ``split_json``)
  writes into the ground-truth CSV it feeds to CXR-Report-Metric:
  ``f"Findings: {section_findings} Impression: {section_impression}"``, where a missing
  section (JSON ``NaN``/``null``, a pandas NA cell) becomes the literal word ``None``. The
  section texts are used exactly as stored, without stripping. (The data files' own
  ``report`` field is the same string for IU X-Ray and MIMIC-CXR, but not for CheXpert Plus,
  where it strips the sections and writes ``None.``; the script, not that field, is the
  evaluation convention.)
* ``findings`` — the ``section_findings`` text alone, as stored (ReXrank's findings-only
  track).

One manifest serves both policies: its rows carry a hash per policy (``HASH_KEYS``:
``reference_sha256`` and ``findings_sha256``), and ``rrg_bench.manifests.identity_block``
builds the record's dataset block from the key of the policy in use.
"""

from __future__ import annotations

import math
from typing import Any

FINDINGS_IMPRESSION = "findings_impression"
FINDINGS = "findings"

#: the manifest row key holding the sha256 of each policy's text
HASH_KEYS: dict[str, str] = {FINDINGS_IMPRESSION: "reference_sha256", FINDINGS: "findings_sha256"}

POLICY_DETAIL: dict[str, str] = {
    FINDINGS_IMPRESSION: (
        "ReXrank evaluation_script.md split_json: f\"Findings: {section_findings} Impression: {section_impression}\", "
        "sections exactly as stored, a missing section written as the word None; sha256 of the UTF-8 bytes."
    ),
    FINDINGS: "ReXrank section_findings exactly as stored (findings-only track); sha256 of the UTF-8 bytes.",
}


def is_missing(value: Any) -> bool:
    """pandas ``notna`` negated for the values a JSON or CSV section can hold."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def ground_truth(findings: Any, impression: Any) -> str:
    """The ``findings_impression`` reference of one study."""
    f = None if is_missing(findings) else findings
    i = None if is_missing(impression) else impression
    return f"Findings: {f} Impression: {i}"


def reference_text(policy: str, findings: Any, impression: Any) -> str | None:
    """The reference under ``policy``; None for ``findings`` when the study has no findings."""
    if policy == FINDINGS_IMPRESSION:
        return ground_truth(findings, impression)
    if policy == FINDINGS:
        return None if is_missing(findings) else str(findings)
    raise ValueError(f"unknown ReXrank reference policy {policy!r}")
