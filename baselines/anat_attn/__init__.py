"""LAnA (layer-wise anatomical attention) re-implemented: model, masks, training, generator.

Kept empty of imports so `bench ls` stays fast; the registry imports ``generate`` / ``train`` lazily.
See CARD.md for the architecture, switches, presets and what was verified.
"""
