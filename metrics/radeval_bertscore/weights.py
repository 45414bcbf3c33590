"""The encoder RadEval-BERTScore matches tokens with."""

from rrg_bench.weights.spec import WeightSpec

RADEVAL_MODERNBERT = WeightSpec(
    name="radeval-modernbert", repo_id="IAMJB/RadEvalModernBERT",
    revision=None,  # not learnable offline: recorded at first fetch
    files=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"),
    kind="files", env="BENCH_RADEVAL_MODERNBERT_DIR",
    description="RadEvalModernBERT (ModernBertModel, 22 layers; RadEval-BERTScore's encoder)",
    size={"model.safetensors": 596_000_000}, marker="config.json", upstream=("hf-cache",),
)

#: RadEval's plain ``bertscore`` (distilbert-base-uncased, layer 5, rescaled): the ``bertscore`` scorer
#: looks for it in ``<weights dir>/distilbert-base-uncased``, where this entry is fetched to
DISTILBERT_BASE_UNCASED = WeightSpec(
    name="distilbert-base-uncased", repo_id="distilbert/distilbert-base-uncased", revision=None,
    files=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"),
    kind="files", env="BENCH_DISTILBERT_BASE_UNCASED_DIR",
    description="distilbert-base-uncased (RadEval's bertscore encoder, via the bertscore scorer)",
    marker="config.json", upstream=("hf-cache",), aliases=("distilbert-base-uncased",),
)
