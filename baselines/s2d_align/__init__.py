"""S2D-Align (shallow-to-deep auxiliary SFT with a shared memory adapter), unofficial, from the abstract.

No code, weights or paper body of S2D-Align (arXiv 2511.11066) were released; every design choice
beyond its abstract is a named config switch listed in CARD.md as "not verified against the paper",
and every record and table shows it as "S2D-Align (unofficial, from abstract)". Kept empty of
imports so `bench ls` stays fast; the registry imports ``generate`` / ``train`` lazily.
"""
