"""Registered generators: simple text baselines, image retrieval, and published models.

Names map lazily to ``bench.generator.Generator`` subclasses; nothing heavy is imported
until a generator is used.
"""

BUILTINS: dict[str, str] = {
    "constant_normal": "rrg_bench.baselines.simple:ConstantNormal",
    "random_report": "rrg_bench.baselines.simple:RandomReport",
    "oracle": "rrg_bench.baselines.simple:Oracle",
    "knn_image": "rrg_bench.baselines.retrieval:KnnImage",
    "anat_attn": "rrg_bench.baselines.anat_attn.generate:AnatAttnGenerator",
    "am_mrg": "rrg_bench.baselines.am_mrg.generate:AMMRGGenerator",
    "s2d_align": "rrg_bench.baselines.s2d_align.generate:S2DAlignGenerator",
}

#: generators that can be trained with ``bench train --model NAME``: name -> "module:function"
#: with signature ``train(request: bench.training.TrainRequest) -> pathlib.Path`` (the checkpoint dir)
TRAINERS: dict[str, str] = {
    "anat_attn": "rrg_bench.baselines.anat_attn.train:train",
    "am_mrg": "rrg_bench.baselines.am_mrg.train:train",
    "s2d_align": "rrg_bench.baselines.s2d_align.train:train",
}
