"""The weights CheXbert needs: the labeler checkpoint and bert-base-uncased's tokenizer files."""

from rrg_bench.weights.spec import WeightSpec

#: StanfordAIMI/RRG_scorers commit pinned for chexbert.pth and the RadGraph archives. The same
#: commit appears as the snapshot of these files in several independent public projects (HF
#: cache paths ``models--StanfordAIMI--RRG_scorers/snapshots/6646433b…``); the sha256 values
#: below were published by projects that downloaded them. Not downloaded here (no HF access).
RRG_SCORERS_REPO = "StanfordAIMI/RRG_scorers"
RRG_SCORERS_REVISION = "6646433b3ad83a10f6e141db76d0ece44312b236"
#: google-bert/bert-base-uncased commit (the snapshot id seen in HF caches since the repo moved)
BERT_BASE_UNCASED_REPO = "google-bert/bert-base-uncased"
BERT_BASE_UNCASED_REVISION = "86b5e0934494bd15c9632b12f734a8a67f723594"

CHEXBERT = WeightSpec(
    name="chexbert", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
    files=("chexbert.pth",), kind="file", env="BENCH_CHEXBERT_CKPT",
    description="CheXbert labeler checkpoint (Smit et al. 2020), as used by f1chexbert 0.0.2",
    sha256={"chexbert.pth": "6550703c92d640e1e04d8105a7a185d76ece0f25fcbf033d292785bf22c0fde1"},
    size={"chexbert.pth": 1_314_414_442}, upstream=("f1chexbert",),
)

BERT_BASE_UNCASED = WeightSpec(
    name="bert-base-uncased", repo_id=BERT_BASE_UNCASED_REPO, revision=BERT_BASE_UNCASED_REVISION,
    files=("vocab.txt", "tokenizer_config.json", "config.json"), kind="files", env="BENCH_BERT_BASE_UNCASED_DIR",
    description="bert-base-uncased tokenizer vocabulary and config (CheXbert's tokenizer; no weights)",
    # the vocab.txt sha256 equals that of the copy shipped in all-MiniLM-L6-v2 (same vocabulary)
    sha256={"vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"},
    marker="vocab.txt", upstream=("hf-cache",), aliases=("bert-base-uncased",),
)
