"""SRR-BERT's classifier and the tokenizer RadEval pairs it with (CXR-BERT-general's vocabulary)."""

from rrg_bench.weights.spec import WeightSpec

SRR_BERT = WeightSpec(
    name="srr-bert-leaves-with-statuses", repo_id="StanfordAIMI/SRR-BERT-Leaves-with-Statuses",
    revision=None,  # the Hub page showed commit aaae29e (short id only): recorded at first fetch
    files=("config.json", "model.safetensors"), kind="files", env="BENCH_SRR_BERT_DIR",
    description="SRR-BERT leaves-with-statuses classifier (BertForSequenceClassification, 163 labels)",
    size={"model.safetensors": 438_000_000}, marker="config.json", upstream=("hf-cache",),
)
CXR_BERT_TOKENIZER = WeightSpec(
    name="cxr-bert-general-tokenizer", repo_id="microsoft/BiomedVLP-CXR-BERT-general",
    revision=None,
    files=("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"), kind="files",
    env="BENCH_CXR_BERT_TOKENIZER_DIR",
    description="BiomedVLP-CXR-BERT-general tokenizer files (SRR-BERT's BertTokenizer; no weights)",
    marker="vocab.txt", upstream=("hf-cache",),
)
