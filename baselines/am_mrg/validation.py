"""What the authors train on and how they pick a checkpoint: R2Gen-cleaned report text, and validation
BLEU-4 of generated reports.

Why: AM-MRG's data helper cleans every report with R2Gen's cleaner before tokenising it
(Event-AHU/Medical_Image_Analysis@fc615ec:AM_MRG/dataset/data_helper.py, ``clean_report``), and its
validation generates a report for every validation sample with the test decoding, scores it with
pycocoevalcap's BLEU against the cleaned reference *tokenised, cut to ``max_length`` tokens and decoded
again*, and saves a checkpoint when ``0.5 · BLEU-4`` beats the best so far (AM_MRG.py ``validation_step``,
``on_validation_epoch_end``). The cleaner is the harness's own R2Gen re-implementation
(``metrics.nlg.r2gen``); the reference round trip is the training batch's own token ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rrg_bench.metrics.nlg.r2gen import CLEANERS

#: the selection score is BLEU-4 (the authors weigh it by 0.5, which picks the same checkpoint)
SCORE = "bleu4"


def report_cleaner(dataset: str, report_text: str) -> Callable[[str], str]:
    """The training text of a report: as given (``raw``) or R2Gen's cleaner of the dataset's family
    (IU X-Ray's for ``iu_xray/*``; MIMIC-CXR's for everything else, as the authors ran CheXpert Plus)."""
    if report_text == "raw":
        return lambda text: text
    family = dataset.split("/", 1)[0]
    return CLEANERS["iu_xray" if family == "iu_xray" else "mimic_cxr"]


def corpus_bleu4(hypotheses: list[str], references: list[str]) -> float:
    """pycocoevalcap's corpus BLEU-4 (whitespace tokens, closest reference length), one reference each."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    if not hypotheses:
        return 0.0
    scorer = BleuScorer(n=4)
    for hyp, ref in zip(hypotheses, references):
        scorer += (hyp, [ref])
    score, _ = scorer.compute_score(option="closest", verbose=0)
    return float(score[3])


class BleuSelection:
    """``ModelIO.score``: generate each validation report with the checkpoint's decoding, score BLEU-4
    against the batch's own report tokens decoded (the authors' truncated references), on every rank."""

    def __init__(self, tokenizer: Any, decoding: dict[str, Any], accelerator: Any) -> None:
        self.tokenizer, self.decoding, self.accelerator = tokenizer, decoding, accelerator

    def _references(self, batch: dict[str, Any]) -> list[str]:
        rows = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, self.tokenizer.eos_token_id).tolist()
        return [text for text, _, _ in self._decode(rows)]

    def _decode(self, rows: Iterable[list[int]]) -> list[tuple[str, int, bool]]:
        from rrg_bench.baselines.common.generation import decode_rows

        return decode_rows(self.tokenizer, list(rows), self.tokenizer.eos_token_id)

    def __call__(self, unwrapped: Any, val_loader: Any) -> float:
        import torch

        pairs: list[tuple[str, str]] = []
        was_training = unwrapped.training
        unwrapped.eval()
        with torch.no_grad():
            for batch in val_loader:
                out = unwrapped.generate_reports(
                    pixel_values=batch.get("pixel_values"), image_counts=batch.get("image_counts"),
                    image_features=batch.get("image_features"), **self.decoding)
                hyps = [text for text, _, _ in self._decode(out.tolist())]
                pairs.extend(zip(hyps, self._references(batch)))
        unwrapped.train(was_training)
        pairs = self.accelerator.gather_for_metrics(pairs, use_gather_object=True)
        return corpus_bleu4([h for h, _ in pairs], [r for _, r in pairs])


def generation_options(config: Any) -> dict[str, Any]:
    """The authors' validation decoding = their test decoding: beam 3, repetition and length penalty 2.0,
    the checkpoint's min/max new tokens, no sampling, no n-gram blocking."""
    from rrg_bench.baselines.am_mrg.configuration import PAPER_DECODING

    return {**PAPER_DECODING, "min_new_tokens": config.min_new_tokens, "max_new_tokens": config.max_new_tokens}
