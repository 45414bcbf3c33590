"""Model weights: which artefacts exist (``spec``), where they are on this machine (``locate``),
how they are fetched at a pinned revision (``fetch``, the one place that downloads) and checked
(``verify``).

Every model-based metric and generator must (a) never download inside scoring or generation,
(b) fail with a message naming the exact file and where to put it, and (c) record the sha256 of
the bytes it used. Entries are registered (kind ``weights``) by the package that uses them.
Only the standard library and platformdirs are imported here; huggingface_hub only by ``fetch``.
"""

from rrg_bench.weights.fetch import fetch, hub_snapshot, safe_extract
from rrg_bench.weights.locate import (
                                      ENV_WEIGHTS_DIR,
                                      SIDECAR_SUFFIX,
                                      default_location,
                                      missing_message,
                                      resolve,
                                      sidecar_path,
                                      weights_dir,
)
from rrg_bench.weights.spec import WeightSpec, names, spec
from rrg_bench.weights.verify import VerifyResult, verify

__all__ = ["ENV_WEIGHTS_DIR", "SIDECAR_SUFFIX", "VerifyResult", "WeightSpec", "default_location", "fetch",
           "hub_snapshot", "missing_message", "names", "resolve", "safe_extract", "sidecar_path", "spec", "verify",
           "weights_dir"]
