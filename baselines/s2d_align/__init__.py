"""S2D-Align (shallow-to-deep auxiliary SFT with a shared memory adapter), an open approximation.

No code of the paper (arXiv 2511.11066) is public; every design choice beyond its abstract is a
named config switch listed in CARD.md as "not verified against the paper". Kept empty of imports
so `bench ls` stays fast; the registry imports ``generate`` / ``train`` lazily.
"""
