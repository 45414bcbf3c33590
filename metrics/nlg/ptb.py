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

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rrg_bench.metrics.nlg import javac
from rrg_bench.metrics.nlg.java import (
    PTB_JAR,
    PTB_PUNCTUATIONS,
    SERVER_JVM_OPTIONS,
    JavaProcess,
    NLGSubprocessError,
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
        classpath = os.pathsep.join((str(PTB_JAR), str(classes)))
        super().__init__([java, *SERVER_JVM_OPTIONS, "-cp", classpath, SERVER_CLASS], cwd=None, timeout_s=timeout_s)

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


def server_classes(java: str, *, timeout_s: float) -> Path | None:
    """The directory holding the compiled server for this runtime, or None (then the command is used)."""
    return javac.server_classes(SERVER_CLASS, JAVA_SOURCE, PTB_JAR, java, timeout_s=timeout_s)


def forget_server(java: str) -> None:
    """This runtime's server failed to start: use the command for the rest of the process."""
    javac.forget(SERVER_CLASS, java)
