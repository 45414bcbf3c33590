"""Test doubles for the ReXrank metrics: a tiny random RoBERTa directory (the real classes,
byte-level BPE trained here on IU X-Ray train reports — no Hub), a tiny random CheXbert
checkpoint (via _chexbert_doubles) and a stand-in RadGraph scorer.

The RoBERTa has 6 layers like distilroberta-base, so scoring with layers=5 truncates it the
way bert-score truncates the real model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _chexbert_doubles import load_iu_reports

TINY_ROBERTA = {"hidden_size": 24, "num_hidden_layers": 6, "num_attention_heads": 2, "intermediate_size": 48}


def build_tiny_roberta(directory: Path, seed: int = 0, vocab_size: int = 600) -> Path:
    """``directory`` with config.json, model.safetensors, vocab.json, merges.txt, tokenizer_config.json."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(load_iu_reports("train")[:400], vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(directory))
    tokenizer = RobertaTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=512)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tokenizer), max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1, **TINY_ROBERTA)
    RobertaModel(config).eval().save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory


def upstream_bertscore(model_dir: Path, hyps: Sequence[str], refs: Sequence[str], *, idf: bool,
                       rescale: bool = True, layers: int = 5,
                       baseline_model: str = "distilroberta-base") -> dict[str, list[float]]:
    """CXR-Report-Metric's ``add_bertscore_col``, with the bert-score package, on ``model_dir``.

    Changes from upstream, none numeric: the model is named by its local directory, so the
    layer and the baseline file are given explicitly (upstream finds the same ones by model
    name); ``nthreads=0`` computes IDF without a process pool. Returns P, R and F per pair.
    """
    import re

    import bert_score
    from bert_score import BERTScorer

    test_reports = [re.sub(r" +", " ", t) for t in refs]
    method_reports = [re.sub(r" +", " ", r) for r in hyps]
    baseline = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{baseline_model}.tsv"
    scorer = BERTScorer(model_type=str(model_dir), num_layers=layers, batch_size=256, lang="en",
                        rescale_with_baseline=rescale, idf=idf, idf_sents=test_reports, nthreads=0,
                        baseline_path=str(baseline), device="cpu")
    p, r, f1 = scorer.score(method_reports, test_reports)
    return {"precision": p.tolist(), "recall": r.tolist(), "f1": f1.tolist()}


def iu_pairs(n: int) -> tuple[list[str], list[str]]:
    """(hypotheses, references): IU X-Ray test findings against a shifted copy, plus edge cases."""
    refs = load_iu_reports("test")[:n]
    hyps = refs[3:] + refs[:3]
    hyps[0] = refs[0]  # an exact match
    hyps[1] = "  The   lungs are clear.  No   effusion. "  # runs of spaces (collapsed by the convention)
    hyps[2] = "NO ACUTE CARDIOPULMONARY PROCESS"  # case and no punctuation
    hyps[3] = ""  # an empty report is a valid prediction
    return hyps, refs


class FakeRadGraphScorer:
    """Stands in for ``radgraph[model=radgraph]`` (whose model cannot be built offline): the
    entity/relation mean is a deterministic function of the two texts, so RadCliQ-v1's
    composition can be checked end to end."""

    name = "radgraph"
    version = "1"

    def __init__(self, **params: Any) -> None:
        self.params = params

    def unavailable_reason(self) -> str | None:
        return None

    def score(self, study_ids, hyps, refs, ctx):  # noqa: ANN001 - mirrors Scorer.score
        import pandas as pd

        from rrg_bench.api.scorer import ScoreResult

        def overlap(h: str, r: str) -> float:
            hs, rs = set(h.lower().split()), set(r.lower().split())
            return 2 * len(hs & rs) / (len(hs) + len(rs)) if hs and rs else 0.0

        values = [overlap(h, r) for h, r in zip(hyps, refs)]
        stats = pd.DataFrame({"er_mean": values}, index=pd.Index(list(study_ids), name="study_id"))
        return ScoreResult(values={"radgraph_er_mean[model=radgraph]": float(sum(values) / len(values))},
                           stats=stats)

    def impl(self) -> dict[str, Any]:
        return {"fake": True}


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def session_dir(tmp_path_factory: Any, name: str, build: Any) -> Path:
    """``build(path)`` once per test session under pytest's base temp dir, shared by modules."""
    path = Path(tmp_path_factory.getbasetemp()) / name
    if not (path / ".done").is_file():
        build(path)
        (path / ".done").write_text("ok")
    return path


def build_tiny_chexbert(directory: Path, seed: int = 1) -> dict[str, Path]:
    """A 2-layer, hidden-32 CheXbert checkpoint whose [CLS] states differ between reports
    (initializer_range 1.0: with BERT's default 0.02 every report embeds to nearly the same vector)."""
    from _chexbert_doubles import build_checkpoint, minilm_vocab, small_bert_config, write_config

    directory.mkdir(parents=True, exist_ok=True)
    config = dict(small_bert_config(2), hidden_size=32, num_attention_heads=2, intermediate_size=64,
                  initializer_range=1.0)
    write_config(directory / "cfg", config)
    build_checkpoint(directory / "chexbert.pth", config, load_iu_reports("train")[:32], minilm_vocab(), seed=seed)
    return chexbert_paths(directory)


def chexbert_paths(directory: Path) -> dict[str, Path]:
    from _chexbert_doubles import minilm_vocab

    return {"ckpt": directory / "chexbert.pth", "tokenizer": minilm_vocab(), "config": directory / "cfg"}


def upstream_semb_scores(paths: dict[str, Path], refs: Sequence[str], hyps: Sequence[str]) -> list[float]:
    """CXR-Report-Metric's s_emb, re-traced from its source for a local checkpoint:
    ``CheXbert/src/encode.py`` (bert_tokenizer.get_impressions_from_csv + tokenize, batches of
    18 in file order padded with 0, masks from the lengths, ``bert_encoder(logits=False)`` =
    the [CLS] final hidden state) run once over the references and once over the predictions,
    then ``run_eval.add_semb_col``'s cosine in float32."""
    import re

    import numpy as np
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    config = json.loads((paths["config"] / "config.json").read_text())
    bert = BertModel(BertConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type")}))
    state = torch.load(paths["ckpt"], map_location="cpu", weights_only=True)["model_state_dict"]
    bert.load_state_dict({k[len("module.bert."):]: v for k, v in state.items() if k.startswith("module.bert.")})
    bert.eval()
    tokenizer = BertTokenizer(vocab_file=str(paths["tokenizer"]), do_lower_case=True)

    def encode(reports: Sequence[str]) -> np.ndarray:
        encoded = []
        for report in reports:
            text = re.sub(r"\s+", " ", report.strip().replace("\n", " ")).strip()
            tokens = tokenizer.tokenize(text)
            if tokens:
                ids = tokenizer.encode_plus(tokens)["input_ids"]
                encoded.append(ids[:511] + [tokenizer.sep_token_id] if len(ids) > 512 else ids)
            else:
                encoded.append([tokenizer.cls_token_id, tokenizer.sep_token_id])
        out = []
        with torch.no_grad():
            for start in range(0, len(encoded), 18):
                chunk = [torch.LongTensor(e) for e in encoded[start:start + 18]]
                batch = torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True, padding_value=0)
                mask = torch.ones(batch.size(0), batch.size(1), dtype=torch.float)
                for i, e in enumerate(chunk):
                    mask[i, len(e):] = 0
                out.append(bert(batch, attention_mask=mask)[0][:, 0, :].squeeze(dim=1))
        return torch.cat(out).numpy()

    gt, pred = encode(refs), encode(hyps)
    return [float((g * p).sum() / (np.linalg.norm(g) * np.linalg.norm(p))) for g, p in zip(gt, pred)]
