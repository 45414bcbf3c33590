"""METEOR's paraphrase table cut down to the entries a set of texts could ever use: same scores, fast start.

Why: ``meteor-1.5.jar -l en`` spends 4.5-12 s of every start parsing ``paraphrase-en.gz``
(5,274,084 entries) into a trie, and that start is most of a 590-study NLG pass. The jar's
``ParaphraseMatcher`` only uses an entry when its first phrase occurs as consecutive words of
one sentence of a pair and its second phrase as consecutive words of the other — words as the
aligner sees them, after ``-norm`` and lower-casing (the entry's probability line is read and
thrown away). An entry whose first or second phrase is not an n-gram of any text of the call
therefore never matches, and dropping it changes nothing: the surviving entries keep their
order, so the trie emits the same paraphrases in the same order and the aligner sees the same
candidate matches. The jar ships the same idea as ``FilterParaphrase`` (filter to the
references' n-grams, pass the result with ``-a``); here both sides count, the words come from
the jar's own normaliser (:mod:`.meteor_server` asks the running JVM), and the filtering takes
milliseconds from an index built once per machine.

The index stores, per entry, a 32-bit hash of each phrase's word ids. A hash collision can only
*keep* an entry that could not match (harmless); it can never drop one that could.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg.java import METEOR_JAR

#: the table ``-l en`` loads (MeteorConfiguration's default paraphrase file for English)
FULL_TABLE = METEOR_JAR.parent / "data" / "paraphrase-en.gz"
#: where the index lives instead of ``<cache>/meteor`` (e.g. one shared, prebuilt copy; read-only is fine)
INDEX_ENV = "BENCH_METEOR_INDEX_DIR"
INDEX_FORMAT = 1
_HASH_MULTIPLIER = np.uint32(0x9E3779B1)


def phrase_hashes(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """32-bit polynomial hash of each word-id run ``ids[start:start+length]`` (uint32 arithmetic, wrapping)."""
    ids = np.asarray(ids, dtype=np.uint32)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    h = np.zeros(len(starts), dtype=np.uint32)
    for k in range(int(lengths.max(initial=0))):
        live = lengths > k
        h[live] = h[live] * _HASH_MULTIPLIER + ids[starts[live] + k] + np.uint32(1)
    return h


class ParaphraseIndex:
    """The table as arrays: each entry's word ids (first phrase, then second) and its phrase hashes."""

    def __init__(self, root: Path, meta: dict) -> None:
        self.root = root
        self.meta = meta  # meta.json, as the build wrote it
        self.words: list[bytes] = (root / "words.bin").read_bytes().split(b"\n")
        self.word_id = {w: i for i, w in enumerate(self.words)}
        self.max_phrase = int(self.meta["max_phrase_words"])
        self.ids = np.load(root / "ids.npy", mmap_mode="r")
        self.starts = np.load(root / "starts.npy", mmap_mode="r")  # entry i: ids[starts[i]:starts[i+1]]
        self.first_len = np.load(root / "first_len.npy", mmap_mode="r")
        self.probs = np.load(root / "probs.npy", mmap_mode="r")
        self.first_sorted = np.load(root / "first_hash_sorted.npy", mmap_mode="r")
        self.first_order = np.load(root / "first_hash_order.npy", mmap_mode="r")
        self.second_hash = np.load(root / "second_hash.npy", mmap_mode="r")
        self._lines: dict[int, bytes] = {}  # entry -> its lines in the jar's format (:meth:`write_table`)

    @property
    def entries(self) -> int:
        return len(self.starts) - 1

    def ngram_hashes(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """Sorted distinct hashes of every run of 1..max_phrase consecutive words that are all table words."""
        seq: list[int] = []
        unknown = len(self.words)  # never a table id: breaks runs
        get = self.word_id.get
        for words in sentences:
            seq.extend(get(w.encode("utf-8"), unknown) for w in words)
            seq.append(unknown)
        ids = np.array(seq, dtype=np.int64)
        ok = ids != unknown
        out = []
        run_ok = ok.copy()
        for k in range(1, self.max_phrase + 1):
            if k > 1:  # a run of k words starting at i: all of i..i+k-1 are table words
                run_ok = run_ok[:-1] & ok[k - 1:]
            starts = np.flatnonzero(run_ok)
            if not len(starts):
                break
            out.append(phrase_hashes(ids, starts, np.full(len(starts), k)))
        return np.unique(np.concatenate(out)) if out else np.zeros(0, dtype=np.uint32)

    def entries_for(self, grams: np.ndarray) -> np.ndarray:
        """Indices (table order) of the entries whose two phrases both hash into ``grams`` (sorted, distinct)."""
        grams = np.asarray(grams, dtype=np.uint32)
        if not len(grams):
            return np.zeros(0, dtype=np.int64)
        lo = np.searchsorted(self.first_sorted, grams, side="left")
        found = lo < len(self.first_sorted)
        found[found] = np.asarray(self.first_sorted[lo[found]]) == grams[found]
        if not found.any():
            return np.zeros(0, dtype=np.int64)
        lo = lo[found]
        lengths = np.searchsorted(self.first_sorted, grams[found], side="right") - lo
        # every position lo .. lo + length - 1 of each found hash, without a Python loop over the hashes
        offsets = np.repeat(lo - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        candidates = np.sort(np.asarray(self.first_order[offsets]).astype(np.int64))
        second = np.asarray(self.second_hash[candidates])
        pos = np.minimum(np.searchsorted(grams, second), len(grams) - 1)
        return candidates[grams[pos] == second]

    def write_table(self, entries: np.ndarray, dest: Path) -> int:
        """These entries in the jar's format (probability, phrase, paraphrase lines), in table order."""
        entries = np.asarray(entries).tolist()
        with gzip.open(dest, "wb", compresslevel=1) as fh:
            fh.write(b"".join(self._entry_lines(i) for i in entries))
        return len(entries)

    def _entry_lines(self, i: int) -> bytes:
        """Entry i's three lines (probability, phrase, paraphrase), each ending in a newline; remembered,
        since a process's later calls write the entries of its earlier calls again."""
        known = self._lines.get(i)
        if known is None:
            if len(self._lines) >= 500_000:  # ~80 MB: a process that wrote this many entries starts afresh
                self._lines.clear()
            a, b = int(self.starts[i]), int(self.starts[i + 1])
            cut = a + int(self.first_len[i])
            words = self.words
            known = self._lines[i] = b"%s\n%s\n%s\n" % (repr(float(self.probs[i])).encode(),
                                                        b" ".join(words[j] for j in self.ids[a:cut].tolist()),
                                                        b" ".join(words[j] for j in self.ids[cut:b].tolist()))
        return known


# ---------------------------------------------------------------------------------------
# Building and finding the index (once per machine and table)
# ---------------------------------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[Path, ParaphraseIndex] = {}


def load_index(table: Path = FULL_TABLE, *, build: bool = True) -> ParaphraseIndex | None:
    """The index of ``table`` from ``$BENCH_METEOR_INDEX_DIR`` (else ``<cache>/meteor``), built there
    now if missing or damaged (~17 s, once per machine); None when it can be neither found nor
    built (then the caller uses the full table, which is always correct)."""
    from rrg_bench.hashing import sha256_file_memo

    digest = sha256_file_memo(table)
    cache = Path(os.environ[INDEX_ENV]).expanduser() if os.environ.get(INDEX_ENV) else default_index_dir()
    if cache is None:
        return None
    root = cache / f"paraphrases-{digest[:16]}-v{INDEX_FORMAT}"
    with _lock:
        if root in _loaded:
            return _loaded[root]
        index = _verified(root, digest)
        if index is None and build:
            try:
                _remove_stale_builds(cache)
                if root.exists():  # damaged: a file edited, truncated or missing
                    shutil.rmtree(root)
                build_index(table, root, digest)
            except (OSError, ValueError):
                return None
            index = _verified(root, digest)
        if index is not None:
            _loaded[root] = index
        return index


def _verified(root: Path, digest: str) -> ParaphraseIndex | None:
    """The index at ``root`` if it is complete and every file has the sha256 its build recorded
    (memoised by path, size and mtime: hashed once per machine, not per process). A damaged index
    would filter wrongly and so change METEOR values; it is never used."""
    from rrg_bench.hashing import sha256_file_memo

    try:
        meta = json.loads((root / "meta.json").read_text())
        if meta.get("source_sha256") != digest or meta.get("format") != INDEX_FORMAT:
            return None
        files = meta["files"]
        if any(sha256_file_memo(root / name) != sha for name, sha in files.items()):
            return None
        return ParaphraseIndex(root, meta)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _remove_stale_builds(cache: Path, older_than_s: float = 3600.0) -> None:
    """Builds killed midway leave ``.build-*`` directories (~175 MB); drop those over an hour old."""
    for stale in cache.glob(".build-*"):
        try:
            if time.time() - stale.stat().st_mtime > older_than_s:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass


def default_index_dir() -> Path | None:
    """``<cache>/meteor`` (without ``$BENCH_METEOR_INDEX_DIR``); None without a home directory."""
    try:
        from rrg_bench.paths import cache_root

        return cache_root() / "meteor"
    except UsageError:
        return None


def build_index(table: Path, root: Path, digest: str) -> None:
    """Parse the gzipped table once, as ``ParaphraseTransducer`` reads it, into ``root`` (atomically).

    The jar reads triples of lines (probability, phrase, paraphrase) as UTF-8 and splits phrases
    with ``StringTokenizer`` (space, tab, newline, CR, form feed); a table that is not UTF-8 or
    holds a vertical tab (which Python would split on and Java would not) is refused.
    """
    with gzip.open(table, "rb") as fh:
        data = fh.read()
    data.decode("utf-8")  # UnicodeDecodeError is a ValueError: no index, full table
    if b"\x0b" in data:
        raise ValueError(f"{table} holds a vertical tab; bytes.split() would not split as the jar does")
    lines = data.split(b"\n")
    del data
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) % 3:
        raise ValueError(f"{table}: {len(lines)} lines is not a whole number of (prob, phrase, paraphrase) triples")
    word_id: dict[bytes, int] = {}
    ids: list[int] = []
    starts = [0]
    first_len: list[int] = []
    probs: list[float] = []
    setdefault = word_id.setdefault
    for k in range(0, len(lines), 3):
        try:
            probs.append(float(lines[k]))
        except ValueError:  # the jar never reads this line
            probs.append(float("nan"))
        first, second = lines[k + 1].split(), lines[k + 2].split()
        ids.extend(setdefault(w, len(word_id)) for w in first)
        ids.extend(setdefault(w, len(word_id)) for w in second)
        first_len.append(len(first))
        starts.append(len(ids))
    del lines
    words = list(word_id)
    ids_a = np.array(ids, dtype=np.uint16 if len(words) < 2**16 else np.uint32)
    del ids
    starts_a = np.array(starts, dtype=np.int64)
    first_a = np.array(first_len, dtype=np.int64)
    second_len = np.diff(starts_a) - first_a
    if len(first_a) and min(first_a.min(), second_len.min()) == 0:
        raise ValueError(f"{table} has an entry with an empty phrase; the index assumes none")
    first_hash = phrase_hashes(ids_a, starts_a[:-1], first_a)
    second_hash = phrase_hashes(ids_a, starts_a[:-1] + first_a, second_len)
    order = np.argsort(first_hash, kind="stable").astype(np.uint32)
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=root.parent))
    try:
        (work / "words.bin").write_bytes(b"\n".join(words))
        np.save(work / "ids.npy", ids_a)
        np.save(work / "starts.npy", starts_a.astype(np.uint32 if starts_a[-1] < 2**32 else np.int64))
        np.save(work / "first_len.npy", first_a.astype(np.uint16))
        np.save(work / "probs.npy", np.array(probs, dtype=np.float64))
        np.save(work / "first_hash_sorted.npy", first_hash[order])
        np.save(work / "first_hash_order.npy", order)
        np.save(work / "second_hash.npy", second_hash)
        from rrg_bench.hashing import sha256_file

        files = {p.name: sha256_file(p) for p in sorted(work.iterdir())}
        (work / "meta.json").write_text(json.dumps({
            "format": INDEX_FORMAT, "source": str(table), "source_sha256": digest, "files": files,
            "entries": len(first_len), "words": len(words),
            "max_phrase_words": int(max(first_a.max(initial=0), second_len.max(initial=0)))}))
        work.chmod(0o755)  # mkdtemp's 0700 would hide a shared index from other users
        try:
            work.rename(root)  # atomic; a racing process may have won
        except OSError:
            if _verified(root, digest) is None:
                shutil.rmtree(root, ignore_errors=True)
                work.rename(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    """Build (or check) the index now, e.g. at set-up (scripts/setup.sh); 0 when it is ready."""
    start = time.perf_counter()
    index = load_index()
    if index is None:
        print(f"METEOR paraphrase index: could not be built (no writable cache; set {INDEX_ENV}); "
              "METEOR will load its full table")
        return 1
    print(f"METEOR paraphrase index: {index.entries:,} entries at {index.root} ({time.perf_counter() - start:.1f} s)")
    return 0

