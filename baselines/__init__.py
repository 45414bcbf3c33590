"""Registered generators (simple text baselines, image retrieval, published models) and the
trainers of the trainable ones.

Every generator is a folder named after it, holding its code and its CARD.md; the generator class
is in ``<name>/generate.py`` and a trainer in ``<name>/train.py``. Names map lazily to
``rrg_bench.api.Generator`` subclasses and to training functions
``train(request: rrg_bench.api.TrainRequest) -> pathlib.Path`` (the checkpoint directory);
nothing heavy is imported until one is used. Pieces several generators share are in ``common/``.
"""

from rrg_bench.registry import Builtin


def _builtin(name: str, cls: str, summary: str) -> Builtin:
    return Builtin(f"rrg_bench.baselines.{name}.generate:{cls}", f"rrg_bench.baselines.{name}:CARD.md", summary)


GENERATORS: dict[str, Builtin] = {
    "constant_normal": _builtin("constant_normal", "ConstantNormal",
                                "the same normal report for every study (a floor)"),
    "random_report": _builtin("random_report", "RandomReport", "a random training report per study (a floor)"),
    "oracle": _builtin("oracle", "Oracle", "the reference itself (sanity check, never ranked)"),
    "knn_image": _builtin("knn_image", "KnnImage", "report of the nearest training image"),
    "anat_attn": _builtin("anat_attn", "AnatAttnGenerator",
                          "LAnA: frozen DINOv3 + GPT-2 with layer-wise anatomical attention"),
    "am_mrg": _builtin("am_mrg", "AMMRGGenerator", "AM-MRG: disease-aware vision tokens, Hopfield memories, an LLM"),
    "s2d_align": _builtin("s2d_align", "S2DAlignGenerator",
                          "S2D-Align (unofficial, from abstract): staged alignment MLLM"),
}

TRAINERS: dict[str, Builtin] = {
    name: Builtin(f"rrg_bench.baselines.{name}.train:train", GENERATORS[name].card, f"train {name} (`bench train`)")
    for name in ("anat_attn", "am_mrg", "s2d_align")
}


def _weights(attr: str, generator: str, summary: str) -> Builtin:
    return Builtin(f"rrg_bench.baselines.{generator}.weights:{attr}", GENERATORS[generator].card, summary)


#: model weights the generators use (``bench weights fetch NAME``); each entry's card is its generator's
WEIGHTS: dict[str, Builtin] = {
    "lana-arxiv": _weights("LANA_ARXIV", "anat_attn", "LAnA-Arxiv, the paper's checkpoint (anat_attn's default)"),
    "lana": _weights("LANA", "anat_attn", "LAnA (authors' later release, lana_radgen layout)"),
    "lana-mimic": _weights("LANA_MIMIC", "anat_attn", "LAnA-MIMIC (lana_radgen layout)"),
    "lana-mimic-chexpert": _weights("LANA_MIMIC_CHEXPERT", "anat_attn", "LAnA-MIMIC-CHEXPERT (lana_radgen layout)"),
    "lana-v2": _weights("LANA_V2", "anat_attn", "LAnA-v2 (lana_radgen layout)"),
    "lana-v3": _weights("LANA_V3", "anat_attn", "LAnA-v3 (lana_radgen layout)"),
    "lana-v4": _weights("LANA_V4", "anat_attn", "LAnA-v4 (lana_radgen layout)"),
    "lana-v5": _weights("LANA_V5", "anat_attn", "LAnA-v5 (lana_radgen layout)"),
    "dinov3-vits16": _weights("DINOV3_VITS16", "anat_attn", "DINOv3 ViT-S/16, anat_attn's image encoder (training)"),
    "gpt2": _weights("GPT2", "anat_attn", "GPT-2 small + tokenizer, anat_attn's decoder (training)"),
    "blip2-qformer-flant5xxl": _weights("BLIP2_QFORMER", "am_mrg", "BLIP-2 Q-Former (LAVIS), am_mrg's stage-2 start"),
    "mambaxray-clip-l": _weights("MAMBAXRAY_CLIP_L", "am_mrg", "ARM-L (MambaXrayCLIP-L.pth), am_mrg's encoder"),
    "am-mrg-stage1": _weights("STAGE1", "am_mrg", "AM-MRG authors' Stage1ckpt.pth (disease tokens)"),
    "am-mrg-cam": _weights("CAM", "am_mrg", "AM-MRG authors' CAM.pkl (visual memory)"),
    "am-mrg-report-memory": _weights("REPORT_MEMORY", "am_mrg", "AM-MRG authors' Report_Memory.pkl (report memory)"),
    "am-mrg-stage2-chexpert-plus": _weights("STAGE2_CHEXPERT_PLUS", "am_mrg",
                                            "AM-MRG authors' Stage2CheXpertPlus.pth (generator)"),
}
