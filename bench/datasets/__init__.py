"""Registered datasets and the preparers of those built from credentialed data.

A dataset pairs a shipped manifest (ids, paths, reference hashes) with a loader for the user's
own copy of the data; its card is the manifest folder's README. One folder per dataset family
(``demo``, ``iu_xray``, ``mimic_cxr``, ``chexpert_plus``); what the families share is in
``base`` (every manifest-backed dataset), ``prepared`` (datasets prepared locally from
credentialed data), ``rexrank_policy`` and ``rexrank_json`` (ReXrank's references and files).
"""

from rrg_bench.registry import Builtin

DEFAULT_DATASET = "demo"


def _card(name: str) -> str:
    return f"rrg_bench.data_manifests.{name.replace('/', '.')}:README.md"


DATASETS: dict[str, Builtin] = {
    "demo": Builtin("rrg_bench.datasets.demo.dataset:DemoDataset", _card("demo"),
                    "synthetic reports and images written by rrg-bench (first-run default)"),
    "iu_xray/r2gen": Builtin("rrg_bench.datasets.iu_xray.r2gen:IUXrayR2Gen", _card("iu_xray/r2gen"),
                             "IU X-Ray, R2Gen split 2069/296/590, findings"),
    "iu_xray/rexrank": Builtin("rrg_bench.datasets.iu_xray.rexrank:IUXrayRexrank", _card("iu_xray/rexrank"),
                               "IU X-Ray as ReXrank scores it (findings + impression)"),
    "iu_xray/rexrank/findings": Builtin("rrg_bench.datasets.iu_xray.rexrank:IUXrayRexrankFindings",
                                        _card("iu_xray/rexrank/findings"), "IU X-Ray as ReXrank, findings only"),
    "mimic_cxr/official": Builtin("rrg_bench.datasets.mimic_cxr.official:MimicCxrOfficial",
                                  _card("mimic_cxr/official"),
                                  "MIMIC-CXR 2.0.0 official split, findings, frontal (prepared locally)"),
    "mimic_cxr/r2gen": Builtin("rrg_bench.datasets.mimic_cxr.r2gen:MimicCxrR2Gen", _card("mimic_cxr/r2gen"),
                               "MIMIC-CXR as R2Gen: one entry per image, R2Gen-cleaned findings (prepared locally)"),
    "mimic_cxr/rexrank": Builtin("rrg_bench.datasets.mimic_cxr.rexrank:MimicCxrRexrank", _card("mimic_cxr/rexrank"),
                                 "ReXrank's 2,347 MIMIC-CXR test studies (prepared locally)"),
    "mimic_cxr/rexrank/findings": Builtin("rrg_bench.datasets.mimic_cxr.rexrank:MimicCxrRexrankFindings",
                                          _card("mimic_cxr/rexrank/findings"), "ReXrank MIMIC-CXR, findings only"),
    "chexpert_plus/rexrank": Builtin("rrg_bench.datasets.chexpert_plus.rexrank:CheXpertPlusRexrank",
                                     _card("chexpert_plus/rexrank"),
                                     "CheXpert Plus valid as ReXrank (prepared locally)"),
}

PREPARERS: dict[str, Builtin] = {
    "mimic_cxr/official": Builtin("rrg_bench.datasets.mimic_cxr.prepare:MimicCxrOfficialPreparer",
                                  _card("mimic_cxr/official"), "from PhysioNet MIMIC-CXR(-JPG) 2.0.0"),
    "mimic_cxr/r2gen": Builtin("rrg_bench.datasets.mimic_cxr.r2gen:MimicCxrR2GenPreparer", _card("mimic_cxr/r2gen"),
                               "from PhysioNet MIMIC-CXR(-JPG) 2.0.0 (+ R2Gen's annotation.json)"),
    "mimic_cxr/rexrank": Builtin("rrg_bench.datasets.mimic_cxr.rexrank:MimicCxrRexrankPreparer",
                                 _card("mimic_cxr/rexrank"), "from PhysioNet MIMIC-CXR(-JPG) 2.0.0"),
    "chexpert_plus/rexrank": Builtin("rrg_bench.datasets.chexpert_plus.rexrank:CheXpertPlusRexrankPreparer",
                                     _card("chexpert_plus/rexrank"), "from the CheXpert Plus folder"),
}
