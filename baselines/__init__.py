"""Registered generators: simple text baselines, image retrieval, and published models.

Names map lazily to ``bench.generator.Generator`` subclasses; nothing heavy is imported
until a generator is used.
"""

BUILTINS: dict[str, str] = {
    "constant_normal": "baselines.simple:ConstantNormal",
    "random_report": "baselines.simple:RandomReport",
    "oracle": "baselines.simple:Oracle",
    "knn_image": "baselines.retrieval:KnnImage",
    "anat_attn": "baselines.anat_attn.generate:AnatAttnGenerator",
    "am_mrg": "baselines.am_mrg.generate:AMMRGGenerator",
    "s2d_align": "baselines.s2d_align.generate:S2DAlignGenerator",
}

#: generators that can be trained with ``bench train --model NAME``: name -> "module:function"
#: with signature ``train(request: bench.training.TrainRequest) -> pathlib.Path`` (the checkpoint dir)
TRAINERS: dict[str, str] = {
    "anat_attn": "baselines.anat_attn.train:train",
    "am_mrg": "baselines.am_mrg.train:train",
    "s2d_align": "baselines.s2d_align.train:train",
}
