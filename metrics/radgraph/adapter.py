"""The ``radgraph`` package behind an adapter: local model files in, cached annotations out.

Why an adapter instead of calling ``radgraph.F1RadGraph``: the package builds autograd graphs
for every report (no ``no_grad``), runs one report per forward pass, annotates the same
reference again for every system and every level, and downloads its weights and backbone from
the Hub inside the constructor. Here each distinct text is annotated once, under
``torch.inference_mode()``, by the package's own loaded model (``radgraph.RadGraph`` pointed at
a local model directory) run in batches that reproduce its annotations exactly (``batched.py``),
and the annotation is cached by content. The levels (``rewards.py``) are then computed from the
annotations and equal the package's reward functions bit for bit.

Local model directory = what the package extracts from its tarball: ``config.json``,
``vocabulary/``, ``weights.th``. The tarball's ``config.json`` names the backbone whose
tokenizer and config the package fetches from the Hub by name
(``dataset_reader.token_indexers.bert.model_name``); we never let it reach the network: the
backbone is taken from ``<model_dir>/backbone/`` or from the local Hugging Face cache, and a
staged copy of ``config.json`` with ``model_name`` rewritten to that local directory is what
the package's loader reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rrg_bench.errors import WeightsUnavailable
from rrg_bench.hashing import sha256_file_memo
from rrg_bench.weights import hub_snapshot, resolve

#: bump when anything that changes a cached annotation changes in this adapter
ADAPTER_VERSION = "1"
#: bump to drop annotations cached by an earlier batched path that may have differed from the package's
#: (2: short reports and the mention scores' last rows now keep the package's bits, batched.py); the
#: scorer's fingerprint keeps ADAPTER_VERSION, since what it promises (the package's annotations) is unchanged
CACHE_REVISION = "2"

MODEL_TYPES: tuple[str, ...] = ("radgraph", "radgraph-xl", "modern-radgraph-xl")

#: what ``radgraph`` extracts from ``StanfordAIMI/RRG_scorers/<model>.tar.gz``
MODEL_FILES: tuple[str, ...] = ("config.json", "vocabulary", "weights.th")

#: reports per call into the package's own loop (used only when ``batched.fast_path_reason``
#: names a reason; the package runs one report per forward pass)
CHUNK = 16


def radgraph_version() -> str | None:
    try:
        return metadata.version("radgraph")
    except metadata.PackageNotFoundError:
        return None


# ----------------------------------------------------------------------------- model files


@dataclass(frozen=True)
class RadGraphModel:
    """A located, complete local model: the directory, its backbone, and what identifies them."""

    model_type: str
    model_dir: Path
    backbone_name: str  # as the tarball's config.json names it
    backbone_dir: Path

    @property
    def weights(self) -> Path:
        return self.model_dir / "weights.th"

    def weights_sha256(self) -> str:
        return sha256_file_memo(self.weights)

    def backbone_sha256(self) -> str:
        """Hash of the backbone's tokenizer/config files (its weights come from weights.th)."""
        return _sha256_small_files(self.backbone_dir)

    def cache_namespace(self) -> str:
        return (f"radgraph={radgraph_version()}|model={self.model_type}|weights={self.weights_sha256()}"
                f"|backbone={self.backbone_name}:{self.backbone_sha256()}|adapter={ADAPTER_VERSION}"
                f"|cache={CACHE_REVISION}")


_WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".th")


def _sha256_small_files(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix in _WEIGHT_SUFFIXES:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(sha256_file_memo(path).encode())
    return digest.hexdigest()


def check_model_dir(model_type: str, model_dir: Path) -> dict[str, Any]:
    """Fail with the missing file named; return the parsed config.json."""
    missing = [name for name in MODEL_FILES if not (model_dir / name).exists()]
    if missing:
        raise WeightsUnavailable(
            f"RadGraph model {model_type!r}: {', '.join(missing)} missing in {model_dir}. The directory must hold "
            f"what {model_type}.tar.gz (Hugging Face StanfordAIMI/RRG_scorers) extracts to: config.json, "
            f"vocabulary/, weights.th (`bench weights fetch {model_type}`, or extract the tarball there).")
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        name = config["dataset_reader"]["token_indexers"]["bert"]["model_name"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsUnavailable(
            f"RadGraph model {model_type!r}: {model_dir / 'config.json'} is not a radgraph model config "
            f"(no dataset_reader.token_indexers.bert.model_name: {exc}). Re-extract {model_type}.tar.gz.") from None
    if not isinstance(name, str) or not name:
        raise WeightsUnavailable(f"RadGraph model {model_type!r}: {model_dir / 'config.json'} names no backbone.")
    return config


def resolve_backbone(model_type: str, model_dir: Path, backbone_name: str) -> Path:
    """The local directory holding the backbone's config and tokenizer files.

    Looked up, in order: ``backbone_name`` if it already is a local directory (absolute, or
    relative to the model directory); ``<model_dir>/backbone/``; the local Hugging Face cache
    (``local_files_only``: the network is never used, whatever HF_HUB_OFFLINE says).
    """
    for candidate in (Path(backbone_name), model_dir / backbone_name, model_dir / "backbone"):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    try:
        cached = hub_snapshot(backbone_name, None, local_files_only=True, who="RadGraph backbone",
                              fix=f"Put it in {model_dir / 'backbone'}/.")
        if (cached / "config.json").is_file():
            return cached
    except WeightsUnavailable:  # not in the local cache (any hub error means the same here)
        pass
    raise WeightsUnavailable(
        f"RadGraph model {model_type!r}: backbone {backbone_name!r} (named in {model_dir / 'config.json'}) is not "
        f"available offline. Put its config.json and tokenizer files (tokenizer_config.json, vocab.txt or "
        f"tokenizer.json, special_tokens_map.json) in {model_dir / 'backbone'}/, or into the Hugging Face cache "
        f"with `huggingface-cli download {backbone_name}` on a machine with Hub access.")


def locate_model(model_type: str, explicit_dir: str | Path | None = None) -> RadGraphModel:
    model_dir = Path(resolve(model_type, explicit_dir))
    config = check_model_dir(model_type, model_dir)
    name = config["dataset_reader"]["token_indexers"]["bert"]["model_name"]
    return RadGraphModel(model_type, model_dir, name, resolve_backbone(model_type, model_dir, name))


# ----------------------------------------------------------------------------- annotation


def _staged_config(config: dict[str, Any], backbone: Path) -> dict[str, Any]:
    """config.json with every transformer ``model_name`` pointing at the local backbone."""
    config = json.loads(json.dumps(config))
    config["dataset_reader"]["token_indexers"]["bert"]["model_name"] = str(backbone)
    embedder = config.get("model", {}).get("embedder", {}).get("token_embedders", {}).get("bert")
    if isinstance(embedder, dict) and "model_name" in embedder:
        embedder["model_name"] = str(backbone)
    return config


def _device_index(device: str) -> int:
    """radgraph's ``cuda`` argument: a CUDA index, or -1 for the CPU."""
    if device.startswith("cuda"):
        _, _, index = device.partition(":")
        return int(index or 0)
    return -1


class RadGraphAnnotator:
    """One loaded radgraph model; annotates texts, de-duplicated and cached by content."""

    def __init__(self, model: RadGraphModel, device: str = "cpu", batched: bool = True) -> None:
        self.model = model
        self.device = device
        #: False runs the package's own one-report loop (for comparisons; annotations are the same)
        self.batched = batched
        self._radgraph: Any = None
        #: why the package's loop ran instead of the batches (run notes), and reports re-annotated
        #: alone because a decision was within the device's near-tie tolerance
        self.loop_reason: str | None = None
        self.reannotated = 0

    @property
    def namespace(self) -> str:
        return self.model.cache_namespace()

    def load(self) -> Any:
        """Build ``radgraph.RadGraph`` from a staged copy of the model directory.

        The package reads ``<model_cache_dir>/<model_type>/`` and downloads when that is empty,
        so it gets a temporary directory holding the rewritten config.json, a copy of
        vocabulary/ (its loader writes a lock file there) and a link to weights.th; everything
        is in memory once the constructor returns, and the directory is removed.
        """
        if self._radgraph is not None:
            return self._radgraph
        from radgraph import RadGraph

        config = check_model_dir(self.model.model_type, self.model.model_dir)
        with tempfile.TemporaryDirectory(prefix="rrg-radgraph-") as staging:
            target = Path(staging) / self.model.model_type
            target.mkdir()
            (target / "config.json").write_text(json.dumps(_staged_config(config, self.model.backbone_dir)))
            shutil.copytree(self.model.model_dir / "vocabulary", target / "vocabulary",
                            ignore=shutil.ignore_patterns(".lock"))
            try:
                (target / "weights.th").symlink_to(self.model.weights.resolve())
            except OSError:  # filesystems without symlinks
                shutil.copyfile(self.model.weights, target / "weights.th")
            with contextlib.redirect_stdout(io.StringIO()):  # it prints the device and defaults
                self._radgraph = RadGraph(model_type=self.model.model_type, model_cache_dir=staging,
                                          cuda=_device_index(self.device))
        return self._radgraph

    def is_blank(self, text: str) -> bool:
        """True if the model's own preprocessing leaves no token (the package crashes on those)."""
        if not text:
            return True
        from radgraph.utils import preprocess_reports

        return not preprocess_reports([text], self.model.model_type)[0]["sentences"][0]

    def annotate(self, texts: Sequence[str], progress: Callable[[str, int], Any] | None = None,
                 batch_size: int = 16) -> list[dict]:
        """The package's annotation of each text, in order (blank texts: no entities)."""
        import torch

        from rrg_bench.metrics.radgraph.batched import BatchedAnnotator, fast_path_reason

        texts = list(texts)
        results: list[dict | None] = [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if not self.is_blank(text)]
        for i in set(range(len(texts))) - set(todo):
            results[i] = {"text": "", "entities": {}, "data_source": None, "data_split": "inference"}
        if not todo:
            return results  # type: ignore[return-value]
        advance = progress(f"RadGraph {self.model.model_type} annotation", len(todo)) if progress else None
        radgraph = self.load()
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Document .* has a sentence with a single token")
            self.loop_reason = fast_path_reason(radgraph.model) if self.batched else "batched=False"
            if self.loop_reason is None:
                batched = BatchedAnnotator(radgraph, batch_size)
                annotations = batched.annotate([texts[i] for i in todo], advance)
                self.reannotated += batched.reannotated
            else:
                annotations = self._package_loop(radgraph, [texts[i] for i in todo], advance)
        for index, annotation in zip(todo, annotations):
            results[index] = annotation
        return results  # type: ignore[return-value]

    @staticmethod
    def _package_loop(radgraph: Any, texts: list[str], advance: Callable[[int], Any] | None) -> list[dict]:
        """``radgraph(texts)`` in chunks: the package's own path, one report per forward pass."""
        annotations = []
        for start in range(0, len(texts), CHUNK):
            chunk = texts[start:start + CHUNK]
            output = radgraph(chunk)
            for position, text in enumerate(chunk):
                if str(position) not in output:
                    raise RuntimeError(f"radgraph produced no annotation for text {text[:80]!r}")
                annotations.append(output[str(position)])
            if advance:
                advance(len(chunk))
        return annotations

    def annotate_cached(self, cache: Any, texts: Sequence[str], progress: Callable[[str, int], Any] | None = None,
                        batch_size: int = 16) -> tuple[list[dict], int, int]:
        from rrg_bench.cache import annotate_cached

        return annotate_cached(cache, self.namespace, texts,
                               lambda misses: self.annotate(misses, progress, batch_size))
