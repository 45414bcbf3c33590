"""RadGraph F1: annotations from the ``radgraph`` package, reward levels computed by us.

Why an adapter instead of calling ``radgraph.F1RadGraph``: the package builds autograd graphs
for every report (no ``no_grad``), annotates the same reference again for every system and
every level, and downloads its weights and backbone from the Hub inside the constructor. Here
each distinct text is annotated once, under ``torch.inference_mode()``, through the package's
own loader (``radgraph.RadGraph``) pointed at a local model directory, and the annotation is
cached by content. The levels (``metrics.radgraph_rewards``) are then computed from the
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
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from rrg_bench.errors import PredictionsError, WeightsUnavailable
from rrg_bench.api.scorer import Column, Scorer, ScoreResult, ScoringContext
from rrg_bench.metrics.radgraph_rewards import EMPTY_PAIR, LEVELS, PairScores, score_pair

if TYPE_CHECKING:
    import pandas as pd

#: bump when anything that changes a cached annotation changes in this adapter
ADAPTER_VERSION = "1"

MODEL_TYPES: tuple[str, ...] = ("radgraph", "radgraph-xl", "modern-radgraph-xl")

#: what ``radgraph`` extracts from ``StanfordAIMI/RRG_scorers/<model>.tar.gz``
MODEL_FILES: tuple[str, ...] = ("config.json", "vocabulary", "weights.th")

#: reports per call into the package (the package itself runs one report per forward pass)
CHUNK = 16

LEVEL_NAMES = {"simple": "RG_E", "partial": "RG_ER", "complete": "RG_bar_ER"}
LEVEL_DEFINITIONS = {
    "simple": "entities (tokens, label)",
    "partial": "entities (tokens, label, has-relation)",
    "complete": "entities without relations + (tokens, label, relation, target tokens)",
}
STAT_COLUMNS: tuple[str, ...] = (*LEVELS, "entity_f1", "relation_f1", "er_mean")


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
        return _sha256_file(self.weights)

    def backbone_sha256(self) -> str:
        """Hash of the backbone's tokenizer/config files (its weights come from weights.th)."""
        return _sha256_small_files(self.backbone_dir)

    def cache_namespace(self) -> str:
        return (f"radgraph={radgraph_version()}|model={self.model_type}|weights={self.weights_sha256()}"
                f"|backbone={self.backbone_name}:{self.backbone_sha256()}|adapter={ADAPTER_VERSION}")


def _sha256_file(path: Path) -> str:
    """sha256 of a (large) file, memoised across processes by path, size and mtime."""
    from rrg_bench.hashing import sha256_file_memo as file_sha256

    return file_sha256(path)


_WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".h5", ".msgpack", ".ckpt", ".th")


def _sha256_small_files(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix in _WEIGHT_SUFFIXES:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(_sha256_file(path).encode())
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
        from huggingface_hub import snapshot_download

        cached = Path(snapshot_download(backbone_name, local_files_only=True))
        if (cached / "config.json").is_file():
            return cached
    except Exception:  # not in the local cache (any hub error means the same here)
        pass
    raise WeightsUnavailable(
        f"RadGraph model {model_type!r}: backbone {backbone_name!r} (named in {model_dir / 'config.json'}) is not "
        f"available offline. Put its config.json and tokenizer files (tokenizer_config.json, vocab.txt or "
        f"tokenizer.json, special_tokens_map.json) in {model_dir / 'backbone'}/, or into the Hugging Face cache "
        f"with `huggingface-cli download {backbone_name}` on a machine with Hub access.")


def locate_model(model_type: str, explicit_dir: str | Path | None = None) -> RadGraphModel:
    from rrg_bench.weights import resolve

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

    def __init__(self, model: RadGraphModel, device: str = "cpu") -> None:
        self.model = model
        self.device = device
        self._radgraph: Any = None

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

    def annotate(self, texts: Sequence[str], progress: Callable[[str, int], Any] | None = None) -> list[dict]:
        """The package's annotation of each text, in order (blank texts: no entities)."""
        import torch

        texts = list(texts)
        results: list[dict | None] = [None] * len(texts)
        todo = [i for i, text in enumerate(texts) if not self.is_blank(text)]
        for i in set(range(len(texts))) - set(todo):
            results[i] = {"text": "", "entities": {}, "data_source": None, "data_split": "inference"}
        advance = progress(f"RadGraph {self.model.model_type} annotation", len(todo)) if progress and todo else None
        radgraph = self.load() if todo else None
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Document .* has a sentence with a single token")
            for start in range(0, len(todo), CHUNK):
                chunk = todo[start:start + CHUNK]
                output = radgraph([texts[i] for i in chunk])
                for position, index in enumerate(chunk):
                    if str(position) not in output:
                        raise RuntimeError(f"radgraph produced no annotation for text {texts[index][:80]!r}")
                    results[index] = output[str(position)]
                if advance:
                    advance(len(chunk))
        return results  # type: ignore[return-value]

    def annotate_cached(self, cache: Any, texts: Sequence[str],
                        progress: Callable[[str, int], Any] | None = None) -> tuple[list[dict], int, int]:
        from rrg_bench.cache import annotate_cached

        return annotate_cached(cache, self.namespace, texts, lambda misses: self.annotate(misses, progress))


# ----------------------------------------------------------------------------- scorer


class RadGraphParams(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: Literal["radgraph", "radgraph-xl", "modern-radgraph-xl"] = "radgraph-xl"
    #: a local model directory (config.json, vocabulary/, weights.th); where the weights live is
    #: not a convention, so it is left out of the spec and the column ids
    model_dir: str | None = None


def level_column_id(model: str, level: str) -> str:
    return f"radgraph_f1[model={model},level={level}]"


def er_mean_column_id(model: str) -> str:
    return f"radgraph_er_mean[model={model}]"


class RadGraphScorer(Scorer):
    """RadGraph F1 at the three Delbrouck levels plus the RadCliQ/ReXrank entity-relation mean."""

    name = "radgraph"
    version = "1"
    Params = RadGraphParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._located: RadGraphModel | None = None
        self._annotators: dict[str, RadGraphAnnotator] = {}

    @property
    def spec(self) -> str:
        return f"{self.name}[model={self.params.model}]"

    def fingerprint(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "params": {"model": self.params.model},
                "impl": self.impl()}

    def columns(self) -> list[Column]:
        model = self.params.model
        upstream = f"radgraph {radgraph_version() or '?'}"
        cols = [
            Column(id=level_column_id(model, level), display=f"RadGraph F1 {level} ({LEVEL_NAMES[level]})",
                   convention=(f"{model} annotations ({upstream}); per-report set F1 over "
                               f"{LEVEL_DEFINITIONS[level]}, case-sensitive as in 0.1.18; 0 if either report "
                               f"is empty or has no entity; mean over reports (F1RadGraph reward_level={level!r})"))
            for level in LEVELS
        ]
        cols.append(Column(
            id=er_mean_column_id(model), display="RadGraph (ER mean)",
            convention=(f"{model} annotations ({upstream}); per-report (entity F1 + relation F1)/2, entities "
                        f"(tokens, label), relations ((tokens, label), (tokens, label), type); 0 if either report "
                        f"is empty; mean over reports (CXR-Report-Metric radgraph_combined; RadCliQ/ReXrank use "
                        f"model=radgraph)")))
        return cols

    def _locate(self) -> RadGraphModel:
        if self._located is None:
            self._located = locate_model(self.params.model, self.params.model_dir)
        return self._located

    def unavailable_reason(self) -> str | None:
        if radgraph_version() is None:
            return "the radgraph package is not installed: pip install 'rrg-bench[clinical]' (radgraph==0.1.18)"
        try:
            self._locate()
        except WeightsUnavailable as exc:
            return str(exc)
        return None

    def impl(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"radgraph": radgraph_version(), "model_type": self.params.model,
                                 "adapter_version": ADAPTER_VERSION}
        try:
            model = self._locate()
        except WeightsUnavailable:
            return {**facts, "weights": "unavailable"}
        return {**facts, "weights_sha256": model.weights_sha256(), "backbone": model.backbone_name,
                "backbone_files_sha256": model.backbone_sha256()}

    def annotator(self, device: str = "cpu") -> RadGraphAnnotator:
        if device not in self._annotators:
            self._annotators[device] = RadGraphAnnotator(self._locate(), device)
        return self._annotators[device]

    def score(self, study_ids: Sequence[str], hyps: Sequence[str], refs: Sequence[str],
              ctx: ScoringContext) -> ScoreResult:
        import pandas as pd

        if not len(study_ids) == len(hyps) == len(refs):
            raise ValueError(f"radgraph: {len(study_ids)} ids, {len(hyps)} hypotheses, {len(refs)} references")
        for side, texts in (("hypothesis", hyps), ("reference", refs)):
            for study_id, text in zip(study_ids, texts):
                if not isinstance(text, str):
                    raise PredictionsError(f"study {study_id}: the {side} is {type(text).__name__}, not text")
        annotator = self.annotator(ctx.device)
        empty = [annotator.is_blank(h) or annotator.is_blank(r) for h, r in zip(hyps, refs)]
        kept = [i for i, is_empty in enumerate(empty) if not is_empty]
        texts = [hyps[i] for i in kept] + [refs[i] for i in kept]
        annotations, hits, misses = annotator.annotate_cached(ctx.cache, texts, ctx.progress)
        pairs: list[PairScores] = [EMPTY_PAIR] * len(study_ids)
        for position, index in enumerate(kept):
            pairs[index] = score_pair(annotations[position], annotations[position + len(kept)])
        stats = pd.DataFrame([p.as_dict() for p in pairs], columns=list(STAT_COLUMNS),
                             index=pd.Index(list(study_ids), name="study_id"), dtype=float)
        stats["empty"] = empty
        notes = []
        if sum(empty):
            notes.append(f"{sum(empty)} pair(s) with an empty hypothesis or reference scored 0 at every level "
                         f"(as F1RadGraph)")
        return ScoreResult(values=self.aggregate(stats), stats=stats, cache_hits=hits, cache_misses=misses,
                           notes=notes)

    def aggregate(self, stats: pd.DataFrame) -> dict[str, float]:
        """Report-level macro average, as F1RadGraph's ``np.mean(reward_list)``."""
        import numpy as np

        model = self.params.model

        def mean(column: str) -> float:
            values = stats[column].to_numpy(dtype=float)
            return float(np.mean(values)) if len(values) else float("nan")

        values = {level_column_id(model, level): mean(level) for level in LEVELS}
        values[er_mean_column_id(model)] = mean("er_mean")
        return values
