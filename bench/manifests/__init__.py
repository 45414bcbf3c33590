"""Dataset manifests: the frozen list of studies a score is computed against.

A manifest directory holds ``manifest.yaml`` (name, version, sources and their sha256,
reference and view policies, per-split counts, exclusion counts, and the sha256 of every
split file) plus one ``<split>.jsonl`` per split (one study per line: ``study_id``, image
paths relative to the data root, the frontal image, ``reference_sha256`` and
dataset-specific keys). The committed manifests ship inside the wheel as the
``data_manifests`` package, so an installed ``bench`` works outside the checkout.

Why hashes and not text: credentialed reports (MIMIC) may never be redistributed, and even
for open data the hash is what makes "the same references" checkable. Loading a split
verifies the split file's sha256 and its count, so an edited manifest fails loudly.

Hashing convention (``sha256_text``): the sha256 of the UTF-8 bytes of the text exactly as
the dataset's reference policy produces it. No normalisation happens inside the hash (no
strip, no Unicode normalisation, no newline conversion); a policy that wants normalised
text normalises before hashing, and says so in its card. ``sha256_text``, ``sha256_bytes``,
``sha256_file`` and ``canonical_json`` are ``rrg_bench.hashing``'s, re-exported so manifests
and run fingerprints hash the same way.

The modules: ``manifest`` (load and verify), ``writing`` (what builders and preparers
write), ``identity`` (the record's ``dataset`` block), ``checks`` (messages and data roots
every dataset shares).
"""

from rrg_bench.hashing import canonical_json, sha256_bytes, sha256_file, sha256_text
from rrg_bench.manifests.checks import MAX_NAMED, find_dataset_root, mismatch_error, name_some
from rrg_bench.manifests.identity import identity_block, references_sha256, study_ids_sha256
from rrg_bench.manifests.manifest import (
    MANIFEST_PACKAGE,
    Manifest,
    SplitInfo,
    load_manifest,
    load_manifest_dir,
    packaged_manifest_dir,
    parse_rows,
)
from rrg_bench.manifests.writing import (
    MANIFEST_SCHEMA,
    Progress,
    atomic_write,
    jsonl_bytes,
    write_manifest_dir,
    yaml_bytes,
)

__all__ = [
    "MANIFEST_PACKAGE", "MANIFEST_SCHEMA", "MAX_NAMED", "Manifest", "Progress", "SplitInfo", "atomic_write",
    "canonical_json", "find_dataset_root", "identity_block", "jsonl_bytes", "load_manifest", "load_manifest_dir",
    "mismatch_error", "name_some", "packaged_manifest_dir", "parse_rows", "references_sha256", "sha256_bytes",
    "sha256_file", "sha256_text", "study_ids_sha256", "write_manifest_dir", "yaml_bytes",
]
