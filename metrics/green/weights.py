"""The GREEN judge: RadLlama2-7b fine-tuned by the GREEN authors (with its own tokenizer code)."""

from rrg_bench.weights.spec import WeightSpec

GREEN_RADLLAMA2_7B = WeightSpec(
    name="green-radllama2-7b", repo_id="StanfordAIMI/GREEN-RadLlama2-7b",
    # the newest commit listed on the model's Hub pages when this entry was written (not downloaded here)
    revision="832389d56bbd45a36bbd61dfa4f0be76e99f1dad",
    files=("config.json", "generation_config.json", "model.safetensors.index.json",
           "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
           "model-00003-of-00003.safetensors", "added_tokens.json", "special_tokens_map.json", "tokenizer.model",
           "tokenizer_config.json", "tokenization_chexagent.py"),
    kind="files", env="BENCH_GREEN_MODEL_DIR",
    description="GREEN-RadLlama2-7b judge (LlamaForCausalLM 7B; its tokenizer is the repo's own code)",
    size={"model-00001-of-00003.safetensors": 4_940_000_000, "model-00002-of-00003.safetensors": 4_950_000_000,
          "model-00003-of-00003.safetensors": 3_590_000_000},
    marker="config.json", upstream=("hf-cache",),
)
