"""Pieces shared by the trainable published-model baselines (anat_attn, am_mrg, …).

Image preprocessing, checkpoint resolution and hashing, the encoder feature cache, the BPE
tokenizer used by tiny test checkpoints, and the resumable ``accelerate`` training loop. Kept
empty of imports so that ``bench ls`` never loads torch through this package.
"""
