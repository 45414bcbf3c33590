"""The weights AM-MRG asks for: the paper's starting points and the authors' released files.

``paper_*`` presets start stage 2 from ``mambaxray-clip-l`` (the ARM-L encoder) and
``blip2-qformer-flant5xxl`` (the BLIP-2 Q-Former); ``bench run --model am_mrg --checkpoint DIR``
imports the authors' four released files (``release.py``). Only the BLIP-2 file is on the Hugging Face
Hub (a mirror of LAVIS's file; its sha256 is pinned because the same bytes sit in two independent Hub
repositories). MambaXray-VL's and AM-MRG's own files are on Google Drive / Dropbox, so they cannot be
fetched here and nothing about them could be pinned: ``bench weights fetch NAME --from FILE`` installs a
downloaded copy and records its sha256 at first install, and every run records the sha256 of what it
read. Kept free of torch: ``bench ls weights`` imports it.
"""

from __future__ import annotations

from pathlib import Path

from rrg_bench.weights.spec import WeightSpec

#: not on the Hugging Face Hub, and not a valid repo id (so nothing can be fetched under it): ``bench weights
#: fetch NAME --from FILE`` installs a downloaded copy
NOT_ON_HUB = "(not on the Hugging Face Hub)"
#: where the authors publish their files (AM_MRG/readme.md, Event-AHU/Medical_Image_Analysis@a35e25c)
RELEASE_FOLDER = ("https://www.dropbox.com/scl/fo/gtgo8hs2qxwdldbxlownu/ADIthMRX6w34BBCUpVYByRU"
                  "?rlkey=ahdpc4knewqyvdxjv65ghdmbj")

BLIP2_QFORMER = WeightSpec(
    name="blip2-qformer-flant5xxl", repo_id="JosephusCheung/tmp", revision=None,
    files=("blip2_pretrained_flant5xxl.pth",), kind="file", env="BENCH_BLIP2_QFORMER_PTH",
    description=("BLIP-2 pretrain_flant5xxl checkpoint (LAVIS, storage.googleapis.com/sfr-vision-language-research/"
                 "LAVIS/models/BLIP2/blip2_pretrained_flant5xxl.pth) whose Q-Former initialises AM-MRG stage 2; "
                 "a Hub mirror, the same sha256 as in the Space kshtiiz/minigpt_v1"),
    sha256={"blip2_pretrained_flant5xxl.pth": "4b3839ea6c617f315ead9bf4036bbb0f0cf6bf62695ecfc14968ea626af03a29"},
)

MAMBAXRAY_CLIP_L = WeightSpec(
    name="mambaxray-clip-l", repo_id=NOT_ON_HUB, revision=None, files=("MambaXrayCLIP-L.pth",), kind="file",
    env="BENCH_MAMBAXRAY_CLIP_L",
    description=("MambaXray-VL stage-2 (image-report contrastive) checkpoint whose visual_encoder.* is AM-MRG's ARM-L "
                 "encoder; Google Drive link in Event-AHU/Medical_Image_Analysis CXPMRG_Bench_MambaXray_VL/README.MD. "
                 "Install a downloaded copy with --from FILE"),
)


def _released(name: str, filename: str, what: str) -> WeightSpec:
    env = "BENCH_" + name.upper().replace("-", "_")
    return WeightSpec(name=name, repo_id=NOT_ON_HUB, revision=None, files=(filename,), kind="file", env=env,
                      description=f"{what}; AM-MRG authors' release ({RELEASE_FOLDER}). Install with --from FILE")


STAGE1 = _released("am-mrg-stage1", "Stage1ckpt.pth",
                   "AM-MRG stage-1 SwinCheX checkpoint (its disease_tokens start the visual memory)")
CAM = _released("am-mrg-cam", "CAM.pkl", "AM-MRG Grad-CAM patch features (visual memory), from MIMIC-CXR train images")
REPORT_MEMORY = _released("am-mrg-report-memory", "Report_Memory.pkl",
                          "AM-MRG Bio_ClinicalBERT report embeddings (report memory), from MIMIC-CXR *test* reports")
STAGE2_CHEXPERT_PLUS = _released("am-mrg-stage2-chexpert-plus", "Stage2CheXpertPlus.pth",
                                 "AM-MRG stage-2 generator trained on CheXpert Plus (location per the authors' "
                                 "readme; its layout is inferred from save_checkpoint)")

#: the released files ``--checkpoint DIR`` imports, by role
RELEASE = {"stage1": STAGE1, "cam": CAM, "report_memory": REPORT_MEMORY, "stage2": STAGE2_CHEXPERT_PLUS}


def locate(value: str, option: str) -> Path:
    """``value`` as a path if it exists, else as a registered weights entry found on this machine
    (never downloading); ``option`` names the setting in the error."""
    from rrg_bench.errors import UsageError
    from rrg_bench.weights import names, resolve

    path = Path(value).expanduser()
    if path.exists():
        return path
    if value in names():
        return resolve(value)
    raise UsageError(f"am_mrg: {option}={value!r} is neither a file or directory nor a weights entry "
                     "(`bench weights list`)")
