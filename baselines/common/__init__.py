"""Pieces several generators share, so each model package holds only what is its own.

Images (``images``: choosing, decoding, normalising), checkpoints (``checkpoints``: resolving and
hashing; hub ids go through ``rrg_bench.weights``), generation helpers (``generation``), the vision
side and the image-prefix LLM base of am_mrg and s2d_align (``vision``, ``mllm``, ``llm``, ``lora``,
``dtype``), tiny offline models (``tiny``), the encoder feature cache, and training: recipes and
presets (``presets``), splits that refuse the test split (``splits``), the ``accelerate`` set-up
(``accelerator``), the session around the loop (``session``) and the resumable loop itself
(``trainloop``). Kept empty of imports so that ``bench ls`` never loads torch through this package.
"""
