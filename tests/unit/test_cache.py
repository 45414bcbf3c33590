"""bench.cache: content addressing, immutability, counters, verify/export/import, concurrency."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from rrg_bench.cache import (
    DB_NAME,
    AnnotationCache,
    CacheError,
    annotate_cached,
    cache_key,
    default_path,
    normalise,
    text_hash,
)


@pytest.fixture
def cache(tmp_path: Path):
    with AnnotationCache(tmp_path / "c.sqlite") as c:
        yield c


class CountingAnnotator:
    """Test double: labels a text by its length, remembers every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[object]:
        self.calls.append(list(texts))
        return [(len(t), t.count(" ")) for t in texts]  # tuples: must come back as lists


def test_put_get_and_values_are_immutable(cache):
    h1, h2 = text_hash("a"), text_hash("b")
    cache.put_many("ns", {h1: [1, 2], h2: {"x": 1}})
    assert cache.get_many("ns", [h1, h2, text_hash("c")]) == {h1: [1, 2], h2: {"x": 1}}
    cache.put_many("ns", {h1: "overwritten?"})
    assert cache.get_many("ns", [h1]) == {h1: [1, 2]}
    assert cache.get_many("other-namespace", [h1]) == {}
    assert cache.get_many("ns", [h1], normaliser="ws") == {}  # the normaliser is part of the key


def test_key_is_the_documented_content_address():
    import hashlib

    h = text_hash("No acute disease.")
    assert h == hashlib.sha256(b"No acute disease.").hexdigest()
    assert cache_key("ns", "none", h) == hashlib.sha256(f"ns\x00none\x00{h}".encode()).hexdigest()


def test_annotate_cached_dedups_aligns_and_second_run_annotates_nothing(cache):
    texts = ["b c", "a", "b c", "", "a", "d e f"]
    ann = CountingAnnotator()
    values, hits, misses = annotate_cached(cache, "ns", texts, ann)
    assert ann.calls == [["b c", "a", "", "d e f"]]  # once, unique, first-seen order
    assert values == [[3, 1], [1, 0], [3, 1], [0, 0], [1, 0], [5, 2]]
    assert (hits, misses) == (0, 4)

    def must_not_run(texts):
        raise AssertionError(f"annotated {texts} although cached")

    again, hits, misses = annotate_cached(cache, "ns", list(reversed(texts)), must_not_run)
    assert again == list(reversed(values)) and (hits, misses) == (4, 0)
    partly, hits, misses = annotate_cached(cache, "ns", ["a", "new one"], ann)
    assert ann.calls[-1] == ["new one"] and (hits, misses) == (1, 1) and partly == [[1, 0], [7, 1]]


def test_annotate_cached_without_cache_and_with_whitespace_normaliser(cache):
    ann = CountingAnnotator()
    values, hits, misses = annotate_cached(None, "ns", ["x  y", "x y"], ann)
    assert values == [[4, 2], [3, 1]] and (hits, misses) == (0, 2)
    ann = CountingAnnotator()
    values, hits, misses = annotate_cached(cache, "ns", [" x \n y ", "x y", "x\ty"], ann, normaliser="ws")
    assert ann.calls == [["x y"]] and values == [[3, 1]] * 3 and (hits, misses) == (0, 1)
    assert normalise("  a\n\n b\t", "ws") == "a b"
    with pytest.raises(ValueError, match="normaliser"):
        normalise("a", "lowercase")


def test_annotate_cached_checks_annotator_output(cache):
    with pytest.raises(RuntimeError, match="returned 1 values for 2 texts"):
        annotate_cached(cache, "ns", ["a", "b"], lambda texts: [1])
    with pytest.raises(TypeError, match="namespace 'ns' is not JSON-serialisable"):
        annotate_cached(cache, "ns", ["a"], lambda texts: [object()])
    with pytest.raises(TypeError, match="JSON"):
        annotate_cached(cache, "ns", ["a"], lambda texts: [float("nan")])


def test_stats_show_entries_and_that_a_second_scoring_annotated_nothing(tmp_path):
    path = tmp_path / "c.sqlite"
    with AnnotationCache(path) as c:
        annotate_cached(c, "chexbert/x", ["a", "b", "a"], CountingAnnotator())
        annotate_cached(c, "radgraph/y", ["a"], CountingAnnotator())
    with AnnotationCache(path) as c:  # a later process
        annotate_cached(c, "chexbert/x", ["b", "a"], CountingAnnotator())
        stats = c.stats()
    ns = stats["namespaces"]["chexbert/x"]
    assert ns["entries"] == 2 and ns["lookups"] == 2 and (ns["hits"], ns["misses"]) == (2, 2)
    assert (ns["last_lookup"]["hits"], ns["last_lookup"]["misses"]) == (2, 0)
    assert stats["namespaces"]["radgraph/y"]["entries"] == 1
    assert stats["process"] == {"hits": 2, "misses": 0}
    assert stats["file_size"] > 0 and stats["path"] == str(path)


def test_verify_finds_tampered_rows(tmp_path):
    path = tmp_path / "c.sqlite"
    with AnnotationCache(path) as c:
        annotate_cached(c, "ns", ["a", "b", "c"], CountingAnnotator())
        assert c.verify() == []
    raw = sqlite3.connect(path)
    raw.execute("UPDATE annotations SET namespace = 'forged' WHERE text_hash = ?", (text_hash("a"),))
    raw.execute("UPDATE annotations SET value = '{not json' WHERE text_hash = ?", (text_hash("b"),))
    raw.commit()
    raw.close()
    with AnnotationCache(path) as c:
        problems = c.verify()
    assert len(problems) == 2
    assert any("key does not match" in p and "forged" in p for p in problems)
    assert any("undecodable value" in p for p in problems)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_export_import_round_trip(tmp_path, suffix):
    with AnnotationCache(tmp_path / "a.sqlite") as a:
        annotate_cached(a, "ns1", ["a", "b"], CountingAnnotator())
        annotate_cached(a, "ns2", ["c"], CountingAnnotator())
        assert a.export(tmp_path / f"all{suffix}") == 3
        assert a.export(tmp_path / f"ns2{suffix}", namespace="ns2") == 1
    with AnnotationCache(tmp_path / "b.sqlite") as b:
        assert b.import_(tmp_path / f"ns2{suffix}") == 1
        assert b.import_(tmp_path / f"all{suffix}") == 2  # ns2's row already there
        assert b.import_(tmp_path / f"all{suffix}") == 0

        def must_not_run(texts):
            raise AssertionError("imported annotations were not used")

        values, hits, _ = annotate_cached(b, "ns1", ["b", "a"], must_not_run)
        assert values == [[1, 0], [1, 0]] and hits == 2
        assert b.verify() == []


def test_export_holds_no_text_and_bad_import_is_named(tmp_path):
    with AnnotationCache(tmp_path / "a.sqlite") as a:
        annotate_cached(a, "ns", ["Large left pleural effusion."], CountingAnnotator())
        a.export(tmp_path / "e.jsonl")
    exported = (tmp_path / "e.jsonl").read_text()
    assert "effusion" not in exported
    row = json.loads(exported)
    row["value"] = [9, 9]  # values are not part of the key: accepted, then verify() still ok
    row["text_hash"] = text_hash("something else")  # but a key mismatch is corruption
    (tmp_path / "bad.jsonl").write_text("\n" + json.dumps(row) + "\n")
    with AnnotationCache(tmp_path / "b.sqlite") as b:
        with pytest.raises(CacheError, match=r"bad\.jsonl:2: key does not match"):
            b.import_(tmp_path / "bad.jsonl")
        (tmp_path / "junk.jsonl").write_text("{\"key\": 1}\n")
        with pytest.raises(CacheError, match=r"junk\.jsonl:1: not a cache export row"):
            b.import_(tmp_path / "junk.jsonl")


def test_clear(cache):
    annotate_cached(cache, "ns1", ["a", "b"], CountingAnnotator())
    annotate_cached(cache, "ns2", ["a"], CountingAnnotator())
    assert cache.clear("ns1") == 2
    assert set(cache.stats()["namespaces"]) == {"ns2"}
    assert cache.clear() == 1
    assert cache.stats()["namespaces"] == {}


def test_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "envdir"))
    assert default_path() == tmp_path / "envdir" / DB_NAME
    with AnnotationCache() as c:
        assert c.path == tmp_path / "envdir" / DB_NAME and not c.path.exists()  # opened on first use only
        c.stats()
        assert c.path.exists()
    (tmp_path / "d").mkdir()
    with AnnotationCache(tmp_path / "d") as c:
        assert c.path == tmp_path / "d" / DB_NAME
    monkeypatch.delenv("BENCH_CACHE_DIR")
    assert default_path().name == DB_NAME and "rrg-bench" in str(default_path())


def test_wal_mode_and_foreign_schema_version_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    with AnnotationCache(path) as c:
        c.stats()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    raw.commit()
    raw.close()
    with pytest.raises(CacheError, match="schema version 99"):
        AnnotationCache(path).stats()
    (tmp_path / "garbage.sqlite").write_bytes(b"this is not a database" * 100)
    garbage = AnnotationCache(tmp_path / "garbage.sqlite")  # constructing it touches nothing
    with pytest.raises(CacheError, match="cannot open"):
        garbage.stats()
    with pytest.raises(CacheError, match="no annotation cache"):
        AnnotationCache(tmp_path / "typo.sqlite", create=False).stats()
    assert not (tmp_path / "typo.sqlite").exists()


def _writer(path: str, worker: int, rounds: int, queue) -> None:
    """One process hammering the cache: overlapping keys with the other worker."""
    try:
        with AnnotationCache(Path(path)) as c:
            for r in range(rounds):
                texts = [f"text {i}" for i in range(r * 20, r * 20 + 40)]  # overlaps the next round and worker
                values, _, _ = annotate_cached(c, "ns", texts, lambda ts: [int(t.split()[1]) for t in ts])
                assert values == [int(t.split()[1]) for t in texts]
                c.put_many(f"worker{worker}", {text_hash(f"{r}"): r})
        queue.put(("ok", worker))
    except BaseException as exc:  # report to the parent instead of dying silently
        queue.put(("error", f"{worker}: {type(exc).__name__}: {exc}"))


def test_two_processes_writing_at_once_do_not_corrupt(tmp_path):
    path = tmp_path / "shared.sqlite"
    AnnotationCache(path).close()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(path), w, 30, queue)) for w in (0, 1)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(results) == [("ok", 0), ("ok", 1)], results
    with AnnotationCache(path) as c:
        assert c.verify() == []
        stats = c.stats()["namespaces"]
        assert stats["ns"]["entries"] == 29 * 20 + 40
        assert stats["worker0"]["entries"] == stats["worker1"]["entries"] == 30
        found = c.get_many("ns", [text_hash(f"text {i}") for i in range(620)])
        assert found == {text_hash(f"text {i}"): i for i in range(620)}


def test_connection_is_reopened_after_fork(tmp_path):
    """A cache object inherited through fork must not reuse the parent's sqlite connection."""
    c = AnnotationCache(tmp_path / "c.sqlite")
    c.put_many("ns", {text_hash("parent"): 1})
    ctx = mp.get_context("fork")
    queue = ctx.Queue()

    def child():
        try:
            c.put_many("ns", {text_hash("child"): 2})
            queue.put(c.get_many("ns", [text_hash("parent"), text_hash("child")]))
        except BaseException as exc:
            queue.put(repr(exc))

    p = ctx.Process(target=child)
    p.start()
    got = queue.get(timeout=60)
    p.join(timeout=30)
    assert got == {text_hash("parent"): 1, text_hash("child"): 2}
    assert c.get_many("ns", [text_hash("child")]) == {text_hash("child"): 2}
    c.close()
