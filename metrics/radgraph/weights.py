"""The RadGraph models radgraph 0.1.18 ships, as archives of StanfordAIMI/RRG_scorers."""

from rrg_bench.metrics.chexbert.weights import RRG_SCORERS_REPO, RRG_SCORERS_REVISION
from rrg_bench.weights.spec import WeightSpec

RADGRAPH = WeightSpec(
    name="radgraph", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
    files=("radgraph.tar.gz",), kind="archive", env="BENCH_RADGRAPH_MODEL_DIR",
    description="RadGraph v1 model (radgraph 0.1.18 model_type='radgraph'; ReXrank/RadCliQ variant)",
    marker="config.json", upstream=("radgraph",),
)
RADGRAPH_XL = WeightSpec(
    name="radgraph-xl", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
    files=("radgraph-xl.tar.gz",), kind="archive", env="BENCH_RADGRAPH_MODEL_DIR",
    description="RadGraph-XL model (radgraph 0.1.18 default model_type)",
    sha256={"radgraph-xl.tar.gz": "fadb5a3454e8996714b609e3105a07e447fa61aa88fffe966b650959475117b6"},
    size={"radgraph-xl.tar.gz": 416_179_571}, marker="config.json", upstream=("radgraph",),
)
MODERN_RADGRAPH_XL = WeightSpec(
    name="modern-radgraph-xl", repo_id=RRG_SCORERS_REPO, revision=RRG_SCORERS_REVISION,
    files=("modern-radgraph-xl.tar.gz",), kind="archive", env="BENCH_RADGRAPH_MODEL_DIR",
    description="ModernBERT RadGraph-XL model (radgraph 0.1.18 model_type='modern-radgraph-xl')",
    sha256={"modern-radgraph-xl.tar.gz": "dfc715608d0f1bfc15168f80cd1953ea63bd7960a5506401848858f8dbdea5ff"},
    size={"modern-radgraph-xl.tar.gz": 579_388_064}, marker="config.json", upstream=("radgraph",),
)
