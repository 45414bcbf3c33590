"""Texts that exercise METEOR 1.5's ``-norm`` normaliser, shared by the METEOR server tests."""

#: what METEOR's -norm rewrites (quotes, dashes, dots, commas in numbers, contractions, acronyms,
#: entities, Unicode punctuation) — texts as written, and raw (not PTB-tokenised) in the second set
ODD_TEXTS = [
    "The heart doesn't look enlarged; there's no effusion -- or is there?",
    "``Quoted'' findings: no pneumothorax... 1,000 cc; 3.5 cm x-ray-like opacity.",
    "U.S. and U.K. radiologists can't agree. Dr. Smith's report & Mr. Jones's film.",
    "“Smart quotes” and ‘single ones’ – an en dash — and an em dash.",
    "café naïve Ünïcode ÉCOLE İstanbul", "", "   ", "a", "heart heart heart heart",
    "no acute cardiopulmonary process . no acute cardiopulmonary abnormality .",
    "in addition to that , as well as the lungs , there is no evidence of pneumonia at all",
    "x" * 2000,
]
