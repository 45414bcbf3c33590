"""Registered scorers. Each name maps lazily to a ``metrics.base.Scorer`` subclass.

A scorer is selected on the command line as ``name`` or ``name[key=value,...]``; the
parameters are part of every column id it produces (e.g. ``bleu4[tok=ptb]``), so numbers made
under different conventions never share a column.
"""

BUILTINS: dict[str, str] = {
    "nlg": "metrics.nlg:NLGScorer",
    "chexpert_rules": "metrics.chexpert_rules:CheXpertRulesScorer",
}

#: what ``--metrics default`` expands to (a named, versioned suite)
SUITES: dict[str, list[str]] = {
    "default": ["nlg", "chexpert_rules"],
    "nlg": ["nlg"],
}
