"""Registered datasets. A dataset pairs a shipped manifest (ids, paths, reference hashes)
with a loader for the user's own copy of the data."""

BUILTINS: dict[str, str] = {
    "demo": "bench.datasets.demo:DemoDataset",
    "iu_xray/r2gen": "bench.datasets.iu_xray:IUXrayR2Gen",
    "mimic_cxr/official": "bench.datasets.mimic_cxr:MimicCxrOfficial",
}

DEFAULT_DATASET = "demo"
