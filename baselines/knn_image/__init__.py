"""knn_image: the report of the most similar training image (nearest-neighbour retrieval).

Kept empty of imports so `bench ls` stays fast; the registry imports ``generate`` lazily. See
CARD.md for the selection rule, the encoders and the fingerprint.
"""
