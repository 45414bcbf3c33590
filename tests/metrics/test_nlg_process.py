"""The unsafe parts of pycocoevalcap made safe: METEOR subprocess, PTB alignment, Java missing,
and the R2Gen cleaning rules (written out by hand from R2Gen's published function)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import BenchError, UsageError
from rrg_bench.metrics.nlg import NLGScorer, java, meteor, normalisers, ptb
from rrg_bench.metrics.nlg.java import JavaUnavailable, NLGSubprocessError, java_executable
from rrg_bench.metrics.nlg.meteor import MeteorProcess
from rrg_bench.metrics.nlg.normalisers import PTBNormaliser, R2GenCleanNormaliser

REPO = Path(__file__).resolve().parents[2]
needs_java = pytest.mark.skipif(java_executable() is None, reason="needs Java")


@needs_java
@pytest.mark.timeout(60)
def test_meteor_timeout_kills_the_jvm():
    meteor = MeteorProcess(timeout_s=0.3)  # the JVM needs seconds just to load its tables
    start = time.monotonic()
    with pytest.raises(NLGSubprocessError, match="did not answer within 0.3 s"):
        meteor.score(["a report"], ["a reference"])
    assert time.monotonic() - start < 10
    assert not meteor.alive
    meteor.close()  # closing a killed process is fine


@needs_java
@pytest.mark.timeout(30)
def test_leaving_the_with_block_ends_the_jvm():
    with MeteorProcess(timeout_s=10) as meteor:
        assert meteor.alive
    assert not meteor.alive


@needs_java
@pytest.mark.timeout(180)
def test_newlines_and_separators_neither_desync_nor_hang_at_exit():
    """pycocoevalcap's wrapper raises on a newline and then hangs at exit; ours must give the
    scores of the flattened texts, and a process left unclosed must not block interpreter exit."""
    code = textwrap.dedent("""
        import json
        from rrg_bench.metrics.nlg.meteor import MeteorProcess
        hyps = ["heart size is normal.\\nno pleural effusion.", "lungs clear ||| no\\r\\nfocal consolidation"]
        refs = ["the heart is normal in size.\\nthere is no effusion.", "the lungs are clear ||| no consolidation"]
        flat_hyps = [h.replace("\\r", " ").replace("\\n", " ") for h in hyps]
        flat_refs = [r.replace("\\n", " ") for r in refs]
        m = MeteorProcess(timeout_s=150)
        messy, flat = m.score(hyps, refs), m.score(flat_hyps, flat_refs)
        print(json.dumps([messy.corpus, messy.item_scores, flat.corpus, flat.item_scores]))
        # no close(): the finaliser must kill the JVM at exit
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=170)
    assert done.returncode == 0, done.stderr
    messy, messy_items, flat, flat_items = json.loads(done.stdout)
    assert messy == flat and messy_items == flat_items
    assert 0 < messy < 1 and len(messy_items) == 2


def test_meteor_field_never_breaks_the_protocol_line():
    field = meteor._meteor_field("a ||| b\nc\rd\u2028e |||||| f")
    assert "|||" not in field and "\n" not in field and "\r" not in field and "\u2028" not in field


@needs_java
def test_ptb_keeps_one_line_per_text_whatever_the_line_breaks():
    texts = ["Heart\rsize normal.", "", "No\u2028effusion;\x0bno pneumothorax.", "   ", "Lungs clear.\n"]
    out = PTBNormaliser().normalise(texts, timeout_s=120)
    assert out == ["heart size normal", "", "no effusion no pneumothorax", "", "lungs clear"]


def test_ptb_refuses_a_misaligned_answer(monkeypatch):
    """The command's output (the fallback where no tokeniser server can be built) and the
    server's go through the same line check."""
    monkeypatch.setattr(normalisers, "require_java", lambda: "java")
    monkeypatch.setattr(ptb, "server_classes", lambda java, timeout_s: None)

    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout=b"only one line", stderr=b"")

    monkeypatch.setattr(java.subprocess, "run", fake_run)
    with pytest.raises(NLGSubprocessError, match="1 lines for 2 texts"):
        PTBNormaliser().normalise(["first", "second"], timeout_s=10)
    with pytest.raises(NLGSubprocessError, match="3 lines for 2 texts"):
        ptb.token_lines(b"a\nb\nc", 2)


def test_missing_java_is_a_clear_bench_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    scorer = NLGScorer(tok="r2gen")
    reason = scorer.unavailable_reason()
    assert reason and "Java 17" in reason and "apt-get install openjdk-17-jre-headless" in reason
    with pytest.raises(JavaUnavailable, match="Java 17.*apt-get install openjdk-17-jre-headless") as err:
        scorer.score(["s1"], ["heart normal"], ["heart normal"], ScoringContext())
    assert isinstance(err.value, BenchError)
    with pytest.raises(JavaUnavailable):
        MeteorProcess()
    with pytest.raises(JavaUnavailable):
        PTBNormaliser().normalise(["text"], timeout_s=10)
    assert scorer.impl()["java"] is None


def test_timeout_is_configurable_from_the_environment(monkeypatch):
    monkeypatch.setenv("BENCH_NLG_TIMEOUT", "42.5")
    assert NLGScorer().timeout_s == 42.5
    monkeypatch.setenv("BENCH_NLG_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="BENCH_NLG_TIMEOUT"):
        NLGScorer()


@pytest.mark.parametrize("raw, cleaned", [
    # numbered lists become sentences; case folded; final " ."
    ("1. No acute cardiopulmonary abnormality. 2. Heart size normal.",
     "no acute cardiopulmonary abnormality . heart size normal ."),
    # repeated periods collapse; commas go
    ("The heart is normal in size.. There is no pneumothorax, effusion or consolidation.",
     "the heart is normal in size . there is no pneumothorax effusion or consolidation ."),
    # "/" and brackets removed; the class range ":-[" strips ; : < > but keeps "-"
    ("Mild T-spine degenerative changes (stable). Size 5/7 cm; L:R ratio <2>.",
     "mild t-spine degenerative changes stable . size 57 cm lr ratio 2 ."),
    # quotes, apostrophes, backslashes, = and @ go too; XXXX anonymisation stays as a word
    ("Patient's \"old\" XXXX a\\b =c @d.", "patients old xxxx ab c d ."),
    # a newline is not a sentence break for the IU cleaner, only whitespace
    ("Heart normal.\nLungs clear.", "heart normal lungs clear ."),
    # nothing left -> empty (R2Gen itself would produce ".")
    ("", ""), ("   ", ""), ("...", ""), (". .", ""),
])
def test_r2gen_cleaning_rules(raw, cleaned):
    assert R2GenCleanNormaliser().clean(raw) == cleaned


def test_a_java_failure_names_the_exception_not_its_stack_frames(tmp_path):
    """A JVM's error message keeps the exception and its causes: a deep stack trace must not push them
    out of the part of stderr that is shown."""
    trace = ['Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
             *[f"\tat frame{i}.method(Frame.java:{i})" for i in range(200)],
             "Caused by: java.lang.IllegalStateException: inner", "\t... 12 more", "plain text at the end"]
    stderr = tmp_path / "stderr"
    stderr.write_text("\n".join(trace))
    with stderr.open("rb") as fh:
        shown = java.stderr_tail(fh)
    assert shown == "\n".join([trace[0], trace[-3], trace[-1]])
