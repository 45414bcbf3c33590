"""METEOR 1.5's ``-stdio`` loop in a JVM that can swap its paraphrase table: a 0.3 s start instead of 5-12 s.

Why: the jar loads all 5.3 M paraphrase entries at start (:mod:`.paraphrases`), though a call
can only ever use the few thousand whose phrases occur in its texts. This server
(:data:`JAVA_SOURCE`, compiled once per machine like the PTB server) starts with an empty
table, answers ``SCORE`` and ``EVAL`` lines with the jar's own code (``Meteor.scoreStdio``,
line for line), and understands two more requests:

- ``RRG_WORDS <n>`` + n ``SCORE`` lines: the words METEOR aligns for every field of those lines
  (``MeteorScorer``'s normalise/lower-case flags read from the live scorer, then ``Alignment``'s
  own tokeniser), so the filter uses the jar's normaliser, not an imitation;
- ``RRG_TABLE <path>``: give the live scorer the paraphrase transducer ``Meteor.main`` would
  build for the same arguments plus ``-a <path>`` (the only part of the scorer the table
  changes), in the warm JVM: milliseconds for a small table.

``SCORE`` runs ``MeteorScorer.getMeteorStats(String, ArrayList)`` transcribed from its bytecode,
with one difference in cost, none in value: a text ``RRG_WORDS`` has just normalised is not
normalised again (the normalised text is a pure function of the text and the scorer's fixed flags).
Three more transcriptions, each cheaper and each the jar's value:

- ``JarNormalizer``: ``Normalizer.normalizeLine`` with the jar's own patterns, skipping the
  regular-expression passes that cannot change a line (15 passes per text, most of which find
  nothing in tokenised report text), returning a line of lower-case ASCII words one space apart as
  it is (PTB output: no pass changes it), and running three single-character passes as character
  loops on ASCII lines: 590 IU pairs' texts 20-26 ms -> 11-12 ms (C1-compiled, measured in the JVM),
  string-identical to the jar on every IU report, the reports' words, 12,000 random lines of the
  characters the guards test and 6,000 random ASCII lines (tests/metrics/test_meteor_normaliser.py);
- ``EVAL`` reads plain statistics lines itself, into the fields the constructor sets, in its order,
  instead of building the constructor's ``Scanner`` per line (~0.1 s of a 590-study call): tokens of
  the form digits.digits with ``Double.parseDouble`` where the default locale's decimal separator is
  '.' (what the ``Scanner`` then returns), other plain numbers with one ``Scanner``; anything else
  goes to the constructor. 590 studies: 40-85 ms -> 4-12 ms. (In a locale with a decimal comma the
  jar cannot read its own statistics, and neither can the server: tested.)
- ``JarAligner``: ``Aligner.align`` on the scorer's own aligner, with the stem and synonym stages'
  matches found from per-word memos (a word's stem and synonym sets are pure functions of the word)
  instead of the jar's pair-by-pair loops, which re-stem every word and build an iterator per word
  pair: 590 IU alignments 0.36-0.39 s -> 0.15-0.23 s; and ``Aligner.resolve`` (the beam search)
  transcribed with the beam's paths kept in reused arrays and, with the jar's comparator, only the
  beam's best put in order by a stable insertion on packed integer keys (the jar sorts every
  candidate path at every position through an interface call per comparison; those sorts were a
  quarter of an alignment): server samples for the same work -23%
  (Flight Recorder). Exact and paraphrase matching and the statistics are the jar's methods
  (tests/metrics/test_meteor_aligner.py: 3,600 pairs built to match by stem and synonym, every
  statistics line the jar's; breaking the beam's order, its stability or the jar's distance quirk
  fails it).
- ``RRG_WORDS`` sends a normalised text as it is when it is already its tokens one space apart
  (instead of tokenising it twice to join the tokens again), and answers go out through a buffer
  flushed whenever no request waits to be read, not one write per line.

The scorer in Python asks for the words of a call, filters the table to the entries they can
use, and sends ``RRG_TABLE`` only when the table it holds does not already cover them (the
covered n-grams only grow, so a later call on the same texts sends nothing). Every value is
the jar's: the parity tests compare this server against ``java -jar meteor-1.5.jar`` with the
full table on every study they have.
"""

from __future__ import annotations

import atexit
import base64
import gzip
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rrg_bench.metrics.nlg import javac
from rrg_bench.metrics.nlg.java import METEOR_JAR, SERVER_JVM_OPTIONS, NLGSubprocessError
from rrg_bench.metrics.nlg.meteor import METEOR_ARGS, MeteorProcess, score_line, shard_bounds
from rrg_bench.metrics.nlg.paraphrases import FULL_TABLE, ParaphraseIndex

SERVER_CLASS = "RrgMeteorServer"
#: above this many pairs the full table is loaded instead. Fitting was faster and lighter at every
#: size measured (benchmarks/README.md, "Size limit of fitting": METEOR 9.4 s vs 15.4 s at 16,000
#: pairs, 16.1 s vs 26.8 s at 32,000, with less memory in all), since the texts normalised for the
#: words are not normalised again; what grows with the call is the words' memory (~8 MB per 1,000
#: pairs in Python, a few MB in the JVM), so very large calls take the full table's constant cost
FIT_LIMIT_PAIRS = 50_000
#: The collector stays the JVM's default (G1 on 2+ cores): the parallel one aligned a second batch ~0.15 s faster
#: but exhausted the 2 GB heap on a hypothesis the jar still scores (its old generation is 2/3 of the heap), and a
#: study must never be unavailable here that upstream can score. The JIT level: :data:`.java.SERVER_JVM_OPTIONS`.
JAVA_SOURCE = """\
import edu.cmu.meteor.aligner.Aligner;
import edu.cmu.meteor.aligner.Alignment;
import edu.cmu.meteor.aligner.ExactMatcher;
import edu.cmu.meteor.aligner.Match;
import edu.cmu.meteor.aligner.ParaphraseMatcher;
import edu.cmu.meteor.aligner.ParaphraseTransducer;
import edu.cmu.meteor.aligner.PartialAlignment;
import edu.cmu.meteor.aligner.Stage;
import edu.cmu.meteor.aligner.Stemmer;
import edu.cmu.meteor.aligner.SynonymDictionary;
import edu.cmu.meteor.scorer.MeteorConfiguration;
import edu.cmu.meteor.scorer.MeteorScorer;
import edu.cmu.meteor.scorer.MeteorStats;
import edu.cmu.meteor.util.Constants;
import edu.cmu.meteor.util.Normalizer;
import java.io.*;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.text.DecimalFormatSymbols;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Hashtable;
import java.util.Locale;
import java.util.Scanner;
import java.util.StringTokenizer;
import java.util.regex.Pattern;

/** rrg-bench: METEOR 1.5's -stdio loop (Meteor.scoreStdio: SCORE and EVAL lines) plus RRG_TABLE <path>
 *  (the paraphrase transducer `meteor-1.5.jar ARGS -a <path>` would build) and RRG_WORDS <n> (the words METEOR
 *  aligns for each field of the next n SCORE lines, as one base64 line of UTF-8). ARGS: the jar's own. */
public class RrgMeteorServer {
  static MeteorScorer scorer;
  static Aligner aligner;  // the scorer's own (private field); RRG_TABLE swaps its transducer, not it
  static boolean normalize, lowerCase, keepPunctuation;  // the scorer's flags, fixed at construction
  static int langID;
  /** field -> the text getMeteorStats aligns (normalised, lower-cased per the flags), for the fields of
   *  the last RRG_WORDS: the jar's Normalizer runs ~200 regex replacements per text, so a call that asked
   *  for its words first does not pay them twice. A pure function of the field: any miss is computed. */
  static final HashMap<String, String> prepared = new HashMap<String, String>();
  /** The answers: System.out flushes every line (590 writes, and as many wake-ups of the Python thread that reads
   *  them, for 590 SCORE lines); this stream is flushed when no request is waiting to be read. */
  static final PrintStream OUT =
      new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16));

  public static void main(String[] args) throws Exception {
    if (args.length == 3 && args[0].equals("--compile")) {
      javax.tools.JavaCompiler javac = javax.tools.ToolProvider.getSystemJavaCompiler();
      System.exit(javac == null ? 3 : javac.run(null, null, null, "-nowarn", "-d", args[2], "-cp",
          System.getProperty("java.class.path"), args[1]));
    }
    scorer = build(args, null);
    aligner = (Aligner) declared(MeteorScorer.class, "aligner").get(scorer);
    JarAligner.init(aligner);
    normalize = declared(MeteorScorer.class, "normalize").getBoolean(scorer);
    lowerCase = declared(MeteorScorer.class, "lowerCase").getBoolean(scorer);
    keepPunctuation = declared(MeteorScorer.class, "keepPunctuation").getBoolean(scorer);
    langID = declared(MeteorScorer.class, "langID").getInt(scorer);
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
    String line;
    while (true) {
      if (!in.ready()) OUT.flush();  // nothing more to read yet: the answers so far go out before we wait
      if ((line = in.readLine()) == null) break;
      if (line.startsWith("SCORE") || line.startsWith("score")) {
        String[] parts = line.split("\\\\|\\\\|\\\\|");
        if (parts.length < 3) { OUT.println("Error: specify hypothesis and at least one reference"); continue; }
        ArrayList<String> refs = new ArrayList<String>();
        for (int i = 1; i < parts.length - 1; i++) refs.add(parts[i].trim());
        String hyp = parts[parts.length - 1].trim();
        MeteorStats stats = stats(hyp, refs);
        OUT.println(stats.toString());
      } else if (line.startsWith("EVAL") || line.startsWith("eval")) {
        String[] parts = line.split("\\\\|\\\\|\\\\|");
        if (parts.length < 2) { OUT.println("Error: specify Meteor stats"); continue; }
        MeteorStats aggStats = new MeteorStats();
        MeteorStats[] parsed = plainStats(parts);
        for (int i = 1; i < parts.length; i++) {
          MeteorStats stats = parsed != null ? parsed[i] : new MeteorStats(parts[i].trim());
          scorer.computeMetrics(stats);
          OUT.println(stats.score);
          aggStats.addStats(stats);
        }
        scorer.computeMetrics(aggStats);
        OUT.println(aggStats.score);
      } else if (line.startsWith("RRG_TABLE ")) {
        swapTable(args, line.substring("RRG_TABLE ".length()));
        OUT.println("RRG_TABLE_LOADED");
      } else if (line.startsWith("RRG_WORDS ")) {
        int n = Integer.parseInt(line.substring("RRG_WORDS ".length()).trim());
        StringBuilder out = new StringBuilder();
        prepared.clear();  // holds the texts of one call only
        for (int k = 0; k < n; k++) {
          String[] parts = in.readLine().split("\\\\|\\\\|\\\\|");
          for (int i = 1; i < parts.length; i++) {
            String field = parts[i].trim();
            String text = prepare(field);
            prepared.put(field, text);
            out.append(singleSpaced(text) ? text : String.join(" ", new Alignment(text, text).words1)).append('\\n');
          }
        }
        OUT.println(Base64.getEncoder().encodeToString(out.toString().getBytes(StandardCharsets.UTF_8)));
      }
    }
    OUT.flush();
  }

  /** The text is its own Alignment tokens joined by single spaces: no StringTokenizer delimiter but ' ' (no tab,
   *  line break or form feed), and every space between two non-spaces. Why: most normalised texts are, and
   *  tokenising them twice (new Alignment(text, text)) to join the tokens again was most of RRG_WORDS' time. */
  static boolean singleSpaced(String text) {
    int last = text.length() - 1;
    for (int i = 0; i <= last; i++) {
      char c = text.charAt(i);
      if (c == '\\t' || c == '\\n' || c == '\\r' || c == '\\f') return false;
      if (c == ' ' && (i == 0 || i == last || text.charAt(i - 1) == ' ')) return false;
    }
    return true;
  }

  /** new MeteorStats(parts[i].trim()) for every i >= 1 when each part is STATS_LENGTH plain numbers (ASCII digits,
   *  '.', 'E', '-', one space apart), else null (then EVAL builds them one by one, as the jar). Why: the constructor
   *  reads its numbers with a Scanner of its own, and building a Scanner costs more than reading from it (590
   *  studies: ~0.1 s of an EVAL line); the numbers are read as the constructor's Scanner reads them (:func:`numbers`)
   *  into the fields the constructor sets, in its order (its bytecode). */
  static MeteorStats[] plainStats(String[] parts) {
    StringBuilder all = new StringBuilder();
    boolean decimals = true;
    for (int i = 1; i < parts.length; i++) {
      String part = parts[i].trim();
      if (!plainNumbers(part, MeteorStats.STATS_LENGTH)) return null;
      decimals = decimals && decimalsOnly(part);
      all.append(part).append(' ');
    }
    double[] numbers = numbers(all.toString(), (parts.length - 1) * MeteorStats.STATS_LENGTH, decimals);
    MeteorStats[] out = new MeteorStats[parts.length];
    int k = 0;
    for (int i = 1; i < parts.length; i++) {
      MeteorStats s = new MeteorStats();  // zeros and empty lists: what the String constructor leaves unset
      s.testLength = numbers[k++];
      s.referenceLength = numbers[k++];
      s.testFunctionWords = numbers[k++];
      s.referenceFunctionWords = numbers[k++];
      s.testTotalMatches = 0.0;
      s.referenceTotalMatches = 0.0;
      for (int stage = 0; stage < 4; stage++) {
        double testContent = numbers[k++], refContent = numbers[k++];
        s.testTotalMatches += testContent;
        s.referenceTotalMatches += refContent;
        s.testStageMatchesContent.add(testContent);
        s.referenceStageMatchesContent.add(refContent);
        double testFunction = numbers[k++], refFunction = numbers[k++];
        s.testTotalMatches += testFunction;
        s.referenceTotalMatches += refFunction;
        s.testStageMatchesFunction.add(testFunction);
        s.referenceStageMatchesFunction.add(refFunction);
      }
      s.chunks = numbers[k++];
      s.testWordMatches = numbers[k++];
      s.referenceWordMatches = numbers[k++];
      out[i] = s;
    }
    return out;
  }

  /** The first count numbers of text (tokens one space apart) as Scanner.nextDouble reads them with the default
   *  locale, which is what the constructor's Scanner uses. Where every token is digits '.' digits and that locale's
   *  decimal separator is '.', nextDouble is Double.parseDouble of the token (its float pattern matches it; removing
   *  group separators and mapping the decimal separator to '.' leave it unchanged), so the tokens are parsed
   *  directly: a Scanner's regular expressions cost ~5 us a number. Otherwise one Scanner reads them. */
  static double[] numbers(String text, int count, boolean decimals) {
    double[] out = new double[count];
    if (decimals && DOT_DECIMAL) {
      int start = 0;
      for (int k = 0; k < count; k++) {
        int end = text.indexOf(' ', start);
        out[k] = Double.parseDouble(text.substring(start, end));
        start = end + 1;
      }
    } else {
      Scanner scanner = new Scanner(text);
      for (int k = 0; k < count; k++) out[k] = scanner.nextDouble();
    }
    return out;
  }

  /** The default format locale (Scanner's) writes '.' between a number's integer and fractional digits. */
  static final boolean DOT_DECIMAL = DecimalFormatSymbols.getInstance(
      Locale.getDefault(Locale.Category.FORMAT)).getDecimalSeparator() == '.';

  /** Every token of a plainNumbers part is ASCII digits, a '.', ASCII digits (what MeteorStats.toString writes for
   *  numbers below 10^7). */
  static boolean decimalsOnly(String part) {
    int digitsBefore = 0, digitsAfter = 0;
    boolean dot = false;
    for (int i = 0; i <= part.length(); i++) {
      char c = i < part.length() ? part.charAt(i) : ' ';
      if (c == ' ') {
        if (!dot || digitsBefore == 0 || digitsAfter == 0) return false;
        digitsBefore = 0;
        digitsAfter = 0;
        dot = false;
      } else if (c == '.') {
        if (dot) return false;
        dot = true;
      } else if (c >= '0' && c <= '9') {
        if (dot) digitsAfter++; else digitsBefore++;
      } else {
        return false;
      }
    }
    return true;
  }

  static boolean plainNumbers(String part, int count) {
    int tokens = 1;
    boolean inToken = false;
    for (int i = 0; i < part.length(); i++) {
      char c = part.charAt(i);
      if (c == ' ') {
        if (!inToken) return false;  // a leading or a second space
        tokens++;
        inToken = false;
      } else if ((c >= '0' && c <= '9') || c == '.' || c == 'E' || c == '-') {
        inToken = true;
      } else {
        return false;
      }
    }
    return inToken && tokens == count;
  }

  /** As Meteor.main: properties from the arguments (options from index 2), a configuration, a scorer. */
  static MeteorScorer build(String[] args, String paraphrases) {
    return new MeteorScorer(configuration(args, paraphrases));
  }

  static MeteorConfiguration configuration(String[] args, String paraphrases) {
    String[] a = args;
    if (paraphrases != null) {
      a = Arrays.copyOf(args, args.length + 2);
      a[args.length] = "-a";
      a[args.length + 1] = paraphrases;
    }
    return new MeteorConfiguration(Meteor.createPropertiesFromArgs(a, 2));
  }

  /** The scorer `ARGS -a <path>` would build differs from ours only in the aligner's paraphrase
   *  transducer (Aligner.setupModules: `paraphrase = new ParaphraseTransducer(paraURL)`, paraURL from
   *  the configuration): build that one object, from the URL that configuration gives. The stemmer,
   *  synonym dictionary and function words stay (reloading them costs CPU, not a value). */
  static void swapTable(String[] args, String path) throws Exception {
    Field paraphrase = JarAligner.paraphrase;
    if (paraphrase.get(aligner) == null) return;  // no paraphrase module: nothing uses a table
    paraphrase.set(aligner, new ParaphraseTransducer(configuration(args, path).getParaDirURL()));
  }

  /** MeteorScorer.getMeteorStats(String, ArrayList), line for line (its bytecode): prepare the hypothesis,
   *  then per reference prepare it, Aligner.align (JarAligner), getMeteorStats(Alignment), keep the first
   *  highest score. */
  static MeteorStats stats(String test, ArrayList<String> refs) throws Exception {
    test = prepare(test);
    MeteorStats best = new MeteorStats();
    best.score = -1.0;
    for (String ref : refs) {
      MeteorStats stats = scorer.getMeteorStats(JarAligner.align(test, prepare(ref)));
      if (stats.score > best.score) best = stats;
    }
    return best;
  }

  /** What getMeteorStats does to a text before aligning it: Normalizer.normalizeLine and toLowerCase, per
   *  the scorer's flags (remembered for the fields of the last RRG_WORDS). */
  static String prepare(String text) {
    String known = prepared.get(text);
    if (known != null) return known;
    if (normalize) text = JarNormalizer.normalizeLine(text, langID, keepPunctuation);
    if (lowerCase) text = text.toLowerCase();
    return text;
  }

  /** Normalizer.normalizeLine, line for line (its bytecode), with the jar's own Pattern and String constants
   *  (read from its static fields), except that a replaceAll is skipped where its pattern cannot match or
   *  only replaces a space by a space; each guard names the characters its pattern needs. Why: on tokenised
   *  report text most of the jar's 15 regular-expression passes find nothing, yet each scans the whole line;
   *  the guards cut the normaliser's time 7-15x. Languages with their own normaliser (5, 99) and unsupported
   *  ones go to the jar's method. */
  static final class JarNormalizer {
    static final String SPACE = str("s_space"), SEP_OTHER = str("s_sep_other"), MULTI_DOT = str("s_multi_dot"),
        MULTI_DOT2 = str("s_multi_dot2"), MULTI_DOT3 = str("s_multi_dot3"), MULTI_DOT4 = str("s_multi_dot4"),
        MULTI_DOT5 = str("s_multi_dot5"), MULTI_DOT6 = str("s_multi_dot6"), COMMA = str("s_comma"),
        QUOTE_NORM = str("s_quote_norm"), QUOTE_NORM2 = str("s_quote_norm2"), DASH_NORM = str("s_dash_norm"),
        DASH_NORM2 = str("s_dash_norm2"), DASH_NORM3 = str("s_dash_norm3"), CONT_EN = str("s_cont_en"),
        CONT_EN2 = str("s_cont_en2"), CONT_FR = str("s_cont_fr"), CONT_FR2 = str("s_cont_fr2"),
        CONT_OTHER1 = str("s_cont_other1"), CONT_OTHER2 = str("s_cont_other2"), RM_DASH = str("s_rm_dash"),
        NBP = str("s_nbp"), NBP2 = str("s_nbp2"), NBP3 = str("s_nbp3"), NBP4 = str("s_nbp4"),
        PUNCT_STRIP = str("s_punct_strip"), WHITE = str("s_white");
    static final Pattern R_SEP_OTHER = pat("r_sep_other"), R_MULTI_DOT = pat("r_multi_dot"),
        R_MULTI_DOT2 = pat("r_multi_dot2"), R_COMMA = pat("r_comma"), R_COMMA2 = pat("r_comma2"),
        R_COMMA3 = pat("r_comma3"), R_QUOTE_NORM = pat("r_quote_norm"), R_QUOTE_NORM2 = pat("r_quote_norm2"),
        R_RM_DASH = pat("r_rm_dash"), R_CONT_EN = pat("r_cont_en"), R_CONT_EN2 = pat("r_cont_en2"),
        R_CONT_EN3 = pat("r_cont_en3"), R_CONT_EN4 = pat("r_cont_en4"), R_CONT_EN5 = pat("r_cont_en5"),
        R_CONT_FR = pat("r_cont_fr"), R_CONT_FR2 = pat("r_cont_fr2"), R_CONT_FR3 = pat("r_cont_fr3"),
        R_CONT_FR4 = pat("r_cont_fr4"), R_NBP1 = pat("r_nbp1"), R_NBP2 = pat("r_nbp2"), R_NBP3 = pat("r_nbp3"),
        R_PUNCT_STRIP = pat("r_punct_strip"), R_WHITE = pat("r_white");
    static Hashtable<String, Integer> prefixes;  // the jar's nbpList(langID), for prefixesLang
    static int prefixesLang = -1;

    static String normalizeLine(String line, int langID, boolean keepPunctuation) {
      if (langID == 5 || langID == 99 || !Constants.isSupported(langID))
        return Normalizer.normalizeLine(line, langID, keepPunctuation);
      if (plainWords(line)) return line;
      String s = SPACE + line + SPACE;
      if (!only(s, ".'`,-"))  // a character outside its set
        s = ASCII_LOOPS && ascii(s) ? spaceAroundOthers(s) : R_SEP_OTHER.matcher(s).replaceAll(SEP_OTHER);
      if (s.contains("..")) s = R_MULTI_DOT.matcher(s).replaceAll(MULTI_DOT);  // two dots
      while (s.contains(MULTI_DOT2)) {
        s = R_MULTI_DOT2.matcher(s).replaceAll(MULTI_DOT3);
        s = s.replace(MULTI_DOT2, MULTI_DOT4);
      }
      if (s.indexOf(',') >= 0) {  // a comma
        s = R_COMMA.matcher(s).replaceAll(COMMA);
        s = R_COMMA2.matcher(s).replaceAll(COMMA);
        s = R_COMMA3.matcher(s).replaceAll(COMMA);
      }
      if (anyOf(s, "`\\u2018\\u2019")) s = R_QUOTE_NORM.matcher(s).replaceAll(QUOTE_NORM);
      if (anyOf(s, "\\u201c\\u201d") || s.contains("''")) s = R_QUOTE_NORM2.matcher(s).replaceAll(QUOTE_NORM2);
      s = s.replace(DASH_NORM, DASH_NORM2);
      s = s.replace(DASH_NORM3, DASH_NORM2);
      if (s.indexOf('-') >= 0)  // a hyphen
        s = ASCII_LOOPS && ascii(s) ? hyphensToSpaces(s) : R_RM_DASH.matcher(s).replaceAll(RM_DASH);
      if (langID == 0) {
        if (s.indexOf('\\'') >= 0) {  // an apostrophe, in all five
          s = R_CONT_EN.matcher(s).replaceAll(CONT_EN);
          s = R_CONT_EN2.matcher(s).replaceAll(CONT_EN);
          s = R_CONT_EN3.matcher(s).replaceAll(CONT_EN);
          s = R_CONT_EN4.matcher(s).replaceAll(CONT_EN2);
          s = R_CONT_EN5.matcher(s).replaceAll(CONT_EN2);
        }
      } else if (langID == 2) {
        if (s.indexOf('\\'') >= 0) {
          s = R_CONT_FR.matcher(s).replaceAll(CONT_FR);
          s = R_CONT_FR2.matcher(s).replaceAll(CONT_FR);
          s = R_CONT_FR3.matcher(s).replaceAll(CONT_FR);
          s = R_CONT_FR4.matcher(s).replaceAll(CONT_FR2);
        }
      } else {
        s = s.replace(CONT_OTHER1, CONT_OTHER2);
      }
      StringTokenizer tokens = new StringTokenizer(s);
      String[] words = new String[tokens.countTokens()];
      for (int i = 0; i < words.length; i++) words[i] = tokens.nextToken();
      StringBuilder out = new StringBuilder();
      Hashtable<String, Integer> nbp = prefixes(langID);
      for (int i = 0; i < words.length; i++) {
        if (words[i].length() > 1 && words[i].endsWith(NBP)) {
          String pre = words[i].substring(0, words[i].length() - 1);
          Integer kind = nbp.get(pre);
          if (pre.contains(NBP) && R_NBP1.matcher(pre).find()) {
            out.append(words[i].replace(NBP, NBP2));
          } else if ((kind != null && kind.intValue() == 1)
              || (i < words.length - 1 && R_NBP2.matcher(words[i + 1]).find())) {
            out.append(words[i]);
          } else if (kind != null && kind.intValue() == 2 && i < words.length - 1
              && R_NBP3.matcher(words[i + 1]).find()) {
            out.append(words[i]);
          } else {
            out.append(pre);
            out.append(NBP3);
          }
        } else {
          out.append(words[i]);
        }
        out.append(NBP4);
      }
      s = out.toString();
      while (s.contains(MULTI_DOT4)) s = s.replace(MULTI_DOT4, MULTI_DOT2);
      s = s.replace(MULTI_DOT5, MULTI_DOT6);
      // a character outside [0-9A-Za-z...]: spaces alone would be replaced by spaces
      if (!keepPunctuation && !only(s, ""))
        s = ASCII_LOOPS && ascii(s) ? othersToSpaces(s) : R_PUNCT_STRIP.matcher(s).replaceAll(PUNCT_STRIP);
      // its class is U+0020 and non-ASCII spaces: in ASCII text without "  " each match is one space, kept
      if (!ascii(s) || s.contains("  ")) s = R_WHITE.matcher(s).replaceAll(WHITE);
      return s.trim();
    }

    /** The line is words of ASCII lower-case letters and digits, one space apart: every pass above leaves it as it
     *  is (no character outside any set, no dot, comma, quote, dash or apostrophe; each word is kept and followed
     *  by one space, which trim removes; the DOTMULTI markers are upper-case), and so does toLowerCase. Most
     *  PTB-tokenised report text is such a line. */
    static boolean plainWords(String line) {
      for (int i = 0; i < line.length(); i++) {
        char c = line.charAt(i);
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == ' ')) return false;
      }
      return singleSpaced(line);
    }

    /** The three passes below replace single characters by a fixed text (R_SEP_OTHER, R_PUNCT_STRIP) or a fixed
     *  three-character run (R_RM_DASH); on an ASCII line their classes are plain character tests, so a loop gives
     *  replaceAll's string without the regular-expression engine (whose Unicode classes cost ~50 us a line
     *  here). Used only while the jar's replacements are the ones these loops write. */
    static final boolean ASCII_LOOPS = SEP_OTHER.equals(" $1 ") && RM_DASH.equals("$1 $2") && PUNCT_STRIP.equals(" ");

    static boolean asciiAlnum(char c) {
      return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    }

    /** R_SEP_OTHER with SEP_OTHER: a space either side of each character that is not a letter or digit of its
     *  class, not whitespace (\\s: space, tab, line feed, vertical tab, form feed, carriage return) and not one
     *  of . ' ` , - */
    static String spaceAroundOthers(String s) {
      StringBuilder out = new StringBuilder(s.length() + 16);
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (asciiAlnum(c) || " \\t\\n\\013\\f\\r.'`,-".indexOf(c) >= 0) out.append(c);
        else out.append(' ').append(c).append(' ');
      }
      return out.toString();
    }

    /** R_RM_DASH with RM_DASH: leftmost, non-overlapping runs (letter, digit or dot) '-' (letter or digit), the
     *  hyphen replaced by a space; the search goes on after each run, as replaceAll's does. */
    static String hyphensToSpaces(String s) {
      StringBuilder out = new StringBuilder(s.length());
      int n = s.length();
      for (int i = 0; i < n; i++) {
        char c = s.charAt(i);
        if (i + 2 < n && s.charAt(i + 1) == '-' && (asciiAlnum(c) || c == '.') && asciiAlnum(s.charAt(i + 2))) {
          out.append(c).append(' ').append(s.charAt(i + 2));
          i += 2;
        } else {
          out.append(c);
        }
      }
      return out.toString();
    }

    /** R_PUNCT_STRIP with PUNCT_STRIP: every character but a letter or digit of its class becomes a space. */
    static String othersToSpaces(String s) {
      char[] out = s.toCharArray();
      for (int i = 0; i < out.length; i++) if (!asciiAlnum(out[i])) out[i] = ' ';
      return new String(out);
    }

    /** The jar's non-breaking prefixes for langID: its own (private) nbpList, filled by one call. */
    @SuppressWarnings("unchecked")
    static Hashtable<String, Integer> prefixes(int langID) {
      if (prefixes == null || prefixesLang != langID) {
        Normalizer.normalizeLine("x", langID, false);
        prefixes = (Hashtable<String, Integer>) get("nbpDict");
        prefixesLang = langID;
      }
      return prefixes;
    }

    /** Every character is an ASCII letter, digit, space or one of extra. */
    static boolean only(String s, String extra) {
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (!(asciiAlnum(c) || c == ' ' || extra.indexOf(c) >= 0)) return false;
      }
      return true;
    }

    static boolean anyOf(String s, String chars) {
      for (int i = 0; i < chars.length(); i++) if (s.indexOf(chars.charAt(i)) >= 0) return true;
      return false;
    }

    static boolean ascii(String s) {
      for (int i = 0; i < s.length(); i++) if (s.charAt(i) >= 0x80) return false;
      return true;
    }

    static String str(String name) { return (String) get(name); }
    static Pattern pat(String name) { return (Pattern) get(name); }
    static Object get(String name) {
      try {
        return declared(Normalizer.class, name).get(null);
      } catch (ReflectiveOperationException e) {
        throw new IllegalStateException("meteor-1.5.jar's Normalizer has no field " + name, e);
      }
    }
  }

  /** Aligner.align(String, String) line for line (its bytecode, private align(Alignment)), on the scorer's own
   *  aligner (its modules, stemmer, synonyms, function words and current paraphrase table, read from its private
   *  fields; its private getCountAndChunks called as it is, its private resolve transcribed: :func:`resolve`), except
   *  for how two stages find their matches. Why: in the jar, SynonymMatcher.match tests every (reference word, test
   *  word) pair by iterating the test word's synonym sets (a new iterator per pair) and re-reads every word's sets
   *  per alignment, and StemMatcher.match stems every word per alignment; together about two thirds of an alignment's
   *  time on report text. Here each word's stem key and synonym sets are computed once (pure functions of the word:
   *  the stemmer and the dictionary are fixed after start-up) and a pair matches where the sets intersect, found
   *  through the sets' members; the matches are created with the same fields and added in the jar's order (reference
   *  word, then test word, ascending), with the same coverage counts. Exact and paraphrase matching and scoring are
   *  the jar's methods. */
  static final class JarAligner {
    /** a memo is emptied when it holds this many words (a text of random tokens must not fill the heap) */
    static final int MEMO_WORDS = 200000;
    static final HashMap<String, Integer> stemKeys = new HashMap<String, Integer>();
    static final HashMap<String, int[]> synsets = new HashMap<String, int[]>();
    /** the synonym stage's lists: per dense set, the first entry (head) if setStamp is the alignment's stamp;
     *  per entry, its test word (position) and the next entry of its set (next, -1 at the end) */
    static final HashMap<Integer, Integer> denseIds = new HashMap<Integer, Integer>();
    static int[] head = new int[1024], setStamp = new int[1024], position = new int[1024], next = new int[1024];
    static int stamp;
    static Aligner aligner;
    static int moduleCount;
    static ArrayList<Integer> modules;
    static Stemmer stemmer;
    static SynonymDictionary synonyms;
    static HashSet<String> functionWords;
    static Field paraphrase, beamSize, moduleWeights, partialComparator;
    static Constructor<Stage> newStage;
    static Method countAndChunks;

    @SuppressWarnings("unchecked")
    static void init(Aligner a) throws Exception {
      aligner = a;
      moduleCount = (Integer) of("moduleCount");
      modules = (ArrayList<Integer>) of("modules");
      stemmer = (Stemmer) of("stemmer");
      synonyms = (SynonymDictionary) of("synonyms");
      functionWords = (HashSet<String>) of("functionWords");
      paraphrase = declared(Aligner.class, "paraphrase");
      beamSize = declared(Aligner.class, "beamSize");
      moduleWeights = declared(Aligner.class, "moduleWeights");
      partialComparator = declared(Aligner.class, "partialComparator");
      newStage = Stage.class.getDeclaredConstructor(ArrayList.class, ArrayList.class);
      newStage.setAccessible(true);
      countAndChunks = Aligner.class.getDeclaredMethod("getCountAndChunks", Match[].class);
      countAndChunks.setAccessible(true);
    }

    /** The aligner's private method, failing as the jar's call would: an error it throws (the heap exhausted
     *  by a pathological pair) is rethrown as itself, not wrapped in an InvocationTargetException. */
    static Object jar(Method method, Object... args) throws Exception {
      try {
        return method.invoke(aligner, args);
      } catch (InvocationTargetException e) {
        Throwable cause = e.getCause();
        if (cause instanceof Error) throw (Error) cause;
        if (cause instanceof Exception) throw (Exception) cause;
        throw e;
      }
    }

    static Object of(String name) throws Exception {
      return declared(Aligner.class, name).get(aligner);
    }

    static Alignment align(String line1, String line2) throws Exception {
      Alignment a = new Alignment(line1, line2);
      Stage s = newStage.newInstance(a.words1, a.words2);
      int stages = moduleCount;
      if (a.words1.size() == a.words2.size() && Arrays.equals(s.words1, s.words2)) stages = 1;
      for (int i = 0; i < stages; i++) {
        int module = modules.get(i);
        if (module == 0) ExactMatcher.match(i, a, s);
        else if (module == 1) stemMatch(i, a, s);
        else if (module == 2) synonymMatch(i, a, s);
        else if (module == 3) ParaphraseMatcher.match(i, a, s, (ParaphraseTransducer) paraphrase.get(aligner));
        else throw new RuntimeException("Matcher not recognized: " + module);
      }
      boolean[] used1 = new boolean[a.words1.size()];
      boolean[] used2 = new boolean[a.words2.size()];
      PartialAlignment initial = new PartialAlignment(new Match[a.words2.size()], used1, used2);
      for (int i = 0; i < s.matches.size(); i++) {
        if (s.matches.get(i).size() != 1) continue;
        Match m = s.matches.get(i).get(0);
        boolean overlap = false;
        for (int j = 0; j < m.length; j++) if (s.line2Coverage[i + j] != 1) overlap = true;
        for (int j = 0; j < m.matchLength; j++) if (s.line1Coverage[m.matchStart + j] != 1) overlap = true;
        if (overlap) continue;
        initial.matches[i] = m;
        for (int j = 0; j < m.length; j++) initial.line2UsedWords[i + j] = true;
        for (int j = 0; j < m.matchLength; j++) initial.line1UsedWords[m.matchStart + j] = true;
      }
      PartialAlignment best = resolve(s, initial);
      int[] content1 = new int[moduleCount], content2 = new int[moduleCount];
      int[] function1 = new int[moduleCount], function2 = new int[moduleCount];
      boolean[] isFunction1 = new boolean[a.words1.size()], isFunction2 = new boolean[a.words2.size()];
      for (int i = 0; i < a.words1.size(); i++) {
        if (functionWords.contains(a.words1.get(i).toLowerCase())) {
          isFunction1[i] = true;
          a.line1FunctionWords.add(i);
        }
      }
      for (int i = 0; i < a.words2.size(); i++) {
        if (functionWords.contains(a.words2.get(i).toLowerCase())) {
          isFunction2[i] = true;
          a.line2FunctionWords.add(i);
        }
      }
      for (int i = 0; i < best.matches.length; i++) {
        Match m = best.matches[i];
        if (m == null) continue;
        for (int j = 0; j < m.matchLength; j++) {
          if (isFunction1[m.matchStart + j]) function1[m.module]++; else content1[m.module]++;
        }
        for (int j = 0; j < m.length; j++) {
          if (isFunction2[m.start + j]) function2[m.module]++; else content2[m.module]++;
        }
      }
      for (int i = 0; i < moduleCount; i++) {
        a.moduleContentMatches1.add(content1[i]);
        a.moduleContentMatches2.add(content2[i]);
        a.moduleFunctionMatches1.add(function1[i]);
        a.moduleFunctionMatches2.add(function2[i]);
      }
      a.matches = Arrays.copyOf(best.matches, best.matches.length);
      int[] counts = (int[]) jar(countAndChunks, (Object) a.matches);
      a.line1Matches = counts[0];
      a.line2Matches = counts[1];
      a.numChunks = counts[2];
      double avgMatches = (double) (a.line1Matches + a.line2Matches) / 2.0;
      a.avgChunkLength = a.numChunks > 0 ? avgMatches / (double) a.numChunks : 0.0;
      return a;
    }

    /** Aligner.resolve line for line (its bytecode): the beam search over the stage's matches, position by
     *  position of the reference, each step visiting the best beamSize paths in partialComparator's (stable)
     *  order; the jar's quirks kept (a branch adds its distance to the parent path, which then goes on as the
     *  path that skips the position; a used position whose match is not the path's is dropped). Only the cost
     *  differs: the paths live in two arrays reused from step to step instead of a new ArrayList per step, and
     *  with the jar's comparator (PARTIAL_COMPARE_TOTAL, what MeteorScorer passes) only the beamSize best are put
     *  in order, by packed keys (:func:`beamOrder`); the final Collections.sort for get(0) becomes a search for
     *  the first least path (:func:`least`). Why: the sorts were about a quarter of an alignment's time (Flight
     *  Recorder, 590 IU pairs), through an interface call per comparison. */
    @SuppressWarnings("unchecked")
    static PartialAlignment resolve(Stage s, PartialAlignment start) throws Exception {
      int beam = beamSize.getInt(aligner);
      ArrayList<Double> weightList = (ArrayList<Double>) moduleWeights.get(aligner);
      Comparator<PartialAlignment> order = (Comparator<PartialAlignment>) partialComparator.get(aligner);
      double[] weights = new double[weightList.size()];
      for (int i = 0; i < weights.length; i++) weights[i] = weightList.get(i).doubleValue();
      int positions = s.matches.size();
      PartialAlignment[] paths = new PartialAlignment[16], next = new PartialAlignment[16];
      int pathCount = 0, nextCount = 0;
      next[nextCount++] = start;
      for (int current = 0; current <= positions; current++) {
        PartialAlignment[] swap = paths;
        Arrays.fill(swap, 0, pathCount, null);  // the last step's paths: garbage now, as the jar's old list is
        paths = next;
        pathCount = nextCount;
        next = swap;
        nextCount = 0;
        int visit = beamOrder(paths, pathCount, beam, order);
        for (int rank = 0; rank < visit; rank++) {
          PartialAlignment path = paths[rank];
          if (current == positions) {
            if (path.lastMatchEnd != -1) path.chunks++;
            next = push(next, nextCount++, path);
            continue;
          }
          if (path.line2UsedWords[current]) {
            if (current < path.idx) {
              next = push(next, nextCount++, path);
            } else if (path.matches[path.idx] != null) {
              Match m = path.matches[path.idx];
              take(path, m, weights);
              path.distance += Math.abs(m.start - m.matchStart);
              next = push(next, nextCount++, path);
            }
            continue;
          }
          ArrayList<Match> matches = s.matches.get(current);
          for (int i = 0; i < matches.size(); i++) {
            Match m = matches.get(i);
            if (path.isUsed(m)) continue;
            PartialAlignment branch = new PartialAlignment(path);
            branch.setUsed(m, true);
            branch.matches[current] = m;
            take(branch, m, weights);
            path.distance += Math.abs(m.start - m.matchStart);  // sic: the parent's, as in the jar
            next = push(next, nextCount++, branch);
          }
          if (path.lastMatchEnd != -1) {
            path.chunks++;
            path.lastMatchEnd = -1;
          }
          path.idx++;
          next = push(next, nextCount++, path);
        }
        if (nextCount == 0) {
          System.err.println("Warning: unexpected conditions - skipping matches until possible to continue");
          next = push(next, nextCount++, paths[0]);
        }
      }
      return least(next, nextCount, order);
    }

    /** What both of the jar's cases do to a path that takes match m, in its order: count the match (weighted by
     *  its module; `matches1 += ...` narrows the double sum to int, as the jar's bytecode does), open a chunk
     *  where m does not continue the last match in the test line, and move past m. The distance is the
     *  caller's: the jar adds it to the path itself for a fixed match and to the parent for a branch. */
    static void take(PartialAlignment p, Match m, double[] weights) {
      p.matchCount++;
      p.matches1 += m.matchLength * weights[m.module];
      p.matches2 += m.length * weights[m.module];
      p.allMatches1 += m.matchLength;
      p.allMatches2 += m.length;
      if (p.lastMatchEnd != -1 && m.matchStart != p.lastMatchEnd) p.chunks++;
      p.idx = m.start + m.length;
      p.lastMatchEnd = m.matchStart + m.matchLength;
    }

    /** a with p at index i, grown when full */
    static PartialAlignment[] push(PartialAlignment[] a, int i, PartialAlignment p) {
      if (i == a.length) a = Arrays.copyOf(a, 2 * a.length);
      a[i] = p;
      return a;
    }

    /** How many of the first n paths the beam visits (min(beam, n)), after putting those first in the order
     *  Collections.sort(paths, order) gives (TimSort: stable). With PARTIAL_COMPARE_TOTAL and statistics that
     *  fit the keys (:func:`packKeys`: the comparator is then a consistent lexicographic order, so every stable
     *  sort agrees), a stable insertion by key keeps only the best max(1, min(beam, n)): a path enters after
     *  the kept paths it does not precede, and a path that does not precede the last of a full set is out
     *  (it would sort after all of them). Index 0 always holds the best path (the jar's fallback reads it).
     *  Any other comparator, or larger statistics: Arrays.sort, the jar's sort. */
    static int beamOrder(PartialAlignment[] a, int n, int beam, Comparator<PartialAlignment> order) {
      int visit = Math.max(0, Math.min(beam, n));
      if (n <= 1) return visit;
      if (order != Constants.PARTIAL_COMPARE_TOTAL || !packKeys(a, n)) {
        Arrays.sort(a, 0, n, order);
        return visit;
      }
      long[] keys = KEYS;
      int keep = Math.max(1, visit), filled = 1;
      for (int i = 1; i < n; i++) {
        PartialAlignment x = a[i];
        long key = keys[i];
        if (filled == keep && key >= keys[filled - 1]) continue;
        int lo = 0, hi = filled;  // the first kept path that x precedes
        while (lo < hi) {
          int mid = (lo + hi) >>> 1;
          if (key < keys[mid]) hi = mid; else lo = mid + 1;
        }
        int moved = (filled == keep ? filled - 1 : filled) - lo;
        System.arraycopy(a, lo, a, lo + 1, moved);
        System.arraycopy(keys, lo, keys, lo + 1, moved);
        a[lo] = x;
        keys[lo] = key;
        if (filled < keep) filled++;
      }
      return visit;
    }

    /** The first least of n paths under order, as Collections.sort(paths, order) then get(0). */
    static PartialAlignment least(PartialAlignment[] a, int n, Comparator<PartialAlignment> order) {
      if (order != Constants.PARTIAL_COMPARE_TOTAL || !packKeys(a, n)) {
        Arrays.sort(a, 0, n, order);
        return a[0];
      }
      int best = 0;
      for (int i = 1; i < n; i++) if (KEYS[i] < KEYS[best]) best = i;
      return a[best];
    }

    static final int KEY_BITS = 21;
    static final long KEY_MAX = (1L << KEY_BITS) - 1;
    /** the sort keys of the paths being ordered (the server aligns on one thread) */
    static long[] KEYS = new long[64];

    /** KEYS[i] for each of the first n paths, when every one has matches1 + matches2, chunks and distance in
     *  [0, KEY_MAX] (else false): (KEY_MAX - (matches1 + matches2), chunks, distance) in 21 bits each. Then
     *  Constants.PARTIAL_COMPARE_TOTAL.compare(a, b) (its bytecode: more weighted matches first, then fewer
     *  chunks, then less distance, by int differences that cannot overflow at these sizes) is negative, zero or
     *  positive exactly as KEYS of a is below, equal to or above KEYS of b. */
    static boolean packKeys(PartialAlignment[] a, int n) {
      if (KEYS.length < n) KEYS = new long[Math.max(n, 2 * KEYS.length)];
      for (int i = 0; i < n; i++) {
        PartialAlignment p = a[i];
        long matches = (long) p.matches1 + (long) p.matches2;
        if (p.matches1 < 0 || p.matches2 < 0 || matches > KEY_MAX || p.chunks < 0 || p.chunks > KEY_MAX
            || p.distance < 0 || p.distance > KEY_MAX) return false;
        KEYS[i] = ((KEY_MAX - matches) << (2 * KEY_BITS)) | ((long) p.chunks << KEY_BITS) | p.distance;
      }
      return true;
    }

    /** StemMatcher.match: a match where the stems' hash codes are equal and the words' keys differ. */
    static void stemMatch(int module, Alignment a, Stage s) {
      int[] keys1 = stemKeys(a.words1), keys2 = stemKeys(a.words2);
      for (int j = 0; j < keys2.length; j++) {
        for (int i = 0; i < keys1.length; i++) {
          if (keys1[i] == keys2[j] && s.words1[i] != s.words2[j]) add(module, s, i, j);
        }
      }
    }

    /** SynonymMatcher.match: a match where the words' synonym sets (getSynSets and getStemSynSets) share a
     *  member and the words' keys differ. Each test word is entered in a list per synonym set it has (int arrays
     *  indexed by a dense number per set, valid for the alignment whose stamp they carry); each reference word
     *  marks the test words its sets list, then the marked ones are matched in ascending order. */
    static void synonymMatch(int module, Alignment a, Stage s) {
      int n1 = a.words1.size();
      if (stamp == Integer.MAX_VALUE) {  // after 2^31 alignments: no list may look current
        Arrays.fill(setStamp, 0);
        stamp = 0;
      }
      stamp++;
      int entries = 0;
      for (int i = 0; i < n1; i++) {
        for (int set : synsets(a.words1.get(i))) {
          if (entries == position.length) {
            position = Arrays.copyOf(position, 2 * entries);
            next = Arrays.copyOf(next, 2 * entries);
          }
          position[entries] = i;
          next[entries] = setStamp[set] == stamp ? head[set] : -1;
          setStamp[set] = stamp;
          head[set] = entries++;
        }
      }
      boolean[] shares = new boolean[n1];
      for (int j = 0; j < a.words2.size(); j++) {
        Arrays.fill(shares, false);
        for (int set : synsets(a.words2.get(j))) {
          if (setStamp[set] != stamp) continue;
          for (int k = head[set]; k >= 0; k = next[k]) shares[position[k]] = true;
        }
        for (int i = 0; i < n1; i++) if (shares[i] && s.words1[i] != s.words2[j]) add(module, s, i, j);
      }
    }

    /** The Match both matchers create (prob 1.0, one word each), added to the reference word's list. */
    static void add(int module, Stage s, int i, int j) {
      Match m = new Match();
      m.module = module;
      m.prob = 1.0;
      m.start = j;
      m.length = 1;
      m.matchStart = i;
      m.matchLength = 1;
      s.matches.get(j).add(m);
      s.line1Coverage[i]++;
      s.line2Coverage[j]++;
    }

    static int[] stemKeys(ArrayList<String> words) {
      int[] keys = new int[words.size()];
      for (int i = 0; i < keys.length; i++) {
        String word = words.get(i);
        Integer key = stemKeys.get(word);
        if (key == null) {
          if (stemKeys.size() >= MEMO_WORDS) stemKeys.clear();
          key = stemmer.stem(word).hashCode();
          stemKeys.put(word, key);
        }
        keys[i] = key;
      }
      return keys;
    }

    /** The members of new HashSet(getSynSets(word)) with getStemSynSets(word) added, as SynonymMatcher builds
     *  it, each as its dense number (:func:`dense`). */
    static int[] synsets(String word) {
      int[] sets = synsets.get(word);
      if (sets == null) {
        HashSet<Integer> all = new HashSet<Integer>(synonyms.getSynSets(word));
        all.addAll(synonyms.getStemSynSets(word));
        sets = new int[all.size()];
        int k = 0;
        for (Integer set : all) sets[k++] = dense(set);
        if (synsets.size() >= MEMO_WORDS) synsets.clear();
        synsets.put(word, sets);
      }
      return sets;
    }

    /** A number 0, 1, 2, ... per distinct synonym set id, in order of first use (for the int-array lists). */
    static int dense(Integer set) {
      Integer known = denseIds.get(set);
      if (known != null) return known;
      int id = denseIds.size();
      denseIds.put(set, id);
      if (id == head.length) {
        head = Arrays.copyOf(head, 2 * id);
        setStamp = Arrays.copyOf(setStamp, 2 * id);
      }
      return id;
    }
  }

  /** A private field of one of the jar's classes, made readable (and writable). */
  static Field declared(Class<?> owner, String name) throws NoSuchFieldException {
    Field f = owner.getDeclaredField(name);
    f.setAccessible(true);
    return f;
  }
}
"""


def server_classes(java: str, *, timeout_s: float) -> Path | None:
    """The compiled server for this runtime, or None (then the plain jar with the full table is used)."""
    return javac.server_classes(SERVER_CLASS, JAVA_SOURCE, METEOR_JAR, java, timeout_s=timeout_s)


def forget_server(java: str) -> None:
    javac.forget(SERVER_CLASS, java)


_EMPTY_TABLE_LOCK = threading.Lock()
_empty_table: list[Path] = []


def empty_table() -> Path:
    """A gzipped table with no entries (the server's start-up table), one per process."""
    with _EMPTY_TABLE_LOCK:
        if not _empty_table or not _empty_table[0].is_file():  # a tmp cleaner may have removed it
            _empty_table.clear()
            fd, name = tempfile.mkstemp(prefix="rrg-bench-meteor-empty-", suffix=".gz")
            with open(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb") as fh:
                fh.write(b"")
            atexit.register(_remove, name)
            _empty_table.append(Path(name))
        return _empty_table[0]


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class MeteorServer(MeteorProcess):
    """:data:`JAVA_SOURCE`: METEOR's ``-stdio`` protocol, plus a paraphrase table fitted to each call."""

    what = "METEOR (rrg-bench server)"

    def __init__(self, *, java: str, classes: Path, timeout_s: float = 600.0) -> None:
        self.classes = classes
        super().__init__(timeout_s=timeout_s, java=java)
        #: hashes of the n-grams its table covers (None: it holds the full table)
        self.covered: np.ndarray | None = np.zeros(0, dtype=np.uint32)
        self.table_entries = 0

    def command(self, java: str) -> list[str]:
        """The jar's arguments with :data:`.java.SERVER_JVM_OPTIONS`, our class on the classpath and an empty
        table to start from."""
        classpath = os.pathsep.join((str(METEOR_JAR), str(self.classes)))
        return [java, *SERVER_JVM_OPTIONS, "-Xmx2G", "-cp", classpath, SERVER_CLASS, *METEOR_ARGS,
                "-a", str(empty_table())]

    def words(self, hyps: Sequence[str], refs: Sequence[str]) -> list[list[str]]:
        """The words METEOR aligns for each reference and hypothesis, from the jar's own normaliser."""
        payload = "".join(score_line(h, r) for h, r in zip(hyps, refs))
        with self.exchange() as timed_out:
            self.write(f"RRG_WORDS {len(hyps)}\n{payload}".encode())
            reply = self.read_line(timed_out)
        try:
            text = base64.b64decode(reply, validate=True).decode("utf-8")
        except ValueError:
            raise NLGSubprocessError(f"METEOR server out of sync: expected words, got {reply[:200]!r}") from None
        lines = text.split("\n")[:-1]
        if len(lines) != 2 * len(hyps):
            raise NLGSubprocessError(f"METEOR server returned {len(lines)} word lines for {len(hyps)} pairs")
        return [line.split(" ") if line else [] for line in lines]

    def fit_table(self, hyps: Sequence[str], refs: Sequence[str], index: ParaphraseIndex | None) -> None:
        """Make sure the table holds every entry these pairs could use (the full table without an index,
        or for more than :data:`FIT_LIMIT_PAIRS` pairs)."""
        if self.covered is None:
            return
        if index is None or len(hyps) > FIT_LIMIT_PAIRS:
            self._load_full_table()
            return
        grams = index.ngram_hashes(self.words(hyps, refs))
        if np.isin(grams, self.covered, assume_unique=True).all():
            return
        covered = np.union1d(self.covered, grams)
        try:
            with tempfile.TemporaryDirectory(prefix="rrg-bench-meteor-") as tmp:
                path = Path(tmp) / "paraphrase-en.filtered.gz"
                entries = index.entries_for(covered)
                self.table_entries = index.write_table(entries, path)
                self._load(path)
        except OSError:  # no writable temp dir: the full table is always right, only slower
            self._load_full_table()
            return
        self.covered = covered

    def _load_full_table(self) -> None:
        self._load(FULL_TABLE)
        self.covered, self.table_entries = None, -1

    def _load(self, table: Path) -> None:
        if any(c in str(table) for c in "\r\n"):  # the path travels as one protocol line
            raise NLGSubprocessError(f"cannot hand METEOR a table path with a line break: {str(table)!r}; "
                                     "set TMPDIR to an ordinary directory")
        with self.exchange() as timed_out:
            self.write(f"RRG_TABLE {table}\n".encode())
            reply = self.read_line(timed_out)
        if reply != "RRG_TABLE_LOADED":
            raise NLGSubprocessError(f"METEOR server could not load {table}: {reply[:200]!r}")


def fit_tables(meteors: Sequence[MeteorProcess], hyps: Sequence[str], refs: Sequence[str],
               index: ParaphraseIndex | None) -> None:
    """Each server fits its table to the shard :func:`~.meteor.score_sharded` will give it, in parallel."""
    bounds = shard_bounds(len(hyps), len(meteors))
    jobs = [(m, a, b) for m, (a, b) in zip(meteors, bounds) if isinstance(m, MeteorServer)]
    if len(jobs) == 1:
        m, a, b = jobs[0]
        m.fit_table(hyps[a:b], refs[a:b], index)
        return
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="meteor-fit") as pool:
        for future in [pool.submit(m.fit_table, hyps[a:b], refs[a:b], index) for m, a, b in jobs]:
            future.result()
