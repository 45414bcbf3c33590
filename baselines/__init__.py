"""Registered generators (simple text baselines, image retrieval, published models) and the
trainers of the trainable ones.

Names map lazily to ``rrg_bench.api.Generator`` subclasses and to training functions
``train(request: rrg_bench.api.TrainRequest) -> pathlib.Path`` (the checkpoint directory);
nothing heavy is imported until one is used.
"""

from rrg_bench.registry import Builtin

GENERATORS: dict[str, Builtin] = {
    "constant_normal": Builtin("rrg_bench.baselines.simple:ConstantNormal", "rrg_bench.baselines:cards/constant_normal.md",
                               "the same normal report for every study (a floor)"),
    "random_report": Builtin("rrg_bench.baselines.simple:RandomReport", "rrg_bench.baselines:cards/random_report.md",
                             "a random training report per study (a floor)"),
    "oracle": Builtin("rrg_bench.baselines.simple:Oracle", "rrg_bench.baselines:cards/oracle.md",
                      "the reference itself (sanity check, never ranked)"),
    "knn_image": Builtin("rrg_bench.baselines.retrieval:KnnImage", "rrg_bench.baselines:cards/knn_image.md",
                         "report of the nearest training image"),
    "anat_attn": Builtin("rrg_bench.baselines.anat_attn.generate:AnatAttnGenerator",
                         "rrg_bench.baselines.anat_attn:CARD.md",
                         "LAnA: frozen DINOv3 + GPT-2 with layer-wise anatomical attention"),
    "am_mrg": Builtin("rrg_bench.baselines.am_mrg.generate:AMMRGGenerator", "rrg_bench.baselines.am_mrg:CARD.md",
                      "AM-MRG: disease-aware vision tokens, Hopfield memories, an LLM"),
    "s2d_align": Builtin("rrg_bench.baselines.s2d_align.generate:S2DAlignGenerator",
                         "rrg_bench.baselines.s2d_align:CARD.md",
                         "S2D-Align (unofficial, from abstract): staged alignment MLLM"),
}

TRAINERS: dict[str, Builtin] = {
    name: Builtin(f"rrg_bench.baselines.{name}.train:train", GENERATORS[name].card, f"train {name} (`bench train`)")
    for name in ("anat_attn", "am_mrg", "s2d_align")
}
