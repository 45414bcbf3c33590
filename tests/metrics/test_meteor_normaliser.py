"""The METEOR server's normaliser (``RrgMeteorServer.JarNormalizer``) against the jar's own
``Normalizer.normalizeLine``, in one JVM, string for string.

The server skips a regular-expression pass where the pass cannot change the line (its pattern needs
a character the line lacks, or would only replace a space by a space), returns a line of lower-case
ASCII words one space apart as it is, and on ASCII lines runs three passes as character loops. The
claim is that no line comes out differently: checked on every IU X-Ray report as written and
lower-cased, METEOR's odd texts, 12,000 random lines built from exactly the characters and tokens the
guards look for (dots, commas, apostrophes, quotes, dashes, non-breaking prefixes, Unicode spaces and
letters), the reports' words one space apart with near misses, and 6,000 random ASCII lines, in
every language the jar normalises this way (0-4) and the two it does not (5, 99: handed to the jar;
one of them raises there, and must raise the same here), with and without ``-keepPunctuation``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from helpers.jar_checker import run_jar_checker
from helpers.meteor_texts import ODD_TEXTS
from rrg_bench.metrics.nlg import meteor_server
from rrg_bench.metrics.nlg.java import java_executable, require_java

needs_java = pytest.mark.skipif(java_executable() is None, reason="needs Java")

CHECKER = """\
import edu.cmu.meteor.util.Normalizer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.List;

public class NormaliserCheck {
  public static void main(String[] args) throws Exception {
    List<String> lines = Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8);
    int compared = 0, differ = 0;
    for (int lang : new int[] {0, 1, 2, 3, 4, 5, 99}) {
      for (boolean keep : new boolean[] {false, true}) {
        for (String line : lines) {
          String jar, ours;
          try { jar = Normalizer.normalizeLine(line, lang, keep); } catch (RuntimeException e) { jar = "raised " + e; }
          try { ours = RrgMeteorServer.JarNormalizer.normalizeLine(line, lang, keep); }
          catch (RuntimeException e) { ours = "raised " + e; }
          compared++;
          if (!jar.equals(ours) && differ++ < 5) {
            System.out.println("DIFF lang=" + lang + " keep=" + keep + " [" + line + "] jar [" + jar + "] ours ["
                + ours + "]");
          }
        }
      }
    }
    System.out.println("compared " + compared + " differ " + differ);
  }
}
"""

#: what the guards look for, and what the jar's passes rewrite
_CHARS = ("aZ09 .,'`-\u2018\u2019\u201c\u201d\u2013\t\u00a0\u2003\u3000!?;:()[]{}\"&/\\\u00e9\u0416\u0130#$%*+=<>_|~"
          "\u00b7\u060c\U0001F600")
_TOKENS = ("Mr.", "No.", "e.g.", "a.m.", "Dr.", "1.", "x.y", "..", "...", "''", "``", "--", "'s", "n't", "5's",
           "l'homme", "aujourd'hui", "U.S.", "3.5", "1,000", "a,b", "x-ray", "-", " ", "  ", "DOTMULTI.")


def _fuzz(count: int, seed: int = 11, chars: str = _CHARS, tokens: tuple[str, ...] = _TOKENS) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randrange(40)):
            parts.append(rng.choice(tokens) if rng.random() < 0.3 else rng.choice(chars))
        lines.append("".join(parts))
    return lines


def _ascii_lines(reports: list[str], count: int, seed: int = 12) -> list[str]:
    """Lines the server's ASCII shortcuts take: the reports' words one space apart (PTB output: returned as they
    are), near misses of that (a capital, a dot, the DOTMULTI markers, runs of spaces, blanks at an end, a tab),
    and random ASCII lines (the character loops that stand in for three regular expressions)."""
    import re

    words = [" ".join(re.findall(r"[a-z0-9]+", r.lower())) for r in reports]
    near = ["dotmulti", "DOTMULTI", "a DOTMULTI b", "dotdotmulti x", "a  b", " a", "a ", "a\tb", "x-ray", "a.",
            "A b", "a b.", "1,000", "don't", "", "a", "0", "a-b-c", "a--b", ".-a", "-a-", "a-.", "x - y"]
    ascii_chars = "".join(c for c in _CHARS if c < "\x80") + "~^|@#$%&*()=+[]{}<>/?!:;\"\\_\x0b\x0c\x1f\x7f"
    ascii_tokens = tuple(t for t in _TOKENS if t.isascii())
    return [*words, *near, *_fuzz(count, seed, ascii_chars, ascii_tokens)]


@needs_java
@pytest.mark.timeout(600)
def test_the_servers_normaliser_is_the_jars(iu_source: Path, tmp_path: Path) -> None:
    java = require_java()
    classes = meteor_server.server_classes(java, timeout_s=300)
    assert classes is not None, "Java 17 can compile the server"
    reports = [e["report"] for entries in json.loads((iu_source / "annotation.json").read_text()).values()
               for e in entries]
    texts = [*reports, *(r.lower() for r in reports), *ODD_TEXTS, *_fuzz(12_000), *_ascii_lines(reports, 6_000)]
    texts = [" ".join(t.splitlines()) for t in texts]  # one line each: the file is read by lines
    assert not any("\r" in t or "\n" in t for t in texts)
    (tmp_path / "lines.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = run_jar_checker(java, classes, "NormaliserCheck", CHECKER, tmp_path, tmp_path / "lines.txt")
    assert out.splitlines()[-1] == f"compared {len(texts) * 14} differ 0", out
