"""``bench weights verify``: hash what the harness would use and compare with what is pinned or recorded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rrg_bench.hashing import sha256_path
from rrg_bench.weights.locate import read_sidecar, resolve, sidecar_path
from rrg_bench.weights.spec import spec


@dataclass(frozen=True)
class VerifyResult:
    name: str
    path: Path
    sha256: str
    expected: str | None
    ok: bool | None  # None: nothing recorded to compare against
    message: str


def verify(name: str, explicit_path: str | Path | None = None) -> VerifyResult:
    """Hash the resolved artefact and compare with the pinned sha256 or the fetch sidecar."""
    s = spec(name)
    path = resolve(name, explicit_path)
    got = sha256_path(path)
    expected: str | None = None
    source = ""
    if s.kind == "file":
        expected, source = s.sha256.get(s.files[0]), f"pinned for {s.repo_id}@{s.short_revision}"
    if expected is None:
        side = read_sidecar(name)
        if side and Path(side.get("path", "")).resolve() == path.resolve():
            expected = side.get("tree_sha256") if s.kind != "file" else side.get("files", {}).get(s.files[0])
            source = f"recorded by `bench weights fetch` in {sidecar_path(name)}"
    if expected is None:
        return VerifyResult(name, path, got, None, None, f"{name}: {path} sha256 {got} (nothing recorded to compare)")
    ok = got == expected
    msg = (f"{name}: {path} sha256 {got} matches ({source})" if ok else
           f"{name}: {path} sha256 {got} differs from {expected} ({source}); fetch it again")
    return VerifyResult(name, path, got, expected, ok, msg)
