"""Registered datasets. A dataset pairs a shipped manifest (ids, paths, reference hashes)
with a loader for the user's own copy of the data."""

BUILTINS: dict[str, str] = {
    "demo": "rrg_bench.datasets.demo:DemoDataset",
    "iu_xray/r2gen": "rrg_bench.datasets.iu_xray:IUXrayR2Gen",
    "mimic_cxr/official": "rrg_bench.datasets.mimic_cxr:MimicCxrOfficial",
    "iu_xray/rexrank": "rrg_bench.datasets.iu_xray_rexrank:IUXrayRexrank",
    "iu_xray/rexrank/findings": "rrg_bench.datasets.iu_xray_rexrank:IUXrayRexrankFindings",
    "mimic_cxr/rexrank": "rrg_bench.datasets.mimic_cxr_rexrank:MimicCxrRexrank",
    "mimic_cxr/rexrank/findings": "rrg_bench.datasets.mimic_cxr_rexrank:MimicCxrRexrankFindings",
    "chexpert_plus/rexrank": "rrg_bench.datasets.chexpert_plus_rexrank:CheXpertPlusRexrank",
}

DEFAULT_DATASET = "demo"
