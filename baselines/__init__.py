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

#: model weights the generators use (``bench weights fetch NAME``)
WEIGHTS: dict[str, Builtin] = {}
