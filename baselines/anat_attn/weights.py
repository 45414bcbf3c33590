"""The weights anat_attn asks for: the authors' released LAnA checkpoints and the backbones training starts from.

``bench run --model anat_attn`` with no ``checkpoint=`` uses ``lana-arxiv`` (the paper's model), imported on
first use into our format (``importer.import_cached``); ``bench train`` builds a new model from ``dinov3-vits16``
and ``gpt2``. None of the LAnA revisions (or file hashes) could be learned here, so they are unpinned: ``bench
weights fetch`` records the commit and the sha256 of what it got, and a run records the sha256 of the file it
imported.
"""

from rrg_bench.weights.spec import WeightSpec

#: openai-community/gpt2 commit: the snapshot id of model.safetensors and tokenizer.json seen in many public
#: HF cache paths (``models--gpt2/snapshots/607a30d7…``); not downloaded here (no Hub access)
GPT2_REVISION = "607a30d783dfa663caf39e06633721c8d4cfcd7e"

#: what scripts/package_lana_arxiv.py (layer-wise-anatomical-attention@a017e7b) writes next to the weights:
#: the legacy state dict, its config, and GPT-2's tokenizer files (``GPT2Tokenizer.save_pretrained``)
LANA_ARXIV = WeightSpec(
    name="lana-arxiv", repo_id="manu02/LAnA-Arxiv", revision=None,
    files=("arxiv_paper_model.pth", "config.json", "vocab.json", "merges.txt", "tokenizer_config.json"),
    kind="files", env="BENCH_LANA_ARXIV_DIR",
    description="LAnA-Arxiv: the authors' paper checkpoint (model_best7.pth renamed), legacy CustomModel state dict",
    marker="arxiv_paper_model.pth", upstream=("hf-cache",),
)


def _later(name: str, repo: str, what: str) -> WeightSpec:
    """A later ``lana_radgen`` release: model.safetensors (segmenters included), config.json and GPT-2's tokenizer
    files at the repo root (layer-wise-anatomical-attention: src/lana_radgen/hub.py ``_build_hf_package``)."""
    return WeightSpec(
        name=name, repo_id=repo, revision=None, files=("model.safetensors", "config.json", "vocab.json", "merges.txt"),
        kind="files", env=f"BENCH_{name.upper().replace('-', '_')}_DIR",
        description=f"{what} (authors' later lana_radgen packaging, imported with its own mechanism)",
        marker="model.safetensors", upstream=("hf-cache",),
    )


LANA = _later("lana", "manu02/LAnA", "LAnA, the authors' later release")
LANA_MIMIC = _later("lana-mimic", "manu02/LAnA-MIMIC", "LAnA trained on MIMIC-CXR")
LANA_MIMIC_CHEXPERT = _later("lana-mimic-chexpert", "manu02/LAnA-MIMIC-CHEXPERT",
                             "LAnA trained on MIMIC-CXR and CheXpert Plus")
LANA_V2 = _later("lana-v2", "manu02/LAnA-v2", "LAnA v2")
LANA_V3 = _later("lana-v3", "manu02/LAnA-v3", "LAnA v3")
LANA_V4 = _later("lana-v4", "manu02/LAnA-v4", "LAnA v4")
LANA_V5 = _later("lana-v5", "manu02/LAnA-v5", "LAnA v5")

#: training's starting weights (the paper's): gated on the Hub (accept the DINOv3 licence first)
DINOV3_VITS16 = WeightSpec(
    name="dinov3-vits16", repo_id="facebook/dinov3-vits16-pretrain-lvd1689m", revision=None,
    files=("config.json", "model.safetensors", "preprocessor_config.json"), kind="files",
    env="BENCH_DINOV3_VITS16_DIR", description="DINOv3 ViT-S/16 (LVD-1689M), LAnA's frozen image encoder",
    marker="model.safetensors", upstream=("hf-cache",),
)
GPT2 = WeightSpec(
    name="gpt2", repo_id="openai-community/gpt2", revision=GPT2_REVISION,
    files=("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
           "generation_config.json"),
    kind="files", env="BENCH_GPT2_DIR", description="GPT-2 small and its tokenizer, LAnA's text decoder",
    marker="model.safetensors", upstream=("hf-cache",), aliases=("gpt2",),
)

#: ``weights`` entry name of each default starting model (``presets.DEFAULT_VISION_MODEL`` / ``DEFAULT_DECODER_MODEL``)
BACKBONES = {DINOV3_VITS16.repo_id: DINOV3_VITS16.name, "gpt2": GPT2.name, GPT2.repo_id: GPT2.name}
