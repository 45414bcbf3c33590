"""The NLG pass's live JVMs: the PTB tokeniser server equals the command, METEOR shards merge exactly,
and the process-wide pool reuses healthy JVMs, replaces broken ones, and never outlives its process
nor touches a parent's JVMs from a forked child."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.meteor_starts import count_meteor_starts
from rrg_bench.api.scorer import ScoringContext
from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg import javac, paraphrases, ptb
from rrg_bench.metrics.nlg import scorer as nlg_scorer
from rrg_bench.metrics.nlg.java import SERVER_JVM_OPTIONS, NLGSubprocessError, java_executable, require_java
from rrg_bench.metrics.nlg.meteor import shard_bounds
from rrg_bench.metrics.nlg.normalisers import PTBNormaliser
from rrg_bench.metrics.nlg.pool import POOL, shutdown
from rrg_bench.metrics.nlg.scorer import NLGScorer, meteor_workers
from rrg_bench.run.spec import RunOptions, check_options

REPO = Path(__file__).resolve().parents[2]
needs_java = pytest.mark.skipif(java_executable() is None, reason="needs Java")

EDGE_CASES = [
    "", "   ", "Dr.", "Smith went home.", "He saw Dr.", "U.S. and U.K.", "(a) \"quoted\" 'x' -- b; c: d?",
    "café naïve Ünïcode", "emoji \U0001F600 deleted", "\u00a0non-breaking space", "tab\there",
    "Heart\rsize\u2028normal.\x0bNo\x0ceffusion\x1c\x1d\x1e\x85.", "1. No effusion. 2. Heart normal.", "x" * 3000,
]


@pytest.fixture(scope="module")
def iu_pairs(iu_source: Path) -> tuple[list[str], list[str]]:
    ann = json.loads((iu_source / "annotation.json").read_text())
    refs = [e["report"] for e in ann["test"][:60]]
    hyps = [e["report"] for e in ann["train"][:60]]
    hyps[:len(EDGE_CASES)] = EDGE_CASES
    hyps[20], hyps[21] = refs[20], refs[21]  # perfect one-chunk matches
    return hyps, refs


@needs_java
def test_ptb_server_prints_what_the_command_prints(iu_pairs):
    hyps, refs = iu_pairs
    texts = [*hyps, *refs]
    java = require_java()
    classes = ptb.server_classes(java, timeout_s=120)
    assert classes is not None, "this runtime can compile the server (Java 17 has jdk.compiler)"
    command = ptb.run_command(java, texts, timeout_s=120)
    with ptb.PTBServer(java=java, classes=classes, timeout_s=120) as server:
        assert server.tokenise(texts) == command
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode().split("\0")  # read once it answered
        assert set(SERVER_JVM_OPTIONS) <= set(argv)  # C1 only, and still the command's bytes
        assert [server.tokenise([t])[0] for t in texts] == command  # no context crosses texts
        assert server.tokenise([""]) == [""]


@needs_java
def test_ptb_falls_back_to_the_command_when_no_server_can_be_built(monkeypatch, tmp_path, iu_pairs):
    hyps, refs = iu_pairs
    java = require_java()
    want = PTBNormaliser().normalise_blocks([hyps, refs], timeout_s=120)
    real, commands = ptb.run_to_completion, []

    def runtime_without_compiler(cmd, **kwargs):
        raise NLGSubprocessError("compiling exited with code 3")

    def command(cmd, **kwargs):
        commands.append(cmd)
        return real(cmd, **kwargs)

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))  # nothing compiled yet
    monkeypatch.setattr(javac, "_compiled", {})
    monkeypatch.setattr(javac, "run_to_completion", runtime_without_compiler)
    monkeypatch.setattr(ptb, "run_to_completion", command)
    assert PTBNormaliser().normalise_blocks([hyps, refs], timeout_s=120) == want
    assert javac._compiled == {(ptb.SERVER_CLASS, java): None}
    assert len(commands) == 2  # the command, once per block, as upstream


def test_workers_are_checked_and_bounded():
    assert meteor_workers(None, 590) == 1
    assert meteor_workers(4, 3, cores=8) == 3 and meteor_workers(2, 590, cores=8) == 2
    assert meteor_workers(64, 590, cores=2) == 2  # never more JVMs (2 GB heaps) than usable cores
    with pytest.raises(UsageError, match="--workers"):
        meteor_workers(0, 10)
    with pytest.raises(UsageError, match="--workers"):
        check_options(RunOptions(workers=0))
    assert shard_bounds(5, 2) == [(0, 2), (2, 5)] or shard_bounds(5, 2) == [(0, 3), (3, 5)]
    assert shard_bounds(2, 8) == [(0, 1), (1, 2)]
    assert [b - a for a, b in shard_bounds(590, 3)] == [197, 196, 197]


@needs_java
@pytest.mark.timeout(600)
def test_two_workers_give_the_values_of_one_and_the_pool_keeps_both(iu_pairs, monkeypatch):
    """Sharded SCORE lines, one EVAL: every value, per-study score and statistic is the one-JVM value."""
    hyps, refs = iu_pairs
    ids = [f"s{i}" for i in range(len(hyps))]
    monkeypatch.setattr(nlg_scorer, "usable_cores", lambda: 2)  # two JVMs even on a one-core runner
    scorer = NLGScorer()
    one = scorer.score(ids, hyps, refs, ScoringContext(workers=1))
    two = scorer.score(ids, hyps, refs, ScoringContext(workers=2))
    assert two.values == one.values
    assert two.stats.equals(one.stats)
    assert POOL.idle(nlg_scorer.meteor_pool_key(require_java())) >= 2

    started = count_meteor_starts(monkeypatch)
    again = NLGScorer(tok="r2gen").score(ids[:5], hyps[:5], refs[:5], ScoringContext(workers=2))
    assert started == [] and "meteor[tok=r2gen]" in again.values  # another scorer, the same live JVMs


@needs_java
@pytest.mark.timeout(600)
def test_a_broken_pooled_jvm_is_replaced_and_the_other_columns_survive(iu_pairs, monkeypatch):
    hyps, refs = iu_pairs
    ids = [f"s{i}" for i in range(len(hyps))]
    key = nlg_scorer.meteor_pool_key(require_java())
    assert paraphrases.load_index() is not None  # built before the progress labels are compared
    labels: list[str] = []
    ctx = ScoringContext(progress=lambda what, total: labels.append(what) or (lambda n=1: None))
    scorer = NLGScorer()
    shutdown()
    want = scorer.score(ids, hyps, refs, ctx).values
    assert labels == ["starting METEOR (Java)…", "METEOR"]  # no silent 0/n bar while the JVM starts
    (idle,) = POOL._idle[key]
    idle._proc.kill()  # crashed while idle
    idle._proc.wait()

    real, given = nlg_scorer.score_sharded, []

    def crash_mid_call(meteors, *args, **kwargs):
        given.extend(meteors)
        meteors[0]._proc.kill()
        return real(meteors, *args, **kwargs)

    monkeypatch.setattr(nlg_scorer, "score_sharded", crash_mid_call)
    failed = scorer.score(ids, hyps, refs, ScoringContext())
    assert given and given[0] is not idle  # the dead JVM was not handed out again
    assert "exited unexpectedly" in failed.unavailable["meteor[tok=ptb]"]
    assert failed.values == {k: v for k, v in want.items() if not k.startswith("meteor")}
    assert POOL.idle(key) == 0  # neither broken JVM went back to the pool

    monkeypatch.undo()
    labels.clear()
    assert scorer.score(ids, hyps, refs, ctx).values == want
    assert labels == ["starting METEOR (Java)…", "METEOR"]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=240)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead too
        return fh.read().split(")")[-1].split()[0] != "Z"


@needs_java
@pytest.mark.timeout(300)
def test_pooled_jvms_end_with_the_process_and_a_forked_child_leaves_them_alone():
    done = _run("""
        import os, sys
        from rrg_bench.metrics.nlg.normalisers import PTBNormaliser
        from rrg_bench.metrics.nlg.pool import POOL, shutdown
        assert PTBNormaliser().normalise(["Heart normal."], timeout_s=120) == ["heart normal"]
        (key,) = POOL._idle
        (server,) = POOL._idle[key]
        child = os.fork()
        if child == 0:  # a fork that exits normally (atexit, finalizers) must neither see nor kill the JVM
            assert POOL.idle(key) == 0
            sys.exit(0)
        os.waitpid(child, 0)
        assert server.alive and PTBNormaliser().normalise(["No effusion."], timeout_s=120) == ["no effusion"]
        assert POOL._idle[key] == [server]
        print(server.pid)
    """)
    assert done.returncode == 0, done.stderr
    assert not _pid_alive(int(done.stdout.split()[-1])), "the pooled JVM outlived its process"
