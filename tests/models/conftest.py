"""Fixtures shared by the model tests (anat_attn, am_mrg, s2d_align): one torch thread, the real
R2Gen train reports, and temporary IU X-Ray data roots with synthetic images.

The reports are read from the shared data folder (``iu_source``), never copied into the repo; the
images are synthetic stand-ins drawn at IU X-Ray's R2Gen paths (tests/helpers/iu_images.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on a loaded 2-core machine OpenMP threads thrash (50x slower steps).
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def iu_train_reports(iu_source) -> list[str]:
    """The R2Gen train split's reports, in annotation order."""
    return [r["report"] for r in json.loads((iu_source / "annotation.json").read_text())["train"]]


@pytest.fixture(scope="session")
def make_iu_root(iu_source, tmp_path_factory) -> Callable[[Mapping[str, int]], Path]:
    """``make({split: n})`` -> a fresh IU X-Ray data root: the real annotation.json plus synthetic
    images for the first ``n`` studies of each named split."""
    from helpers.iu_images import write_iu_images

    def make(limits: Mapping[str, int]) -> Path:
        root = tmp_path_factory.mktemp("iu")
        shutil.copy(iu_source / "annotation.json", root / "annotation.json")
        for split, n in limits.items():
            write_iu_images(root, split, limit=n)
        return root

    return make
