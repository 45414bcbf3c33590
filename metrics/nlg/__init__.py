"""BLEU-1..4, METEOR, ROUGE-L and CIDEr-D with pycocoevalcap 1.2's scorers used as a library.

Why a wrapper and not ``COCOEvalCap``: the field's numbers come from these scorers, so the
corpus values must be exactly theirs, but the bundled glue is unsafe for a benchmark — the
PTB tokeniser silently misaligns ids when a text holds a line break other than ``\\n`` and
writes into site-packages; the METEOR wrapper desyncs on a newline, never drains stderr,
has no timeout and can hang at interpreter exit; SPICE downloads at run time. So the
numeric work is pycocoevalcap's (``BleuScorer``, ``Rouge``, ``Cider``, the METEOR 1.5 jar,
CoreNLP's PTBTokenizer with pycocoevalcap's punctuation list) and only the process
handling is ours (:mod:`.java`, :mod:`.meteor`, :mod:`.ptb`): both JVMs stay up for the process
and serve every later call (:mod:`.pool`), METEOR can be sharded over several jars with the
jar's own merge (``--workers``). Two speed-ups change no value: METEOR runs in a small server
whose paraphrase table holds only the entries the call's texts can use and which normalises
each text once (:mod:`.meteor_server`, :mod:`.paraphrases`), and pycocoevalcap's three slowest
Python loops are rewritten (:mod:`.fast_coco`). Parity tests pin every value to a direct pycocoevalcap call.

Per-study sufficient statistics (BLEU clipped counts and lengths, METEOR's 23 jar
statistics, per-study ROUGE-L and CIDEr-D) let :meth:`NLGScorer.aggregate` recompute the
corpus values for any resample of studies (:mod:`.maths`), which is what bootstrap CIs and
paired tests need. The text convention is a pluggable normaliser (``tok=ptb`` | ``tok=r2gen``,
:mod:`.normalisers`); ``conv=r2gen`` is the one convention that needs more than the texts
(the dataset's train reports, for R2Gen's vocabulary), its rules are in :mod:`.r2gen`.
The definitions, conventions and pitfalls are in CARD.md beside this file.
"""

from rrg_bench.metrics.nlg.scorer import NLGScorer

__all__ = ["NLGScorer"]
