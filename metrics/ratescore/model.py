"""RaTEScore's numeric side (imports torch): sentence splitting, the NER tagger, BIO decoding,
entity embeddings and the weighted top-1 matching, each as ``ratescore`` 0.6.0 computes it.

Why our own code and not ``RaTEScore.compute_score``: the package tags one sentence at a time
(``batch_size=1``), loads models by Hub name, loads medspaCy at import, and drops a report
with no sentence of 3+ characters, which shifts every later pair onto the wrong partner. Here
sentences are tagged in length-sorted batches, models come from local directories, each
report's entities are cached by text, and such a report simply has no entities (score 0.5,
what it would get if aligned). tests/metrics/test_ratescore_parity.py runs the package beside
this module on tiny random models of the same classes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

AFFINITY_FILE = Path(__file__).with_name("affinity.json")
#: type pairs whose match is scaled by ``neg_weight`` (a negated finding matched to a finding)
NEG_PAIRS = frozenset({("NON-DISEASE", "DISEASE"), ("NON-ABNORMALITY", "ABNORMALITY"), ("DISEASE", "NON-DISEASE"),
                       ("ABNORMALITY", "NON-ABNORMALITY"), ("NON-DISEASE", "ABNORMALITY"),
                       ("NON-ABNORMALITY", "DISEASE"), ("DISEASE", "NON-ABNORMALITY"),
                       ("ABNORMALITY", "NON-DISEASE")})
Entity = tuple[str, str]  # (text, TYPE)


@lru_cache(maxsize=4)
def affinity(name: str) -> dict[tuple[str, str], float]:
    """The package's type-pair weights (``long`` or ``short``), keys upper-cased as it does."""
    table = json.loads(AFFINITY_FILE.read_text())[name]
    return {(k.split("_")[0].upper(), k.split("_")[1].upper()): float(v) for k, v in table.items()}


_SPLITTER: list[Any] = []
_SPLIT_LOCK = threading.Lock()


def sentence_split(text: str) -> list[str]:
    """medspaCy's PyRuSH sentences of ``text``, stripped, without those that have no word or fewer
    than 3 characters (``RaTEScore/utils.py::sentence_split``)."""
    with _SPLIT_LOCK:
        if not _SPLITTER:
            import medspacy
            from loguru import logger

            logger.disable("PyRuSH")  # it logs every token at DEBUG level (RadEval silences it too)

            # the package asks for ["medspacy_pyrush", "medspacy_conte"]; the misspelt component
            # is not a component, so its pipeline is the tokenizer plus PyRuSH
            _SPLITTER.append(medspacy.load(medspacy_enable=["medspacy_pyrush"]))
        nlp = _SPLITTER[0]
    out = []
    for sent in nlp(text).sents:
        s = str(sent).strip()
        if s.split() and len(s) >= 3:
            out.append(s)
    return out


def decode_bio(tokens: Sequence[str], labels: Sequence[str], tokenizer: Any) -> list[Entity]:
    """The package's ``post_process``: BIO labels of one sentence to (entity text, TYPE), with its
    quirks kept (it looks one label ahead, [CLS]/[SEP] are skipped by their token string, and
    an entity still open at the end runs to the token before [SEP])."""
    spans: list[tuple[int, int, str | None]] = []
    start: int | None = None
    end: int | None = None
    kind: str | None = None
    for i, (token, label) in enumerate(zip(tokens, labels[:len(tokens)])):
        if token in ("[CLS]", "[SEP]") or label == "O" or i >= len(labels) - 1:
            continue
        nxt = labels[i + 1]
        if label.startswith("B-"):
            if nxt.startswith("I-"):
                start, kind = i, label[2:]
            elif nxt.startswith("B-"):
                start = end = i
                spans.append((i, i, label[2:]))
                kind = label[2:]
            elif nxt.startswith("O"):
                spans.append((i, i, label[2:]))
                start = end = kind = None
        elif label.startswith("I-") and (nxt.startswith("B-") or nxt.startswith("O")):
            end = i
            if start is not None:
                spans.append((start, end, kind))
            if nxt.startswith("B-"):
                start, kind = i, label[2:]
            else:
                start = end = kind = None
    if start is not None and end is None:
        spans.append((start, len(tokens) - 2, kind))
    return [(tokenizer.convert_tokens_to_string(list(tokens[s:e + 1])), str(k)) for s, e, k in spans]


class RaTEModels:
    """The tagger and the embedder of two local model directories."""

    def __init__(self, ner_dir: Path, embed_dir: Path, device: str = "cpu") -> None:
        from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification, AutoTokenizer

        self.device = torch.device(device)
        self.ner_tokenizer = AutoTokenizer.from_pretrained(str(ner_dir))
        self.ner = AutoModelForTokenClassification.from_pretrained(str(ner_dir)).eval().to(self.device)
        self.id2label = AutoConfig.from_pretrained(str(ner_dir)).id2label
        self.embed_tokenizer = AutoTokenizer.from_pretrained(str(embed_dir))
        self.embedder = AutoModel.from_pretrained(str(embed_dir)).eval().to(self.device)

    @torch.no_grad()
    def tag(self, sentences: Sequence[str], batch_size: int,
            advance: Callable[[int], Any] | None = None) -> list[list[Entity]]:
        """Entities of each sentence; sentences are tagged in batches of similar length."""
        tok = self.ner_tokenizer
        ids = [tok(s, max_length=512, truncation=True)["input_ids"] for s in sentences]
        order = sorted(range(len(sentences)), key=lambda i: (len(ids[i]), i))
        out: list[list[Entity]] = [[] for _ in sentences]
        for b in range(0, len(order), max(1, batch_size)):
            chunk = order[b:b + max(1, batch_size)]
            enc = tok([sentences[i] for i in chunk], max_length=512, padding=True, truncation=True,
                      return_tensors="pt").to(self.device)
            pred = torch.argmax(self.ner(**enc).logits, dim=2).tolist()
            for row, i in zip(pred, chunk):
                n = len(ids[i])
                labels = [self.id2label[x] for x in row[:n]]
                out[i] = decode_bio(tok.convert_ids_to_tokens(ids[i]), labels, tok)
            if advance is not None:
                advance(len(chunk))
        return out

    @torch.no_grad()
    def embed(self, entities: Sequence[str]) -> torch.Tensor:
        """[CLS] states of one report's entity strings, one padded call (max_length 30), as the package."""
        if not entities:
            return torch.tensor([])
        enc = self.embed_tokenizer(list(entities), truncation=True, padding=True, return_tensors="pt",
                                   max_length=30).to(self.device)
        return self.embedder(**enc).last_hidden_state[:, 0, :].to("cpu")


def weighted_match(a: torch.Tensor, b: torch.Tensor, a_types: Sequence[str], b_types: Sequence[str],
                   weights: dict[tuple[str, str], float]) -> float:
    """The package's ``compute``: each entity of ``a`` takes its most similar entity of ``b``; the
    cosines are averaged with the type-pair weights, negated-type matches scaled by neg_weight."""
    a_n, b_n = F.normalize(a, p=2, dim=1), F.normalize(b, p=2, dim=1)
    neg = weights[("NEG", "WEIGHT")]
    total = norm = 0.0
    for i, row in enumerate(a_n):
        value, index = torch.topk(torch.matmul(b_n, row), 1, largest=True)
        pair = (a_types[i], b_types[int(index[0])])
        w = weights[pair]
        total += float(value[0]) * w * (neg if pair in NEG_PAIRS else 1)
        norm += w
    return total / norm if norm != 0 else 0


def pair_score(ref: tuple[torch.Tensor, list[str]], hyp: tuple[torch.Tensor, list[str]],
               weights: dict[tuple[str, str], float]) -> tuple[float, float, float]:
    """(RaTEScore, P, R) of one pair: 0.5 when either side has no entity (P, R then NaN)."""
    if len(ref[0]) == 0 or len(hyp[0]) == 0:
        return 0.5, float("nan"), float("nan")
    p = weighted_match(ref[0], hyp[0], ref[1], hyp[1], weights)
    r = weighted_match(hyp[0], ref[0], hyp[1], ref[1], weights)
    return (0.0 if p + r == 0 else 2 * p * r / (p + r)), p, r
