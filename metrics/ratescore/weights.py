"""The two models RaTEScore uses: the RaTE-NER DeBERTa tagger and the BioLORD-2023-C embedder."""

from rrg_bench.weights.spec import WeightSpec

RATE_NER = WeightSpec(
    name="rate-ner-deberta", repo_id="Angelakeke/RaTE-NER-Deberta",
    # the newest commit shown on the model's Hub pages when this entry was written (not downloaded here)
    revision="66d4b8189374f9b137e1b8633951ca4b4d758673",
    files=("config.json", "model.safetensors", "added_tokens.json", "special_tokens_map.json", "spm.model",
           "tokenizer.json", "tokenizer_config.json"),
    kind="files", env="BENCH_RATE_NER_DIR",
    description="RaTE-NER DeBERTa-v3 token classifier (RaTEScore's entity tagger, 11 BIO labels)",
    marker="config.json", upstream=("hf-cache",),
)
BIOLORD = WeightSpec(
    name="biolord-2023-c", repo_id="FremyCompany/BioLORD-2023-C",
    revision=None,  # not learnable offline: recorded at first fetch
    files=("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
           "vocab.txt"),
    kind="files", env="BENCH_BIOLORD_DIR",
    description="BioLORD-2023-C MPNet encoder (RaTEScore's entity embedder, [CLS] pooling)",
    marker="config.json", upstream=("hf-cache",),
)
