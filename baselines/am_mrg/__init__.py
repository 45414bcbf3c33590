"""AM-MRG (disease-aware vision token memories + Hopfield retrieval + LLM) re-implemented.

Kept empty of imports so `bench ls` stays fast; the registry imports ``generate`` / ``train`` lazily.
See CARD.md for the two stages, the memories, the deviations from the paper and the GPU recipe.
"""
