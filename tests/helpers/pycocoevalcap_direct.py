"""pycocoevalcap 1.2 called directly, as COCOEvalCap does: the reference our NLG values must equal."""

from __future__ import annotations


def direct_pycocoevalcap(refs: dict[str, str], hyps: dict[str, str],
                         per_sentence: dict[str, list[float]] | None = None) -> dict[str, float]:
    """Corpus BLEU-1..4, METEOR, ROUGE-L, CIDEr-D under PTB tokenisation, keyed by our metric ids;
    ``per_sentence`` (if given) receives the per-sentence lists, in the order of ``refs``."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": v}] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": v}] for k, v in hyps.items()})
    out: dict[str, float] = {}
    bleu, bleu_lists = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"bleu{i + 1}[tok=ptb]": b for i, b in enumerate(bleu)})
    meteor = Meteor()
    out["meteor[tok=ptb]"], meteor_list = meteor.compute_score(gts, res)
    meteor.__del__()  # pycocoevalcap 1.2 closes its METEOR process only there
    out["rouge_l[tok=ptb]"], rouge_list = Rouge().compute_score(gts, res)
    out["cider_d[tok=ptb]"], cider_list = Cider().compute_score(gts, res)
    if per_sentence is not None:  # what pycocoevalcap returns per sentence, in the order of ``refs``
        per_sentence.update({f"bleu{i + 1}[tok=ptb]": list(b) for i, b in enumerate(bleu_lists)})
        per_sentence.update({"meteor[tok=ptb]": list(meteor_list), "rouge_l[tok=ptb]": list(rouge_list),
                             "cider_d[tok=ptb]": list(cider_list)})
    return out
