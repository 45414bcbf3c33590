"""METEOR with paraphrase tables fitted to each call (metrics/nlg/paraphrases.py, meteor_server.py).

The claim: the server with a fitted table gives byte for byte the statistics, per-study scores and
corpus score of ``java -jar meteor-1.5.jar`` with the full table, on every text we have, across
calls whose texts differ (the table is swapped) — and it starts in a fraction of the time because
the table really is small. The index keeps every entry whose phrases occur; where it cannot serve
(no compiler, a server that does not start, no index) the plain jar or the full table takes over.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest

from helpers.jar_checker import run_jar_checker
from helpers.meteor_starts import count_meteor_starts
from helpers.meteor_texts import ODD_TEXTS
from rrg_bench.api.scorer import ScoringContext
from rrg_bench.metrics.nlg import meteor_server, paraphrases
from rrg_bench.metrics.nlg import scorer as nlg_scorer
from rrg_bench.metrics.nlg.java import SERVER_JVM_OPTIONS, NLGSubprocessError, java_executable, require_java
from rrg_bench.metrics.nlg.meteor import MeteorProcess
from rrg_bench.metrics.nlg.meteor_server import MeteorServer
from rrg_bench.metrics.nlg.normalisers import PTBNormaliser
from rrg_bench.metrics.nlg.pool import shutdown
from rrg_bench.metrics.nlg.scorer import NLGScorer

needs_java = pytest.mark.skipif(java_executable() is None, reason="needs Java")


@pytest.fixture(scope="module")
def iu(iu_source: Path) -> dict[str, list[str]]:
    ann = json.loads((iu_source / "annotation.json").read_text())
    return {split: [e["report"] for e in entries] for split, entries in ann.items()}


@pytest.fixture(scope="module")
def index() -> paraphrases.ParaphraseIndex:
    idx = paraphrases.load_index()
    assert idx is not None
    return idx


def _same(a, b) -> None:
    assert a.item_stats == b.item_stats
    assert a.item_scores == b.item_scores
    assert a.corpus == b.corpus


@needs_java
@pytest.mark.timeout(900)
def test_fitted_tables_give_the_full_jars_bytes_across_calls(iu, index):
    java = require_java()
    ptb = PTBNormaliser()
    hyps_a, refs_a = ptb.normalise_blocks([iu["train"][:590], iu["test"]], timeout_s=300)
    hyps_a[:len(ODD_TEXTS)] = ODD_TEXTS  # as written: -norm sees raw quotes, dashes and entities
    refs_a[-len(ODD_TEXTS):] = ODD_TEXTS[::-1]
    hyps_b, refs_b = iu["val"][:296], iu["train"][1000:1296]  # raw texts, other words
    classes = meteor_server.server_classes(java, timeout_s=300)
    assert classes is not None, "Java 17 can compile the server"
    with MeteorProcess(java=java) as jar:
        expected_a, expected_b = jar.score(hyps_a, refs_a), jar.score(hyps_b, refs_b)
    with MeteorServer(java=java, classes=classes) as server:
        assert set(SERVER_JVM_OPTIONS) <= set(server.command(java))  # C1 only: still the jar's values
        server.fit_table(hyps_a, refs_a, index)
        first_table = server.table_entries
        assert 0 < first_table < index.entries / 500  # the point: a few thousand of 5.3 M entries
        _same(server.score(hyps_a, refs_a), expected_a)
        server.fit_table(hyps_b, refs_b, index)  # new words: the table grows and is swapped
        assert server.table_entries > first_table
        _same(server.score(hyps_b, refs_b), expected_b)
        covered = server.covered
        server.fit_table(hyps_a[:50], refs_a[:50], index)  # covered already: nothing is sent
        assert server.covered is covered
        # the server remembers the normalised texts of its last RRG_WORDS only: 50 pairs of the 590
        # below are looked up, the other 540 normalised while scoring; both give the jar's bytes
        _same(server.score(hyps_a, refs_a), expected_a)


@needs_java
@pytest.mark.timeout(300)
def test_the_server_scores_what_the_jar_scores_near_its_heap_limit(index):
    """Both have upstream's 2 GB heap; a very long hypothesis near the jar's limit (17,200 tokens; the jar fails
    from ~17,500 on this machine type) must get the jar's statistics here, not be reported unavailable. The
    parallel collector failed this (from ~16,400 tokens); the server's fitted table leaves more heap than the
    jar's full one."""
    java = require_java()
    hyps, refs = ["the heart it 's normal - size ... " * 2150], ["the heart is normal"]
    with MeteorProcess(java=java) as jar:
        try:
            expected = jar.score(hyps, refs)
        except NLGSubprocessError as exc:
            pytest.skip(f"the jar itself cannot score this hypothesis on this machine: {str(exc)[:200]}")
    with MeteorServer(java=java, classes=meteor_server.server_classes(java, timeout_s=300)) as server:
        server.fit_table(hyps, refs, index)
        _same(server.score(hyps, refs), expected)


@needs_java
def test_eval_reads_statistics_as_the_jar_does(iu):
    """The server's EVAL reads plain statistics lines with one Scanner and anything else with the jar's own
    constructor: per-study and corpus scores equal the jar's for both, including lines the jar reads oddly
    (integers, exponents, a 24th number it ignores, doubled spaces, tabs) and perfect matches."""
    java = require_java()
    classes = meteor_server.server_classes(java, timeout_s=300)
    with MeteorProcess(java=java) as jar:
        # the last two match their references perfectly, in one chunk: EVAL's sum leaves their chunks out
        stats = jar.segment_stats([*iu["train"][:40], *iu["test"][:2]], [*iu["test"][:40], *iu["test"][:2]])
        odd = [stats[0].replace(" ", "  "), stats[1] + " 7.0", stats[2].replace(" ", "\t"),
               " ".join(x.split(".")[0] for x in stats[3].split()), "1.0E1 " + stats[4].split(" ", 1)[1]]
        for lines in (stats, odd + stats, [*stats[:20], odd[0], *stats[20:]]):
            expected = jar.evaluate(lines)
            with MeteorServer(java=java, classes=classes) as server:
                got = server.evaluate(lines)
            assert (got.item_scores, got.corpus) == (expected.item_scores, expected.corpus)


@needs_java
@pytest.mark.parametrize("locale", ["de-CH", "de-DE"])
def test_eval_reads_statistics_as_the_jar_does_in_other_locales(iu, locale, monkeypatch):
    """Statistics are read as the jar's Scanner reads them in the JVM's default locale: in de-CH ('.' between
    integer and fraction, another group separator) the same values; in de-DE (',') the jar cannot read its own
    statistics, and neither can the server."""
    language, country = locale.split("-")
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"-Duser.language={language} -Duser.country={country}")
    java = require_java()
    classes = meteor_server.server_classes(java, timeout_s=300)
    lines = ["43.0 33.0 18.0 19.0 7.0 7.0 11.0 11.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 1.0 0.0 0.0 0.0 0.0 16.0 19.0 19.0",
             "12.0 12.0 5.0 5.0 7.0 7.0 5.0 5.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 12.0 12.0"]
    outcomes = []
    for start in (lambda: MeteorProcess(java=java), lambda: MeteorServer(java=java, classes=classes)):
        with start() as meteor:
            try:
                got = meteor.evaluate(lines)
                outcomes.append((got.item_scores, got.corpus))
            except NLGSubprocessError as exc:
                assert "InputMismatchException" in str(exc)
                outcomes.append("InputMismatchException")
    assert outcomes[0] == outcomes[1]
    assert (outcomes[0] == "InputMismatchException") == (locale == "de-DE")


@needs_java
def test_the_words_are_the_jars_own(index):
    """RRG_WORDS returns -norm's tokens: the filter needs no imitation of METEOR's normaliser."""
    java = require_java()
    classes = meteor_server.server_classes(java, timeout_s=300)
    with MeteorServer(java=java, classes=classes) as server:
        words = server.words(["Dr. Smith's film doesn't show 1,000 cc -- ``none''."], ["“Quoted” – X-ray…"])
    # the reference first, as in a SCORE line; smart quotes and dashes normalised, lower-cased
    assert words == [['"', "quoted", '"', "-", "x", "ray", "\u2026"],
                     ["dr.", "smith", "'s", "film", "doesn", "'t", "show", "1,000", "cc", "-", '"', "none", '"', "."]]


#: the jar's own words for SCORE lines: MeteorScorer.getMeteorStats(test, reference) built from the jar's arguments,
#: its alignment's tokens (reference, then test: the fields' order in the line), each list joined by spaces
WORDS_CHECKER = """\
import edu.cmu.meteor.scorer.MeteorConfiguration;
import edu.cmu.meteor.scorer.MeteorScorer;
import edu.cmu.meteor.scorer.MeteorStats;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;

public class WordsCheck {
  public static void main(String[] args) throws Exception {
    String[] meteorArgs = java.util.Arrays.copyOfRange(args, 2, args.length);
    MeteorScorer scorer = new MeteorScorer(new MeteorConfiguration(Meteor.createPropertiesFromArgs(meteorArgs, 2)));
    StringBuilder out = new StringBuilder();
    for (String line : Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8)) {
      String[] parts = line.split("\\\\|\\\\|\\\\|");
      MeteorStats stats = scorer.getMeteorStats(parts[2].trim(), parts[1].trim());
      out.append(String.join(" ", stats.alignment.words2)).append("\\n");
      out.append(String.join(" ", stats.alignment.words1)).append("\\n");
    }
    int wrong = 0;  // the server's shortcut: a text it passes through must be its tokens joined by single spaces
    for (String text : Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8)) {
      java.util.StringTokenizer tokens = new java.util.StringTokenizer(text);
      java.util.ArrayList<String> words = new java.util.ArrayList<String>();
      while (tokens.hasMoreTokens()) words.add(tokens.nextToken());
      if (RrgMeteorServer.singleSpaced(text) != String.join(" ", words).equals(text)) wrong++;
    }
    System.out.print(out);
    System.out.print("shortcut wrong for " + wrong + "\\n");
  }
}
"""


@needs_java
@pytest.mark.timeout(600)
def test_the_words_of_every_text_are_the_jars_alignment_tokens(iu, tmp_path):
    """RRG_WORDS passes a normalised text through when it is already its tokens joined by single spaces, else
    joins the tokens: either way the words the jar's own scorer aligns, for texts with tabs, form feeds, runs of
    spaces, leading and trailing blanks, non-breaking and other Unicode spaces, and for report text. (-norm
    leaves no text with a tab or a run of spaces, so the shortcut's test is checked on the raw texts too.)"""
    from rrg_bench.metrics.nlg.meteor import METEOR_ARGS, score_line

    java = require_java()
    classes = meteor_server.server_classes(java, timeout_s=300)
    assert classes is not None
    rng = random.Random(3)
    pieces = ["a", "Heart", "x-ray", "1,000", "Dr.", "don't", " ", "  ", "\t", "\f", "\u000b", "\u00a0", "\u2003",
              "\u3000", " .", "--", "\u201c", "\u2013", "\u0416"]
    fuzz = ["".join(rng.choice(pieces) for _ in range(rng.randrange(12))) for _ in range(1500)]
    texts = [*ODD_TEXTS, *fuzz, *iu["test"][:300], " lead", "trail ", "a\tb", "a \fb", "\t", "\f"]
    hyps, refs = texts[::2], texts[1::2]
    n = min(len(hyps), len(refs))
    hyps, refs = hyps[:n], refs[:n]
    lines = [score_line(h, r) for h, r in zip(hyps, refs)]
    (tmp_path / "lines.txt").write_text("".join(lines), encoding="utf-8")
    (tmp_path / "raw.txt").write_text("\n".join([*fuzz, " lead", "trail ", "a\tb", "a b", ""]) + "\n", encoding="utf-8")
    out = run_jar_checker(java, classes, "WordsCheck", WORDS_CHECKER, tmp_path, tmp_path / "lines.txt",
                          tmp_path / "raw.txt", *METEOR_ARGS, "-a", meteor_server.empty_table())
    *word_lines, shortcut = out.split("\n")[:-1]
    assert shortcut == "shortcut wrong for 0"
    expected = [line.split(" ") if line else [] for line in word_lines]
    with MeteorServer(java=java, classes=classes) as server:
        got = server.words(hyps, refs)
    assert len(expected) == len(got) == 2 * n
    differing = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
    assert not differing, f"{len(differing)} differ, first {got[differing[0]]!r} != {expected[differing[0]]!r}"
    assert sum(len(w) for w in got) > 10_000


def test_every_entry_whose_phrases_occur_is_kept(index):
    """Superset property: sentences holding both phrases of sampled entries keep those entries."""
    rng = random.Random(7)
    picked = sorted(rng.sample(range(index.entries), 300))
    sentences = []
    for i in picked:
        a, b = int(index.starts[i]), int(index.starts[i + 1])
        cut = a + int(index.first_len[i])
        first = [index.words[j].decode() for j in index.ids[a:cut].tolist()]
        second = [index.words[j].decode() for j in index.ids[cut:b].tolist()]
        sentences += [["filler", *first, "more"], [*second, "tail"]]
    kept = index.entries_for(index.ngram_hashes(sentences))
    assert set(picked) <= set(kept.tolist())
    assert len(kept) < 50 * len(picked)  # and it is a filter, not everything
    assert len(index.entries_for(index.ngram_hashes([["zzzqqq", "xxyyzz"]]))) == 0


def test_a_fitted_table_is_the_jars_lines_in_the_jars_order(index, tmp_path):
    rng = random.Random(3)
    picked = np.array(sorted(rng.sample(range(200_000), 40)))
    out = tmp_path / "t.gz"
    assert index.write_table(picked, out) == 40
    with gzip.open(paraphrases.FULL_TABLE, "rb") as fh:
        original = [fh.readline() for _ in range(3 * 200_000)]
    want = [line.rstrip(b"\n") for i in picked.tolist() for line in original[3 * i:3 * i + 3]]
    got = gzip.open(out, "rb").read().split(b"\n")[:-1]
    assert [g for k, g in enumerate(got) if k % 3] == [w for k, w in enumerate(want) if k % 3]  # phrases: bytes
    assert [float(g) for g in got[::3]] == [float(w) for w in want[::3]]  # probability: the same number


@needs_java
@pytest.mark.timeout(600)
def test_without_a_server_or_an_index_the_values_stay(iu, index, monkeypatch):
    ids = [f"s{i}" for i in range(80)]
    hyps, refs = iu["train"][:80], iu["test"][:80]
    shutdown()
    want = NLGScorer().score(ids, hyps, refs, ScoringContext())
    shutdown()

    started = count_meteor_starts(monkeypatch)
    monkeypatch.setattr(meteor_server, "server_classes", lambda java, timeout_s: None)  # a JRE without javac
    plain = NLGScorer().score(ids, hyps, refs, ScoringContext())
    assert plain.values == want.values and plain.stats.equals(want.stats) and len(started) == 1
    shutdown()
    monkeypatch.undo()

    # a server that dies before answering: given up for the process, the plain jar scores
    started = count_meteor_starts(monkeypatch)
    java = require_java()
    monkeypatch.setattr(nlg_scorer.MeteorServer, "words",
                        lambda self, h, r: (self._proc.kill(), self._proc.wait(), self.read_line(_Never()))[2])
    broken = NLGScorer().score(ids, hyps, refs, ScoringContext())
    assert broken.values == want.values and broken.stats.equals(want.stats)
    assert len(started) == 2 and meteor_server.server_classes(java, timeout_s=60) is None
    shutdown()
    monkeypatch.undo()
    meteor_server.javac._compiled.pop((meteor_server.SERVER_CLASS, java), None)

    # no index (read-only cache, say): the server loads the full table, still the same values
    monkeypatch.setattr(paraphrases, "load_index", lambda *a, **k: None)
    full = NLGScorer().score(ids, hyps, refs, ScoringContext())
    assert full.values == want.values and full.stats.equals(want.stats)
    shutdown()


@needs_java
@pytest.mark.timeout(300)
def test_python_scorers_start_once_the_table_is_fitted(iu, monkeypatch):
    """The order that keeps the Python half of fitting (n-gram hashes, the table file) from trading the GIL
    with BLEU/ROUGE/CIDEr; and a fit that fails in any way still lets the call end with its error."""
    import time

    events: list[tuple[str, float]] = []
    fit, coco = nlg_scorer.fit_tables, nlg_scorer.coco_scores

    def timed(name, fn):
        def run(*args, **kwargs):
            events.append((f"{name} start", time.perf_counter()))
            try:
                return fn(*args, **kwargs)
            finally:
                events.append((f"{name} end", time.perf_counter()))
        return run

    monkeypatch.setattr(nlg_scorer, "fit_tables", timed("fit", fit))
    monkeypatch.setattr(nlg_scorer, "coco_scores", timed("coco", coco))
    ids, hyps, refs = [f"s{i}" for i in range(60)], iu["train"][:60], iu["test"][:60]
    for _ in range(2):  # a starting JVM, then a live one
        events.clear()
        NLGScorer().score(ids, hyps, refs, ScoringContext())
        assert [name for name, _ in events] == ["fit start", "fit end", "coco start", "coco end"]

    class Boom(Exception):
        pass

    for error in (Boom("not an NLG error"), nlg_scorer.NLGTimeout("the watchdog fired")):
        def failing(*args, error=error, **kwargs):
            raise error
        monkeypatch.setattr(nlg_scorer, "fit_tables", failing)
        outcome = _ends_within(60, lambda: NLGScorer().score(ids, hyps, refs, ScoringContext()))
        assert outcome, f"the call hung after fit_tables raised {error!r}"
        if isinstance(error, Boom):
            assert outcome == [error]
        else:  # as any METEOR failure: the other columns stand, METEOR is unavailable and says why
            assert "the watchdog fired" in outcome[0].unavailable["meteor[tok=ptb]"]
            assert "bleu4[tok=ptb]" in outcome[0].values
    shutdown()


def _ends_within(seconds: float, call) -> list[object]:
    """[what ``call()`` returned or raised], or [] if it had not ended after ``seconds`` (then it runs on,
    in a daemon thread)."""
    import threading

    outcome: list[object] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - the caller looks at whatever ended the call
            outcome.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    done.wait(seconds)
    return outcome


class _Never:
    def is_set(self) -> bool:
        return False


@needs_java
def test_a_very_large_call_loads_the_full_table(index, monkeypatch):
    """Above FIT_LIMIT_PAIRS the words of a call would take more memory than the full table: that is loaded."""
    java = require_java()
    classes = meteor_server.server_classes(java, timeout_s=300)
    loaded: list[Path] = []
    monkeypatch.setattr(meteor_server, "FIT_LIMIT_PAIRS", 3)
    monkeypatch.setattr(MeteorServer, "_load", lambda self, table: loaded.append(table))
    with MeteorServer(java=java, classes=classes) as server:
        server.fit_table(["a b"] * 3, ["a c"] * 3, index)
        assert loaded[-1] != paraphrases.FULL_TABLE and server.covered is not None
        server.fit_table(["a b"] * 4, ["a c"] * 4, index)
        assert loaded[-1] == paraphrases.FULL_TABLE and server.covered is None
        server.fit_table(["new words"], ["entirely"], index)  # the full table covers everything
        assert len(loaded) == 2


def test_a_damaged_index_is_never_used(index, tmp_path):
    """One flipped byte would filter wrongly and change METEOR values: such an index is refused
    (and load_index rebuilds it). Killed builds' leftovers are cleaned after an hour."""
    import os
    import shutil

    from rrg_bench.hashing import sha256_file_memo

    digest = sha256_file_memo(paraphrases.FULL_TABLE)
    copy = tmp_path / "copy"
    shutil.copytree(index.root, copy)
    assert paraphrases._verified(copy, digest) is not None
    data = bytearray((copy / "second_hash.npy").read_bytes())
    data[-3] ^= 0xFF
    (copy / "second_hash.npy").write_bytes(bytes(data))
    assert paraphrases._verified(copy, digest) is None
    (copy / "first_len.npy").unlink()
    assert paraphrases._verified(copy, digest) is None
    assert paraphrases._verified(copy, "0" * 64) is None  # another table's index

    old, new = tmp_path / ".build-old", tmp_path / ".build-new"
    old.mkdir()
    new.mkdir()
    os.utime(old, (0, 0))
    paraphrases._remove_stale_builds(tmp_path)
    assert not old.exists() and new.exists()
