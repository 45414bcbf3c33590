"""The content-addressed annotation cache (sqlite): keys, the store, transfer, and cached annotation.

See ``rrg_bench.cache.store`` for why it exists and how concurrent writers are kept safe.
"""

from rrg_bench.cache.annotate import annotate_cached
from rrg_bench.cache.keys import NORMALISERS, cache_key, normalise, text_hash
from rrg_bench.cache.store import DB_NAME, ENV_DIR, SCHEMA_VERSION, AnnotationCache, CacheError, default_path

__all__ = ["DB_NAME", "ENV_DIR", "NORMALISERS", "SCHEMA_VERSION", "AnnotationCache", "CacheError", "annotate_cached",
           "cache_key", "default_path", "normalise", "text_hash"]
