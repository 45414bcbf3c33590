"""Shipped dataset manifests (ids, paths, reference hashes), read through importlib.resources."""
