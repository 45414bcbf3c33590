"""Names that become directory names, mapped one-to-one or refused.

A run directory is named after the model (``--model``) or the system (``bench score --name``).
Two different names must never share a directory, and no name may escape the runs directory,
so a name is used as it is only when it is a plain file name; otherwise it becomes a readable
slug plus a short hash of the exact name. The record keeps the display name as given.

>>> directory_name("anat_attn")
'anat_attn'
>>> directory_name("org/model v2")
'org_model_v2-ecfd1a79'
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from rrg_bench.errors import UsageError
from rrg_bench.hashing import sha256_text

MAX_NAME_CHARS = 120
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*")


def check_display_name(name: str, option: str = "--name") -> str:
    """A system name as shown in records and tables: printable, one line, not empty, not too long."""
    if not name.strip():
        raise UsageError(f"{option} must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise UsageError(f"{option} is {len(name)} characters long; use at most {MAX_NAME_CHARS}")
    bad = [c for c in name if unicodedata.category(c).startswith("C")]
    if bad:
        raise UsageError(f"{option} {name!r} contains control characters ({', '.join(repr(c) for c in bad[:3])}); "
                         "use a one-line printable name")
    return name


def directory_name(name: str, option: str = "--name") -> str:
    """The directory for ``name``: the name itself if it is a plain file name, else slug + hash."""
    check_display_name(name, option)
    if _PLAIN.fullmatch(name) and name not in {".", ".."}:
        return name
    slug = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name).strip("._")[:60] or "name"
    return f"{slug}-{sha256_text(name)[:8]}"


def dataset_directory(dataset: str) -> Path:
    """``iu_xray/r2gen`` -> ``iu_xray/r2gen``: a dataset id's segments as nested directories."""
    return Path(*(directory_name(part, "--dataset") for part in dataset.split("/")))
