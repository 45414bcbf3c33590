"""Import the AM-MRG authors' released files into an am_mrg checkpoint directory.

The authors release ``Stage1ckpt.pth`` (SwinCheX, whose ``disease_tokens`` open the visual memory),
``CAM.pkl`` (Grad-CAM patch features per label), ``Report_Memory.pkl`` (Bio_ClinicalBERT report vectors
per label) and a stage-2 checkpoint (``Stage2CheXpertPlus.pth``: the trainable parameters, saved by
``save_checkpoint``). ``bench run --model am_mrg --checkpoint DIR`` with these files in DIR imports them
once into the harness cache (``import_cached``) and runs the result like any checkpoint.

Layouts (``tests/fixtures/am_mrg/released_layouts.json`` lists every expected key with the line of the
authors' code that makes it) are mapped strictly: every stage-2 tensor must land in our model and every
tensor our model has must come from the file. Memories are drawn as AM_MRG.py draws them when it is
built — ``random.sample`` of at most ``maps_num`` rows per CAM label in the file's order, then
``floor(share · 6000)`` report vectors per label with the remainder to the most frequent label — from
one ``random.Random(seed)`` (the authors seed 42 before building the model), so with the authors' seed
and unchanged pickles the memories are the ones their evaluation used, provided nothing else drew from
Python's ``random`` first (we could not run their code to check). The report memory comes from
MIMIC-CXR *test* reports (report_memory_generation.py reads ``mimic_label.json['test']``); its
provenance says so and the generator refuses to evaluate a MIMIC-CXR test split with it unless asked.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rrg_bench.baselines.am_mrg.arm import ARMConfig
from rrg_bench.baselines.am_mrg.configuration import AMMRGConfig, HopfieldConfig
from rrg_bench.baselines.am_mrg.memory import REPORT, VISUAL, save_memory
from rrg_bench.baselines.am_mrg.pickles import load_checkpoint, load_pickle
from rrg_bench.baselines.am_mrg.qformer import LAVIS_PREFIX, lavis_key
from rrg_bench.baselines.common.vision import ImageConfig
from rrg_bench.errors import DataError
from rrg_bench.metrics.common.labels import CHEXPERT_LABELS

FILES = {"stage1": "Stage1ckpt.pth", "cam": "CAM.pkl", "report_memory": "Report_Memory.pkl",
         "stage2": "Stage2CheXpertPlus.pth"}
#: AM_MRG.py's REPORT_LABELS (= report_memory_generation.py's), the order of the report quotas
REPORT_LABELS = CHEXPERT_LABELS
#: stage-2 prefixes with a one-to-one rename (the Q-Former and the Hopfield layers are mapped below)
_RENAMES = {"visual_encoder.": "vision_encoder.", "Qformer_proj.": "qformer_proj.", "output_proj.": "output_proj.",
            "llama_proj.": "llama_proj.", "layer_norm.": "llama_norm."}
_HOPFIELD = {"HopfieldLayers.hopfield.": "v_hopfield.", "R_HopfieldLayers.hopfield.": "r_hopfield."}
_HOPFIELD_PARTS = {
    "association_core.q_proj_weight": "q_proj.weight", "association_core.k_proj_weight": "k_proj.weight",
    "association_core.v_proj_weight": "v_proj.weight", "association_core.out_proj.weight": "out_proj.weight",
    "association_core.out_proj.bias": "out_proj.bias",
    **{f"{theirs}.{p}": f"{ours}.{p}" for theirs, ours in (("norm_stored_pattern", "norm_stored"),
                                                           ("norm_state_pattern", "norm_state"),
                                                           ("norm_pattern_projection", "norm_projection"))
       for p in ("weight", "bias")},
}


def is_release(directory: Path) -> bool:
    """A directory holding the authors' files rather than an am_mrg checkpoint (no ``config.json``)."""
    directory = Path(directory)
    return directory.is_dir() and not (directory / "config.json").is_file() and \
        any((directory / name).is_file() for name in FILES.values())


def release_files(directory: Path) -> dict[str, Path]:
    """The four files by role: in ``directory``, else the weights entries installed on this machine."""
    from rrg_bench.baselines.am_mrg.weights import RELEASE
    from rrg_bench.errors import WeightsUnavailable
    from rrg_bench.weights import resolve

    found, missing = {}, []
    for role, name in FILES.items():
        path = Path(directory) / name
        if not path.is_file():
            try:
                path = resolve(RELEASE[role].name)
            except WeightsUnavailable:
                missing.append(name)
                continue
        found[role] = path
    if missing:
        raise DataError(f"{directory}: the AM-MRG release is incomplete, {', '.join(missing)} not found (there, nor "
                        f"installed with `bench weights fetch NAME --from FILE`)")
    return found


# ----------------------------------------------------------------------------- stage 2 weights
def _hopfield(key: str, value: torch.Tensor, prefix: str, out: dict[str, torch.Tensor]) -> bool:
    """One tensor of an hflayers ``HopfieldLayer`` into our ``HopfieldLayer`` (the q | k | v bias is split
    once all weights are known)."""
    part, ours = key[len(prefix):], _HOPFIELD[prefix]
    if part == "association_core.in_proj_bias":
        out[ours + "in_proj_bias"] = value
    elif part in _HOPFIELD_PARTS:
        out[ours + _HOPFIELD_PARTS[part]] = value
    else:
        return False
    return True


def _split_in_proj_bias(state: dict[str, torch.Tensor]) -> None:
    for ours in _HOPFIELD.values():
        bias = state.pop(ours + "in_proj_bias", None)
        if bias is None:
            continue
        q, k = state[ours + "q_proj.weight"].shape[0], state[ours + "k_proj.weight"].shape[0]
        state[ours + "q_proj.bias"], state[ours + "k_proj.bias"], state[ours + "v_proj.bias"] = \
            bias[:q], bias[q:q + k], bias[q + k:]


def convert_stage2(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' stage-2 ``model`` tensors in our names; any tensor without a place is an error."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in model_state.items():
        if key == "disease_tokens":
            out["query_tokens"] = value
        elif key.startswith(LAVIS_PREFIX):
            ours = lavis_key(key)
            (unknown.append(key) if ours is None else out.__setitem__("qformer." + ours, value))
        elif (prefix := next((p for p in _HOPFIELD if key.startswith(p)), None)) is not None:
            if not _hopfield(key, value, prefix, out):
                unknown.append(key)
        elif (prefix := next((p for p in _RENAMES if key.startswith(p)), None)) is not None:
            out[_RENAMES[prefix] + key[len(prefix):]] = value
        else:
            unknown.append(key)
    if unknown:
        raise DataError(f"not an AM-MRG stage-2 layout: {len(unknown)} tensors have no place in the model, e.g. "
                        f"{unknown[:4]}")
    _split_in_proj_bias(out)
    return out


def _count(state: dict[str, Any], pattern: str) -> int:
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return max(found) + 1 if found else 0


def infer_arm(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """ARM's architecture from its tensors (our names): width, depth, patch and grid, scan sizes."""
    patch, mixer = state["vision_encoder.patch_embed.proj.weight"], "vision_encoder.layers.0.mixer."
    width, size = patch.shape[0], patch.shape[-1]
    grid = math.isqrt(state["vision_encoder.pos_embed"].shape[1] - 1)
    return ARMConfig(image_size=grid * size, patch_size=size, num_channels=patch.shape[1], hidden_size=width,
                     num_hidden_layers=_count(state, r"vision_encoder\.layers\.(\d+)\."),
                     d_state=state[mixer + "A_log"].shape[1], d_conv=state[mixer + "conv1d.weight"].shape[-1],
                     expand=state[mixer + "in_proj.weight"].shape[0] // (2 * width),
                     dt_rank=state[mixer + "dt_proj.weight"].shape[1],
                     mlp_hidden_size=state["vision_encoder.layers.0.mlp.w1.weight"].shape[0],
                     num_classes=state["vision_encoder.head.weight"].shape[0]).model_dump()


def infer_qformer(state: dict[str, torch.Tensor], heads: int | None = None) -> dict[str, Any]:
    """The Q-Former's config from its tensors; heads cannot be read from shapes (default: width / 64)."""
    from transformers import Blip2QFormerConfig

    layer = "qformer.encoder.layer."
    hidden = state[layer + "0.attention.attention.query.weight"].shape[0]
    depth = _count(state, r"qformer\.encoder\.layer\.(\d+)\.")
    pattern = re.compile(r"qformer\.encoder\.layer\.(\d+)\.crossattention")
    cross = sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})
    frequency = next((f for f in range(1, depth + 1) if cross == list(range(0, depth, f))), None)
    if frequency is None:
        raise DataError(f"Q-Former cross-attention on layers {cross} is not every n-th layer from 0")
    return Blip2QFormerConfig(
        hidden_size=hidden, num_hidden_layers=depth, num_attention_heads=heads or max(1, hidden // 64),
        intermediate_size=state[layer + "0.intermediate_query.dense.weight"].shape[0],
        cross_attention_frequency=frequency,
        encoder_hidden_size=state[layer + f"{cross[0]}.crossattention.attention.key.weight"].shape[1]).to_dict()


class _StubLLM(torch.nn.Module):
    """Stands in for the LLM when only the shapes of the rest of the model are needed."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(1, width)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed


def check_strict(config: AMMRGConfig, state: dict[str, torch.Tensor], llm_width: int) -> None:
    """Every tensor our model has (the LLM aside) comes from ``state`` with its shape, and nothing else does."""
    from rrg_bench.baselines.am_mrg.model import AMMRG

    with torch.device("meta"):
        model = AMMRG(config, _StubLLM(llm_width))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("llm.")}
    got = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"missing {k}" for k in sorted(expected.keys() - got.keys())]
    problems += [f"unexpected {k}" for k in sorted(got.keys() - expected.keys())]
    problems += [f"{k}: {got[k]} != {expected[k]}" for k in sorted(expected.keys() & got.keys())
                 if got[k] != expected[k]]
    if problems:
        raise DataError(f"the stage-2 checkpoint does not fit AM-MRG exactly: {'; '.join(problems[:6])}"
                        f"{f' … ({len(problems)} in all)' if len(problems) > 6 else ''}")


# ----------------------------------------------------------------------------- memories
def visual_memory(stage1: Path, cam: Path, maps_num: int, rng: random.Random
                  ) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """``cat(stage-1 disease_tokens, CAM rows)``: per CAM label in file order, ``rng.sample`` of
    ``maps_num`` rows when it has more (AM_MRG.py lines 64-70)."""
    model = load_checkpoint(stage1).get("model", {})
    tokens = next((v for k, v in model.items() if "disease_tokens" in k), None)  # the first such key, as the authors
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or tokens.shape[0] != 1:
        raise DataError(f"{stage1}: no 'model' tensor named *disease_tokens* of shape [1, queries, width]")
    rows: list[dict[str, Any]] = [{"kind": "disease_token", "query": j} for j in range(tokens.shape[1])]
    picked = []
    for label, values in _label_arrays(cam, tokens.shape[2]).items():
        chosen = rng.sample(range(len(values)), maps_num) if len(values) > maps_num else range(len(values))
        picked += [values[i] for i in chosen]
        rows += [{"kind": "cam_patch", "observation": label, "row": int(i)} for i in chosen]
    cams = torch.from_numpy(np.stack(picked)).float() if picked else torch.zeros(0, tokens.shape[2])
    return torch.cat([tokens[0].float(), cams]), rows


def report_quotas(counts: dict[str, int], total: int) -> dict[str, int]:
    """AM_MRG.py lines 74-82: ``int(share · total)`` per label, the remainder to the most frequent label."""
    all_reports = sum(counts.values())
    weights = {label: n / all_reports for label, n in counts.items()}
    quotas = {label: int(w * total) for label, w in weights.items()}
    if total - sum(quotas.values()) > 0:
        quotas[max(weights, key=lambda label: weights[label])] += total - sum(quotas.values())
    return quotas


def report_memory(path: Path, total: int, rng: random.Random, width: int) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Exactly ``total`` report vectors drawn per ``report_quotas`` with ``rng.sample`` (AM_MRG.py lines 72-91)."""
    arrays = _label_arrays(path, width)
    absent = [label for label in REPORT_LABELS if label not in arrays]
    if absent:
        raise DataError(f"{path}: no entry for {', '.join(absent)} (the authors' file holds all 14 labels)")
    quotas = report_quotas({label: len(arrays[label]) for label in REPORT_LABELS}, total)
    picked, rows = [], []
    for label, n in quotas.items():
        if n > len(arrays[label]):
            raise DataError(f"{path}: {label} has {len(arrays[label])} reports, its share of {total} is {n}")
        chosen = rng.sample(range(len(arrays[label])), n)
        picked += [arrays[label][i] for i in chosen]
        rows += [{"kind": "report", "observation": label, "row": int(i)} for i in chosen]
    return torch.from_numpy(np.stack(picked)).float(), rows


def _label_arrays(path: Path, width: int) -> dict[str, np.ndarray]:
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a dict of label -> [n, {width}] arrays, got {type(data).__name__}")
    out = {}
    for label, values in data.items():
        values = np.asarray(values)
        if values.ndim != 2 or (len(values) and values.shape[1] != width):
            raise DataError(f"{path}: {label!r} has shape {values.shape}, expected [n, {width}]")
        out[str(label)] = values
    return out


# ----------------------------------------------------------------------------- the import
def _lengths(hparams: dict[str, Any], family: str) -> dict[str, Any]:
    """Report budget and decoding lengths: the checkpoint's saved hyper-parameters, else the family's."""
    from rrg_bench.baselines.common.generation import MAX_REPORT_TOKENS, NEW_TOKENS

    defaults = {"max_report_tokens": MAX_REPORT_TOKENS[family], "min_new_tokens": NEW_TOKENS[family][0],
                "max_new_tokens": NEW_TOKENS[family][1]}
    names = {"max_report_tokens": "max_length", "min_new_tokens": "min_new_tokens", "max_new_tokens": "max_new_tokens"}
    lengths = dict(defaults)
    for ours, theirs in names.items():
        value = hparams.get(theirs)
        if isinstance(value, int):
            lengths[ours] = value
    return lengths


def _llm_fields(llm: str, revision: str | None, width: int) -> tuple[dict[str, Any], Any]:
    from transformers import AutoConfig, AutoTokenizer

    from rrg_bench.baselines.common.llm import llm_sha256

    try:
        llm_width = int(AutoConfig.from_pretrained(llm, revision=revision).hidden_size)
        tokenizer = AutoTokenizer.from_pretrained(llm, revision=revision)
    except OSError as exc:
        raise DataError(f"am_mrg: the LLM {llm!r} (llm=) cannot be read here ({exc}); pass its local "
                        "directory") from None
    if llm_width != width:
        raise DataError(f"am_mrg: the release projects to a {width}-d LLM, {llm} is {llm_width}-d (the authors' "
                        "MIMIC-CXR and CheXpert Plus model uses Llama-2-7b-chat: 4096-d)")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return {"llm": llm, "llm_revision": revision, "llm_sha256": llm_sha256(llm)}, tokenizer


def import_release(source: Path, out_dir: Path, *, llm: str, llm_revision: str | None = None, seed: int = 42,
                   maps_num: int = 500, report_total: int = 6000, hopfield_heads: int = 6,
                   qformer_heads: int | None = None, family: str = "chexpert_plus") -> Path:
    """Write an am_mrg checkpoint directory from the authors' files in ``source`` (see the module docstring)."""
    from safetensors.torch import save_file

    from rrg_bench.hashing import sha256_file_memo

    files = release_files(Path(source))
    checkpoint = load_checkpoint(files["stage2"])
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise DataError(f"{files['stage2']}: no 'model' state dict (expected AM-MRG's save_checkpoint layout)")
    hparams = dict(checkpoint.get("config") or {})
    state = convert_stage2(checkpoint["model"])
    rng = random.Random(seed)
    visual, visual_rows = visual_memory(files["stage1"], files["cam"], maps_num, rng)
    report, report_rows = report_memory(files["report_memory"], report_total, rng, visual.shape[1])
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sources = {role: {"file": p.name, "sha256": sha256_file_memo(p)} for role, p in files.items()}
    common = {"source": "AM-MRG authors' release", "files": sources, "seed": seed, "dataset": "mimic_cxr"}
    settings_v = {"maps_num": maps_num, "sampling": "random.Random(seed).sample per CAM label, in file order"}
    save_memory(tmp / "memories", VISUAL, visual,
                {**common, "split": "train", "settings": settings_v, "rows": visual_rows})
    save_memory(tmp / "memories", REPORT, report, {**common, "split": "test", "rows": report_rows, "settings": {
        "total": report_total, "sampling": "int(share * total) per label, remainder to the most frequent"}})
    llm_fields, tokenizer = _llm_fields(llm, llm_revision, int(state["llama_proj.weight"].shape[0]))
    heads, lengths = hopfield_heads, _lengths(hparams, family)
    config = AMMRGConfig(
        vision_config=infer_arm(state), qformer_config=infer_qformer(state, qformer_heads),
        image=ImageConfig(size=infer_arm(state)["image_size"]), num_queries=int(state["query_tokens"].shape[1]),
        hopfield=HopfieldConfig(num_heads=heads, hidden_size=state["v_hopfield.q_proj.weight"].shape[0] // heads,
                                pattern_size=state["v_hopfield.v_proj.weight"].shape[0] // heads,
                                beta=float(hparams.get("scaling", 4.0))),
        visual_memory_dim=int(visual.shape[1]), report_memory_dim=int(report.shape[1]),
        visual_memory_sha256=sha256_file_memo(tmp / "memories" / f"{VISUAL}.safetensors"),
        report_memory_sha256=sha256_file_memo(tmp / "memories" / f"{REPORT}.safetensors"),
        llm_dtype="float16", images="all", **llm_fields, **lengths,
        trained_on={"source": "AM-MRG authors' release", "files": sources, "family": family, "memory_seed": seed})
    check_strict(config, state, int(state["llama_proj.weight"].shape[0]))
    config.save(tmp)
    save_file({k: t.detach().contiguous() for k, t in state.items()}, str(tmp / "model.safetensors"))
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.replace(out_dir)
    return out_dir


def import_cached(source: Path, **settings: Any) -> Path:
    """``import_release`` into ``<cache>/am_mrg/imported/<key>`` once per (file contents, settings)."""
    from rrg_bench.hashing import sha256_file_memo
    from rrg_bench.paths import cache_root

    files = release_files(Path(source))
    key = hashlib.sha256(json.dumps({"files": {r: sha256_file_memo(p) for r, p in sorted(files.items())},
                                     "settings": settings}, sort_keys=True, default=str).encode()).hexdigest()
    out = cache_root() / "am_mrg" / "imported" / key[:16]
    if not (out / "config.json").is_file():
        import_release(Path(source), out, **settings)
    return out
