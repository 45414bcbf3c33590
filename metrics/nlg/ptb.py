"""CoreNLP's PTB tokeniser exactly as pycocoevalcap runs it, from a JVM that stays up for the process.

Why a server: pycocoevalcap starts ``PTBTokenizer -preserveLines -lowerCase FILE`` for every call,
which costs a JVM start and a cold JIT each time (0.3-0.7 s for a 590-study test set). The
server is a 40-line class (:data:`JAVA_SOURCE`) run against the same jar: per request it builds
a **fresh** ``PTBTokenizer`` with the options the command uses (``,tokenizeNLs``) over the
request's lines joined by ``\\n`` and prints the tokens as the command's ``tokReader`` does
(lower-cased with ``Locale.ENGLISH``, ``*NL*`` -> line separator, one space between tokens). A
request is therefore the command run on a file holding that request's lines, byte for byte
(the parity tests compare both). Requests are length-prefixed UTF-8, so no text can break the
framing. The class is compiled once per machine with the runtime's own compiler (Java 11+
single-file launch) into the user cache; a runtime without a compiler, or a server that cannot
start, falls back to the command itself.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from rrg_bench.errors import UsageError
from rrg_bench.metrics.nlg.java import (
    PTB_JAR,
    PTB_PUNCTUATIONS,
    JavaProcess,
    NLGSubprocessError,
    NLGTimeout,
    java_version,
    one_line,
    run_to_completion,
)

SERVER_CLASS = "RrgPtbServer"
JAVA_SOURCE = """\
import edu.stanford.nlp.ling.CoreAnnotations;
import edu.stanford.nlp.ling.CoreLabel;
import edu.stanford.nlp.process.CoreLabelTokenFactory;
import edu.stanford.nlp.process.PTBTokenizer;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/** rrg-bench: `PTBTokenizer -preserveLines -lowerCase FILE` as a server. Request: "<bytes>\\n" + a UTF-8
 *  block (lines joined by '\\n'); reply: "<bytes>\\n" + what the command prints for a file holding the block. */
public class RrgPtbServer {
  public static void main(String[] args) throws IOException {
    if (args.length == 3 && args[0].equals("--compile")) {
      javax.tools.JavaCompiler javac = javax.tools.ToolProvider.getSystemJavaCompiler();
      System.exit(javac == null ? 3 : javac.run(null, null, null, "-nowarn", "-d", args[2], "-cp",
          System.getProperty("java.class.path"), args[1]));
    }
    DataInputStream in = new DataInputStream(new BufferedInputStream(System.in, 1 << 16));
    OutputStream out = new BufferedOutputStream(System.out, 1 << 16);
    StringBuilder header = new StringBuilder();
    int c;
    while ((c = in.read()) != -1) {
      if (c != '\\n') { header.append((char) c); continue; }
      byte[] block = new byte[Integer.parseInt(header.toString().trim())];
      header.setLength(0);
      in.readFully(block);
      byte[] reply = tokenise(new String(block, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
      out.write((reply.length + "\\n").getBytes(StandardCharsets.US_ASCII));
      out.write(reply);
      out.flush();
    }
  }

  /** PTBTokenizer.tokReader with preserveLines and lowerCase, on a fresh tokenizer. */
  static String tokenise(String block) {
    PTBTokenizer<CoreLabel> tok = new PTBTokenizer<>(new StringReader(block), new CoreLabelTokenFactory(),
        ",tokenizeNLs");
    StringBuilder sb = new StringBuilder(block.length() + 64);
    boolean beginLine = true;
    while (tok.hasNext()) {
      String text = tok.next().get(CoreAnnotations.TextAnnotation.class);
      if ("*NL*".equals(text)) { beginLine = true; sb.append(System.lineSeparator()); continue; }
      if (!beginLine) sb.append(' '); else beginLine = false;
      sb.append(text.toLowerCase(Locale.ENGLISH));
    }
    return sb.toString();
  }
}
"""


def block_bytes(texts: Sequence[str]) -> bytes:
    """The file pycocoevalcap writes for these texts, with every line break made a space."""
    return "\n".join(one_line(t) for t in texts).encode("utf-8")


def token_lines(stdout: bytes, n: int) -> list[str]:
    """The tokeniser's output as one line per text, punctuation dropped as ``PTBTokenizer.tokenize`` does.

    CoreNLP keeps the line structure byte for byte: n texts -> exactly n-1 newlines; anything
    else is refused rather than zipped onto the wrong studies.
    """
    lines = stdout.decode("utf-8").split("\n")
    if len(lines) != n:
        raise NLGSubprocessError(
            f"the PTB tokeniser returned {len(lines)} lines for {n} texts; refusing "
            "to guess which line belongs to which study."
        )
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PTB_PUNCTUATIONS) for line in lines]


def run_command(java: str, texts: Sequence[str], *, timeout_s: float) -> list[str]:
    """pycocoevalcap's own way: the ``PTBTokenizer`` command on a temporary file (outside site-packages)."""
    with tempfile.TemporaryDirectory(prefix="rrg-bench-ptb-") as tmp:
        src = Path(tmp) / "captions.txt"
        src.write_bytes(block_bytes(texts))
        cmd = [java, "-cp", str(PTB_JAR), "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(src)]
        stdout = run_to_completion(cmd, timeout_s=timeout_s, what="the PTB tokeniser (CoreNLP)",
                                   workload=f"{len(texts)} texts")
    return token_lines(stdout, len(texts))


class PTBServer(JavaProcess):
    """The :data:`JAVA_SOURCE` server: one request per block of texts."""

    what = "the PTB tokeniser (CoreNLP)"

    def __init__(self, *, java: str, classes: Path, timeout_s: float) -> None:
        super().__init__([java, "-cp", os.pathsep.join((str(PTB_JAR), str(classes))), SERVER_CLASS],
                         cwd=None, timeout_s=timeout_s)

    def tokenise(self, texts: Sequence[str]) -> list[str]:
        body = block_bytes(texts)
        with self.exchange() as timed_out:
            self.write(b"%d\n" % len(body) + body)
            header = self.read_line(timed_out)
            try:
                size = int(header)
            except ValueError:
                raise NLGSubprocessError(f"the PTB tokeniser server is out of sync: got {header[:200]!r}") from None
            stdout = self.read_exactly(size, timed_out)
        return token_lines(stdout, len(texts))


_compiled: dict[str, Path | None] = {}
_compile_lock = threading.Lock()


def server_classes(java: str, *, timeout_s: float) -> Path | None:
    """The directory holding the compiled server for this runtime, compiled on first use; None when
    this runtime cannot compile it (then the command is used). Remembered for the process."""
    with _compile_lock:
        if java not in _compiled:
            _compiled[java] = _compile(java, timeout_s)
        return _compiled[java]


def forget_server(java: str) -> None:
    """This runtime's server failed to start: use the command for the rest of the process."""
    with _compile_lock:
        _compiled[java] = None


def _compile(java: str, timeout_s: float) -> Path | None:
    from rrg_bench.hashing import sha256_file_memo, sha256_text

    key = sha256_text("\n".join((JAVA_SOURCE, java, java_version(java) or "?", sha256_file_memo(PTB_JAR))))[:16]
    try:
        from rrg_bench.paths import cache_root

        root = cache_root() / "java"
    except UsageError:  # no home directory: a private directory for this process
        root = Path(tempfile.mkdtemp(prefix="rrg-bench-java-"))
        atexit.register(shutil.rmtree, root, True)
    target = root / f"ptb-server-{key}"
    if (target / f"{SERVER_CLASS}.class").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    except OSError:
        return None
    try:
        source = work / f"{SERVER_CLASS}.java"
        source.write_text(JAVA_SOURCE, encoding="utf-8")
        run_to_completion([java, "-cp", str(PTB_JAR), str(source), "--compile", str(source), str(work)],
                          timeout_s=timeout_s, what="compiling the PTB tokeniser server",
                          workload=f"{SERVER_CLASS}.java")
        if not (work / f"{SERVER_CLASS}.class").is_file():
            return None
        try:
            work.rename(target)  # atomic; another process may have won the race
        except OSError:
            pass
        return target if (target / f"{SERVER_CLASS}.class").is_file() else None
    except NLGTimeout:
        raise NLGTimeout(
            f"Java ({java}) did not answer within {timeout_s:g} s while compiling the PTB tokeniser server "
            f"and was killed; check that `{java} -version` works (or raise BENCH_NLG_TIMEOUT on a very slow machine)."
        ) from None
    except NLGSubprocessError:
        return None  # e.g. a runtime without the jdk.compiler module
    finally:
        shutil.rmtree(work, ignore_errors=True)
