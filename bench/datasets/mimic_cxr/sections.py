"""Sections of a MIMIC-CXR free-text report, by the MIT-LCP rules.

A re-implementation (not a copy) of the logic of ``section_text`` /
``normalize_section_names`` in github.com/MIT-LCP/mimic-cxr ``txt/section_parser.py`` (MIT
licence), the parser behind ``mimic_cxr_sectioned.csv``. The rules, in order:

1. A header is a newline, one space, an upper-case name of ``A-Z ()/,-`` characters, a
   colon and one whitespace character. Text before the first header is ``preamble``; a
   report without headers is one ``full report`` section.
2. A section's text runs from the end of its header to the start of the next header, but
   the search for that next header starts only after the first newline following the
   header, so a header on the very next line is absorbed (upstream's guard against bad
   parses, kept as is).
3. Names are lower-cased and normalised: a table of frequent names and typos, then any
   name containing impression/findings/history/comparison/addendum becomes that, then a
   name describing the study (``chest``, ``pa and lateral``, ``portable``…) becomes findings.
4. Empty (whitespace-only) impression and findings sections are dropped.
5. If neither impression nor findings remains and the last section contains a blank line
   (``"\\n \\n"``), the text after its first blank line becomes ``last_paragraph``.
6. A name that occurs several times: the *last* occurrence wins (``create_section_files.py``).

Upstream handles 54 badly formatted reports by hand (``custom_mimic_cxr_rules``) and leaves
them out of ``mimic_cxr_sectioned.csv``; ``CUSTOM_RULE_STUDIES`` lists their ids so a
findings reference set can exclude them the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")

#: exact (lower-cased, stripped) names -> canonical name; the upstream table, counts omitted
_KNOWN_NAMES = {
    "preamble": "preamble",
    "impression": "impression",
    "comparison": "comparison",
    "indication": "indication",
    "findings": "findings",
    "examination": "examination",
    "technique": "technique",
    "history": "history",
    "comparisons": "comparison",
    "clinical history": "history",
    "reason for examination": "indication",
    "notification": "notification",
    "reason for exam": "indication",
    "clinical information": "history",
    "exam": "examination",
    "clinical indication": "indication",
    "conclusion": "impression",
    "chest, two views": "findings",
    "recommendation(s)": "recommendations",
    "type of examination": "examination",
    "reference exam": "comparison",
    "patient history": "history",
    "addendum": "addendum",
    "comparison exam": "comparison",
    "date": "date",
    "comment": "comment",
    "findings and impression": "impression",
    "wet read": "wet read",
    "comparison film": "comparison",
    "recommendations": "recommendations",
    "findings/impression": "impression",
    "pfi": "history",
    "recommendation": "recommendations",
    "wetread": "wet read",
    "ndication": "impression",  # sic: upstream maps this typo to impression
    "impresson": "impression",
    "imprression": "impression",
    "imoression": "impression",
    "impressoin": "impression",
    "imprssion": "impression",
    "impresion": "impression",
    "imperssion": "impression",
    "mpression": "impression",
    "impession": "impression",
    "findings/ impression": "impression",
    "finding": "findings",
    "findins": "findings",
    "findindgs": "findings",
    "findgings": "findings",
    "findngs": "findings",
    "findnings": "findings",
    "finidngs": "findings",
    "idication": "indication",
    "reference findings": "findings",
    "comparision": "comparison",
    "comparsion": "comparison",
    "comparrison": "comparison",
    "comparisions": "comparison",
}

#: a name containing one of these (checked in this order) becomes it
_MAIN_NAMES = ("impression", "findings", "history", "comparison", "addendum")

#: a name mentioning one of these describes the whole study: it is a findings section
_STUDY_DESCRIPTION = re.compile(
    "|".join(re.escape(p) for p in (
        "chest", "portable", "pa and lateral", "lateral and pa", "ap and lateral", "lateral and ap",
        "frontal and", "two views", "frontal view", "pa view", "ap view", "one view", "lateral view",
        "bone window", "frontal upright", "frontal semi-upright", "ribs", "pa and lat",
    ))
)

#: reports upstream sections by hand (custom_mimic_cxr_rules: named sections and character
#: ranges); they are absent from mimic_cxr_sectioned.csv
CUSTOM_RULE_STUDIES = frozenset({
    # conclusion taken from a named section
    "s50913680", "s59363654", "s59279892", "s59768032", "s57936451", "s50058765", "s53356173",
    "s53202765", "s50808053", "s51966317", "s50743547", "s56451190", "s59067458", "s59215320",
    "s55124749", "s54365831", "s59087630", "s58157373", "s56482935", "s58375018", "s54654948",
    "s55157853", "s51491012",
    # conclusion taken from a character range
    "s50525523", "s57564132", "s59982525", "s53488209", "s54875119", "s50196495", "s56579911",
    "s52648681", "s59889364", "s53514462", "s59505494", "s53182247", "s51410602", "s56412866",
    "s54986978", "s59003148", "s57150433", "s56760320", "s59562049", "s52674888", "s55258338",
    "s59330497", "s52119491",
    # no findings anywhere in the report
    "s58235663", "s50798377", "s54168089", "s53071062", "s56724958", "s54231141", "s53607029",
    "s52035334",
})


@dataclass(frozen=True)
class Section:
    name: str  # normalised: "findings", "impression", "preamble", "last_paragraph", ...
    raw_name: str  # the header as written, lower-cased ("" for preamble/full report/last_paragraph)
    text: str  # unstripped, as cut from the report
    start: int  # character offset of ``text`` in the report


def normalise_section_name(name: str) -> str:
    """Canonical section name for a header (rule 3)."""
    name = name.lower().strip()
    if name in _KNOWN_NAMES:
        return _KNOWN_NAMES[name]
    for main in _MAIN_NAMES:
        if main in name:
            return main
    if _STUDY_DESCRIPTION.search(name):
        return "findings"
    return name


def split_sections(text: str) -> list[Section]:
    """All sections of ``text`` in order (rules 1, 2, 4, 5)."""
    first = HEADER.search(text)
    if first is None:
        sections = [Section("full report", "", text, 0)]
    else:
        sections = [Section("preamble", "", text[: first.start(1)], 0)]
        match: re.Match[str] | None = first
        while match is not None:
            raw = match.group(1).lower()
            start = match.end()
            newline = text.find("\n", start)
            match = HEADER.search(text, newline if newline != -1 else start)
            end = match.start() if match is not None else len(text)
            sections.append(Section(normalise_section_name(raw), raw, text[start:end], start))
    sections = [s for s in sections if not (s.name in ("impression", "findings") and not s.text.strip())]
    names = {s.name for s in sections}
    if "impression" not in names and "findings" not in names and "\n \n" in sections[-1].text:
        last = sections[-1]
        head, _, tail = last.text.partition("\n \n")
        sections[-1] = Section(last.name, last.raw_name, head, last.start)
        sections.append(Section("last_paragraph", "", tail, last.start + len(head)))
    return sections


def last_section(text: str, name: str) -> str | None:
    """The stripped text of the last section called ``name`` (rule 6), or None if there is none."""
    found = [s for s in split_sections(text) if s.name == name]
    return found[-1].text.strip() if found else None


def findings_section(text: str) -> str | None:
    """The findings section as in ``mimic_cxr_sectioned.csv`` (None when the report has none)."""
    return last_section(text, "findings")


def impression_section(text: str) -> str | None:
    return last_section(text, "impression")
