"""Committed dataset manifests, shipped inside the wheel and read with importlib.resources.

One folder per dataset name (``iu_xray/r2gen``, ``mimic_cxr/official``, ``demo``), each with
``manifest.yaml``, ``<split>.jsonl`` and a ``README.md`` card. The sub-folders are packages
only so that setuptools ships them; ``rrg_bench.manifests`` is the reader.
"""
