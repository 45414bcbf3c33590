"""Phrase and trigger lists of the offline CheXpert-style labeler (data, not logic).

Why a separate module: the lists are the part people argue about and tune; keeping them
apart from the matching code lets a reviewer read every decision in one place, and a change
here shows up as a diff of phrases (the agreement test in tests/metrics pins the effect).

Written for this project from the CheXpert observation definitions (Irvin et al., AAAI 2019)
and the usual NegEx trigger vocabulary (Chapman et al., 2001; NegBio, Peng et al., 2018);
they are not copies of the CheXpert labeler's phrase files. Every entry is a regular-
expression fragment matched on lower-cased text at word boundaries; ``xxxx`` is IU X-Ray's
anonymisation token and never matches a phrase.
"""

from __future__ import annotations

# ---- mentions of the 13 observations (No Finding is derived, never mentioned) ------------------
#: A match is a mention whose polarity comes from the negation/uncertainty triggers around it.
MENTIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (
        r"(?:widen(?:ed|ing)|enlarged|prominent)\s+(?:superior\s+)?(?:cardio)?mediastin(?:um|al\s+(?:silhouette|contours?))",
        r"(?:cardio)?mediastinal\s+(?:widening|enlargement|prominence)",
        r"widening\s+of\s+the\s+(?:superior\s+)?mediastinum",
        r"enlargement\s+of\s+the\s+(?:cardio)?mediastin(?:um|al\s+(?:silhouette|contours?))",
    ),
    "Cardiomegaly": (
        r"cardiomegaly",
        r"cardiac\s+(?:enlargement|hypertrophy)",
        r"(?:enlarged|large)\s+heart",
        # an enlarged cardiomediastinal silhouette is read as an enlarged heart (as well as
        # Enlarged Cardiomediastinum through the attribute rules below)
        r"(?:enlarged|enlargement\s+of\s+the)\s+cardio\s*-?\s*mediastinal\s+(?:silhouette|contours?|shadow)",
        r"cardio\s*-?\s*mediastinal\s+(?:silhouette|contours?|shadow)\s+(?:(?:is|are|appears?|remains?|again|also|now|stably|significantly|not)\s+)*(?:(?:mildly|moderately|markedly|severely|slightly|minimally|borderline)\s+)?enlarged",
    ),
    "Lung Opacity": (
        r"opaci(?:ty|ties|fication|fications|fied)",
        r"infiltrat(?:e|es|ion|ions|ive)",
        r"air\s*-?\s*space\s+(?:disease|process|filling)",
        r"increased\s+(?:\w+\s+)?densit(?:y|ies)|decreased\s+(?:\w+\s+)?(?:translucency|lucency)",
        r"haziness|hazy\s+(?:opacit\w*|density|densities|lungs?)",
        r"ground\s*-?\s*glass",
    ),
    "Lung Lesion": (
        r"nodul(?:e|es|ar\s+(?:opacit\w*|densit\w*|lesions?|foci|focus))",
        r"mass(?:es)?",
        r"(?:tumou?r|neoplasm|carcinoma|malignancy|lump)s?|mass\s*-?\s*like",
        r"cavit(?:y|ies|ary\s+lesions?|ation)",
        r"(?:pulmonary|lung)\s+lesions?",
        r"(?:round|rounded|circular|spherical)\s+(?:\w+\s+)?(?:opacit(?:y|ies)|densit(?:y|ies)|lesions?|foci|focus)",
        r"metasta(?:sis|ses|tic\s+disease)",
    ),
    "Edema": (
        r"(?<!soft\stissue\s)(?<!subcutaneous\s)edema",
        r"(?:congestive\s+)?heart\s+failure|chf",
        r"fluid\s+overload",
        r"kerley\s+b?\s*lines",
    ),
    "Consolidation": (
        r"consolidat(?:ion|ions|ive|ed)",
    ),
    "Pneumonia": (
        r"(?:broncho)?pneumonias?",
        r"pneumonitis",
        r"(?<!granulomatous\s)infections?",
        r"infectious\s+(?:process|etiology|disease|infiltrates?)",
    ),
    "Atelectasis": (
        r"atelecta(?:sis|ses|tic)",
        r"(?:lobar|lobe|segmental|lung)\s+collapse",
        r"collapse\s+of\s+the\s+(?:\w+\s+){0,2}(?:lobe|lung|segment)",
        r"collapsed\s+(?:\w+\s+){0,2}(?:lobe|lung)",
    ),
    "Pneumothorax": (
        r"(?:hydro|hemo)?pneumothora(?:x|ces|xes)",
        r"pleural\s+air(?:\s+collections?)?",
    ),
    "Pleural Effusion": (
        r"(?<!pericardial\s)(?<!joint\s)effusions?",
        r"pleural\s+fluid",
        r"(?:hydro|hemo)thorax",
        r"(?:hydro|hemo)pneumothorax",
        r"fluid\s+(?:in|within|along)\s+the\s+(?:\w+\s+)?(?:fissure|pleural\s+space)",
    ),
    "Pleural Other": (
        r"pleural(?:\s*-\s*|\s+)(?:thickening|plaques?|scar(?:ring)?|calcifications?|fibrosis|reaction)",
        r"pleuro\s*-?\s*parenchymal\s+(?:scar(?:ring)?|thickening|changes?)",
        r"thickening\s+of\s+the\s+(?:\w+\s+)?pleura",
        r"fibrothorax",
        r"(?:bi)?apical\s+(?:\w+\s+){0,2}?(?:cap|capping|thickening)",
        r"(?:fissural|fissure)\s+thickening|thickening\s+of\s+the\s+(?:\w+\s+){0,2}?fissures?|thickened\s+(?:\w+\s+)?fissures?",
        r"pleural\s+based\s+(?:scar(?:ring)?|thickening)",
    ),
    "Fracture": (
        r"fractur(?:e|es|ed)",
        r"fx",
    ),
    "Support Devices": (
        r"(?:endotracheal|tracheostomy|nasogastric|orogastric|feeding|chest|et|ng|og|dobhoff|enteric|thoracostomy)\s+tubes?",
        r"tubes?",
        r"(?:central\s+venous|central|picc|midline\s+catheter|venous|arterial|swan\s*-?\s*ganz|dialysis|port)\s+lines?",
        r"picc|catheters?|cannula",
        r"(?:internal\s+jugular|jugular|ij|subclavian|femoral|brachial)\s+(?:central\s+)?(?:venous\s+)?(?:lines?|catheters?)",
        r"port\s*-?\s*a\s*-?\s*cath|mediport|(?:power|chest|infusion|venous|subclavian)\s+port",
        r"pacemakers?|pacers?|(?:pacing|pacemaker|aicd|icd|cardiac|epicardial|transvenous)\s+(?:leads?|wires?|device|generator)",
        r"aicd|icd|defibrillators?|(?:loop\s+)?recorder",
        r"(?:valve\s+(?:replacement|prosthesis)|prosthetic\s+(?:\w+\s+)?valves?|(?:mitral|aortic|tricuspid)\s+valve\s+(?:replacement|prosthesis)|(?:tavr|tavi|avr|mvr))",
        r"stents?",
        r"(?:orthopedic|surgical|fixation|spinal|fusion|metallic)\s+hardware|hardware",
        r"(?:fixation\s+)?(?:plates?|screws?|rods?)\b(?!\s+of)",
        r"arthroplast(?:y|ies)|(?:shoulder|humeral|joint)\s+(?:prosthesis|replacement)",
        r"drains?|(?:ivc\s+)?filter|coils?|(?:balloon\s+pump|iabp)|(?:vp|ventriculoperitoneal)\s+shunt",
        r"(?:support|monitoring)\s+(?:devices?|apparatus|equipment)|(?:ecg|ekg|monitoring)\s+leads|electrodes?",
        r"(?:medical|implanted|cardiac|implantable|closure)\s+devices?|devices?|occluder|(?:neuro)?stimulator|generator",
        r"(?:monitor|monitoring|external|overlying|ecg|ekg|cardiac|telemetry)\s+(?:\w+\s+)?leads|leads(?!\s+to)",
        r"tracheostomy|(?:bone\s+)?anchors?|prosthe(?:sis|ses|tic\s+(?:\w+\s+)?(?:shoulder|hip|joint|humer\w*))|internal\s+fixation|tips",
        # IU X-Ray anonymised the device word in "Port-A-Cath" and "... catheter with its tip in the SVC"
        r"xxxx-a-xxxx",
        r"tip\s+(?:\w+\s+){0,5}?(?:svc|vena\s+cava|cavoatrial|cava|caval|atri\w*|carina|ventricle|stomach|brachiocephalic|subclavian|jugular|innominate)",
    ),
}

#: Mentions that are uncertain when not negated (CheXpert's convention for these findings).
UNCERTAIN_MENTIONS: dict[str, tuple[str, ...]] = {
    "Edema": (
        r"(?:pulmonary\s+)?vascular\s+(?:congestion|prominence|engorgement|indistinctness|redistribution)",
        r"(?:pulmonary|venous|interstitial)\s+congestion",
        r"indistinct(?:ness)?\s+(?:of\s+the\s+)?(?:pulmonary\s+)?vascul\w*",
        r"cephalization",
    ),
    "Pleural Effusion": (
        r"blunt(?:ing|ed)\s+(?:of\s+)?(?:the\s+)?(?:\w+\s+){0,2}costophrenic\s+(?:angles?|sulcus|sulci|recess(?:es)?|xxxx)",
        r"costophrenic\s+(?:angles?|sulcus|sulci|recess(?:es)?|xxxx)\s+(?:(?:is|are|remains?|appears?)\s+)?(?:\w+\s+)?blunt(?:ed|ing)",
    ),
}

#: A mention of the key label overlapping one of these spans is discarded ("unmentions").
EXCLUSIONS: dict[str, tuple[str, ...]] = {
    "Lung Opacity": (
        r"(?:nodular|soft\s+tissue|bone|bony|breast|calcified|metallic|metal|sclerotic|fat|fatty|mineral)\s+densit(?:y|ies)",
        r"densit(?:y|ies)\s+(?:of|in|over|overlying|projecting\s+over)\s+the\s+(?:\w+\s+)?(?:breast|soft\s+tissues?|bones?|ribs?|spine|clavicle|sternum|nipples?)",
        r"(?:breast|nipple|soft\s+tissue)\s+opacit(?:y|ies)",
        r"pleural\s+(?:opacit(?:y|ies)|densit(?:y|ies))",
        r"opacit(?:y|ies)\s+(?:of|in|at)\s+the\s+(?:\w+\s+)?(?:breast|soft\s+tissues?)",
    ),
    "Lung Lesion": (
        r"mass\s+effect",
        r"(?:soft\s+tissue|breast|neck|thyroid|abdominal)\s+mass(?:es)?",
        r"calcified\s+(?:granulomas?|nodes?)",
        r"(?:non\s*-?\s*calcified|noncalcified)\s+(?:granulomas?)",
        r"cavit(?:y|ies)\s+(?:of|in)\s+the\s+(?:\w+\s+)?(?:abdomen|chest\s+wall)",
    ),
    "Support Devices": (
        r"(?:pleural|skin|kerley\s+b?|septal|reticular|fissure|azygos|mach|costophrenic)\s+lines?",
        r"lines?\s+of\s+(?:the\s+)?(?:fissure|pleura)",
        r"(?:bronchial|tracheal|eustachian)\s+tubes?",
        r"(?:nipple|breast)\s+(?:markers?|shadows?)",
        r"plate\s*-?\s*like",
        r"growth\s+plates?",
        r"coil(?:ed|ing)",
        r"(?:end|vertebral|epiphyseal)\s+plates?",
        r"(?:aortic|mitral)\s+valve\s+(?:calcification|sclerosis|annul\w*)",
        r"breast\s+(?:prosthe\w+|implants?)",
    ),
    "Pneumonia": (
        r"tubercul\w*\s+(?:\w+\s+)?(?:infections?|pneumonia)",
        r"(?:granulomatous|old|prior|remote|previous)\s+(?:infections?|infectious\s+(?:process|disease))",
    ),
    "Edema": (
        r"(?:soft\s+tissue|subcutaneous|chest\s+wall|extremity|peripheral)\s+edema",
    ),
    "Fracture": (
        r"(?:catheter|line|wire|lead|tube)\s+fractures?",
        r"(?:no|without)\s+(?:\w+\s+){0,3}fracture\s+(?:fixation|hardware)",
    ),
}

# ---- heart and mediastinum: a subject plus a qualifier makes the mention ---------------------
#: The CheXpert labeler counts "heart size", "the heart", "contour" ... as mentions and lets
#: "normal"/"stable" patterns decide; here a subject needs a qualifier within its clause,
#: so a bare "the heart" never becomes a positive Cardiomegaly.
ATTRIBUTE_SUBJECTS: dict[str, str] = {
    "Cardiomegaly": (
        r"heart\s+size|cardiac\s+(?:size|silhouette|shadow|contours?|diameter|dimensions?)"
        r"|heart\s+(?:silhouette|shadow|contours?)|cardiothoracic\s+ratio|heart(?!\s+failure)"
    ),
    "Enlarged Cardiomediastinum": (
        r"cardio\s*-?\s*mediastinal\s+(?:silhouettes?|contours?|shadow|size|width|structures?|borders?)"
        r"|cardiomediastinum|mediastinal\s+(?:silhouettes?|contours?|width|shadow|configuration|structures?|borders?)"
        r"|(?:superior\s+)?mediastinum"
    ),
}
#: Qualifiers that make the subject an (abnormal) mention; negation/uncertainty then apply.
ABNORMAL_QUALIFIERS: dict[str, str] = {
    "Cardiomegaly": r"enlarg(?:ed|ement|ing)|increased|large|larger|prominent|prominence|globular",
    "Enlarged Cardiomediastinum": r"widen(?:ed|ing)|wide|enlarg(?:ed|ement)|increased|large|prominent|prominence",
}
#: Qualifiers that make the subject a negative mention (CheXpert negates these).
NORMAL_QUALIFIERS = (
    r"(?:top\s+)?normal|unremarkable|within\s+(?:the\s+)?(?:\w+\s+)?limits|upper\s+limits?\s+of\s+normal"
    r"|not\s+(?:\w+\s+)?enlarged|negative|satisfactory|small|no\s+enlargement"
)
#: Qualifiers that make the subject uncertain (CheXpert: stable/unchanged silhouette, borderline size).
UNCERTAIN_QUALIFIERS = (
    r"stable|unchanged|similar|not\s+(?:significantly\s+)?changed|no\s+(?:significant\s+|interval\s+)?change"
    r"|borderline|obscured|partially\s+obscured|not\s+well\s+(?:seen|visualized|evaluated)"
)
#: Words after which the qualifier search of a subject stops (another structure is described).
ATTRIBUTE_BOUNDARIES = (
    r"aorta|aortic|hila|hilar|hilum|lungs?|pulmonary|vascular\w*|vasculature|trachea|bones?|osseous"
    r"|spine|pleura\w*|diaphragm\w*|hemidiaphragms?|ribs?|there|which|with|and\s+there"
)

# ---- abnormalities outside the 13 observations ---------------------------------------------------
#: A positive or uncertain mention of any of these also rules out No Finding (as the CheXpert
#: labeler's "No Finding" phrase list does): No Finding means no abnormality at all, while
#: Support Devices alone do not count as a finding.
OTHER_FINDINGS: tuple[str, ...] = (
    r"granulom(?:a|as|atous)",
    r"calcifi(?:ed|cation|cations)",
    r"scar(?:s|ring|red)?|cicatri\w*|fibrosis|fibrotic",
    r"emphysema\w*|copd|chronic\s+obstructive|bullae|bullous|blebs?",
    r"hyper\s*-?\s*(?:inflat\w*|expan\w*|aerat\w*|lucen\w*)|(?:over|hyper)\s*-?\s*distended|flattening\s+of\s+the\s+(?:\w+\s+)?(?:hemi)?diaphragms?|flattened\s+(?:\w+\s+)?(?:hemi)?diaphragms?",
    r"degenerat\w*|spondylo\w*|osteophyt\w*|arthropath\w*|arthritis|dish",
    r"(?:dextro|levo)?scolio\w*|kyphosis|kyphotic|curvature",
    r"tortu\w*|ectasia|ectatic|aneurysm\w*|unfold\w*",
    r"atheroscler\w*",
    r"hernia\w*",
    r"eventration|elevat(?:ed|ion)\s+(?:of\s+)?(?:the\s+)?(?:\w+\s+)?(?:hemi)?diaphragm\w*|(?:hemi)?diaphragm\w*\s+(?:is\s+|are\s+|remains\s+)?(?:\w+\s+)?elevated",
    r"lung\s+volumes\s+(?:are|remain)\s+(?:\w+\s+){0,3}?(?:low|decreased|diminished|reduced|increased|large)|(?:diminished|decreased|reduced|increased)\s+lung\s+volumes",
    r"(?:bronchovascular|vascular)\s+crowding|crowding\s+of\s+(?:the\s+)?(?:\w+\s+)?(?:markings|vessels|vasculature|bronchovascular)",
    r"low\s+(?:lung\s+)?volumes?|hypo\s*-?\s*inflat\w*|hypoventilat\w*|poor\s+inspiration|shallow\s+inspiration",
    r"(?:increased|prominent|coarse|coarsened|chronic|accentuated)\s+(?:\w+\s+)?(?:interstitial|bronchovascular|lung|pulmonary)\s+markings",
    r"interstitial\s+(?:markings|prominence|disease|lung\s+disease|changes?|pattern|thickening)|reticula\w*",
    r"bronchiectasis|bronchitis|bronchiolitis|(?:bronchial\s+wall|peribronchial)\s+(?:thickening|cuffing)|airway\s+disease|reactive\s+airway",
    r"osteopeni\w*|demineraliz\w*|osteoporo\w*",
    r"deformit(?:y|ies)",
    r"(?:hilar|mediastinal)\s+(?:lymph\s*)?adenopathy|lymphadenopathy|adenopathy|(?:enlarged|prominent)\s+(?:\w+\s+)?(?:hila|hilum|lymph\s+nodes?)",
    r"pneumomediastinum|pneumoperitoneum|subcutaneous\s+emphysema|free\s+air",
    r"sternotomy|cabg|(?:surgical|vascular|cholecystectomy)\s+clips?|clips?|postsurgical|post\s*-?\s*surgical|post\s*-?\s*operative|surgical\s+changes|lobectomy|pneumonectomy|mastectomy|thoracotomy",
    r"(?:pulmonary\s+)?(?:arterial\s+)?hypertension",
    r"tuberculosis|sarcoid\w*|aspiration",
    r"thickening",
    r"densit(?:y|ies)",
    r"lucenc(?:y|ies)|lytic|sclerotic",
    r"foreign\s+bod(?:y|ies)|bullet|shrapnel|radiopaque",
    r"volume\s+loss",
    r"cysts?|cystic",
    r"prominent\s+(?:\w+\s+)?(?:hila|hilar|hilum|pulmonary\s+arter\w*)|(?:bi|peri)?hilar\s+(?:prominence|fullness|enlargement)|(?:prominence|fullness|enlargement)\s+of\s+the\s+(?:\w+\s+)?(?:hila|hilum)",
)

# ---- NegEx-style triggers -----------------------------------------------------------------------
#: Uncertainty phrases built on a negation word; checked before negation (as CheXpert does).
PRE_NEG_UNCERTAIN_PRE: tuple[str, ...] = (
    r"can\s*not\s+(?:\w+\s+)?(?:exclude|rule\s+out)|can't\s+(?:exclude|rule\s+out)",
    r"not\s+(?:\w+\s+)?(?:excluded|ruled\s+out)",
    r"(?:difficult|impossible|unable)\s+to\s+(?:exclude|rule\s+out)",
    r"no\s+new",
    r"no\s+evidence\s+to\s+rule\s+out",
)
PRE_NEG_UNCERTAIN_POST: tuple[str, ...] = (
    r"(?:can\s*not|cannot|could\s+not|can't|not)\s+(?:be\s+)?(?:\w+\s+)?(?:excluded|ruled\s+out)",
    r"(?:is|are)\s+not\s+(?:\w+\s+)?(?:excluded|ruled\s+out)",
)
NEGATION_PRE: tuple[str, ...] = (
    r"no",
    r"not",
    r"without",
    r"negative\s+for",
    r"free\s+of",
    r"clear\s+of",
    r"absence\s+of|absent",
    r"rather\s+than",
    r"resolution\s+of|resolved|removal\s+of|removed|interval\s+clearing\s+of",
    r"history\s+of",
    r"neither|nor|none",
    r"exclude[ds]?|ruled\s+out",
)
#: Phrases that contain a negation word but do not negate (NegEx "pseudo-negations"):
#: "no change in the calcified granuloma" reports a granuloma. Negation triggers inside
#: these spans are ignored.
PSEUDO_NEGATIONS: tuple[str, ...] = (
    r"no\s+(?:significant\s+|definite\s+|appreciable\s+)?(?:interval\s+)?(?:change|increase|decrease|worsening|improvement|progression|enlargement\s+of\s+the\s+(?:known|previous))",
    r"not\s+(?:significantly\s+)?(?:changed|increased|decreased|worsened|improved)",
    r"without\s+(?:significant\s+|interval\s+)?(?:change|increase|worsening|progression)",
    r"not\s+only|no\s+longer\s+(?:increasing|decreasing)",
)
NEGATION_POST: tuple[str, ...] = (
    r"(?:is|are|was|were|has\s+been|have\s+been)?\s*not\s+(?:be\s+|been\s+)?(?:seen|identified|present|demonstrated|evident|noted|detected|visible|apparent)",
    r"(?:is|are|has|have)?\s*(?:now\s+)?(?:resolved|cleared|clearing|resolving|gone|absent|removed)",
    r"(?:is|are)\s+no\s+longer\s+(?:seen|present|visible|evident|identified)",
    r"(?:is|are)?\s*ruled\s+out",
    r"(?:is|are|was|were)\s+negative",
    r"(?:is|are|appears?|remains?)\s+(?:\w+\s+)?(?:within\s+(?:the\s+)?(?:\w+\s+)?limits|normal|unremarkable)",
)
UNCERTAIN_PRE: tuple[str, ...] = (
    r"may|might|could",
    r"possible|possibly|probable|probably|presum(?:ed|ably|ptive)|perhaps|maybe|conceivabl[ey]",
    r"question(?:able)?|questionabl[ey]|\?",
    r"suspicious\s+(?:for|of)?|suspect(?:ed)?|suspicion\s+(?:for|of)",
    r"sugges(?:t|ts|ted|ting|tive)\s*(?:of)?",
    r"concern(?:ing)?\s+(?:for|of)?|worrisome\s+(?:for)?|worrisome",
    r"differential(?:\s+diagnos[ie]s)?(?:\s+includes?)?",
    r"consider(?:ed)?|correlat(?:e|ion)\s+(?:\w+\s+)?for",
    r"borderline|equivocal|indeterminate|uncertain",
    r"rule\s+out|r/o|(?:evaluate|evaluation|assessment)\s+(?:for|of)",
    r"less\s+likely|unlikely",
)
UNCERTAIN_POST: tuple[str, ...] = (
    r"(?:is|are|would\s+be)?\s*(?:possible|suspected|questioned|considered|not\s+excluded|favored|presumed)",
    r"(?:may|might|could|can)\s+(?:also\s+)?(?:be|have\s+been)",
    r"(?:is|are)?\s*(?:less\s+likely|unlikely)",
    r"(?:is|are)\s+(?:in|on)\s+the\s+differential|(?:is|are)\s+(?:another\s+|a\s+)?(?:consideration|possibility)",
    r"(?:is|are)?\s*not\s+(?:well\s+)?(?:visualized|evaluated|appreciated)|(?:poorly|incompletely)\s+(?:evaluated|visualized|seen)",
    r"(?:is|are)?\s*(?:partially\s+)?obscured",
    r"\?",
    r"(?:cannot|can\s+not)\s+be\s+(?:completely\s+|entirely\s+)?(?:excluded|ruled\s+out)",
)
#: "X or Y", "X versus Y": both are uncertain unless negated (CheXpert); a short two-sided scope.
CONJ_UNCERTAIN: tuple[str, ...] = (r"or|versus|vs",)
CONJ_SCOPE_TOKENS = 3

#: End the scope of a trigger (NegEx termination terms) within a sentence.
TERMINATORS: tuple[str, ...] = (
    r"but|however|although|though|except|whereas|while|yet|nevertheless|nonetheless|otherwise",
    r"aside\s+from|apart\s+from|other\s+than",
    r"which|that\s+(?:is|are|may|could)",
    r"there",
    r"[;:]",
)

#: Window sizes, in word tokens, of a trigger's scope (NegEx uses 5; lists of findings need more).
PRE_SCOPE_TOKENS = 12
POST_SCOPE_TOKENS = 5
#: Attribute subjects look this far for their qualifier.
QUALIFIER_BEFORE_TOKENS = 4
QUALIFIER_AFTER_TOKENS = 10
