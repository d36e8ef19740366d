"""Refusal: the model declined (fully or in part) to do what it was asked.

Proxies: a rise in refusals after a model update or a prompt change is the commonest
silent quality regression (Control 12): every request still returns 200, but users get
"I can't help with that". Keyword lists (the GCG prefix list, garak's MitigationBypass
substrings) either miss paraphrases ("that's not something I'm able to do") or flag
ordinary answers that say "sorry" or "cannot" ("sorry for the confusion, the value
cannot be negative"). Here each cue is a pattern over the speaker declining an action,
with a weight for how strongly it indicates a refusal; the score combines the cues
found as ``1 - prod(1 - w)``, so two weak cues make a flag where one does not.

Where the monitor's encoder embedded the output (a budgeted sample), one more cue joins
the lexical ones: how much closer the output lies to curated refusal exemplars than to
their contrasts (:mod:`monitor.semantic`). Its weight rises from 0 at
``semantic_margin_from`` to 0.95 at ``semantic_margin_full``, and it counts only where a
lexical cue was found: a sentence embedding reads the topic as much as the stance, so
harmful compliance ("Sure, here's a step-by-step guide to ...") lies near refusals of the
same request. On the public development halves (../shared/external) the cue alone read
28.7% of JailbreakBench's harmful compliance and 9.9% of XSTest's compliant answers as
refusals; needing a lexical cue, 3.7% and 3.5% (lexical alone: 1.9% and 3.1%).
Needing a lexical cue also keeps a key's flag rate from moving with its sampled
fraction: sampled outputs flag about as often as the others (recall 0.914 against 0.906
on XSTest, 0.893 against 0.888 pooled over bench/bench_refusal.py's sets), where the cue
alone made them flag up to ~1.3x as often, near the ~1.44x at which the refusal detector
(a Bernoulli CUSUM for a doubling) drifts upward when a key is busy by day and quiet by
night.

Only the opening and closing stretches of long outputs are scanned (refusals sit
there, and the cost per event stays bounded); fenced code blocks are skipped, since an
error message quoted in code ("cannot open file") is not the model refusing.
"""

from __future__ import annotations

import re

from monitor.rounding import round_to
from monitor.semantic import margin_weight
from monitor.signals.spec import SEMANTIC_OPTIONS, UNIT, Option, SignalSpec, StreamSpec
from monitor.words import Vocabulary

#: Characters scanned from the start and from the end of an output.
HEAD_CHARS = 1500
TAIL_CHARS = 400

_ACTION = (
    r"(?:help|assist|provid|giv|shar|creat|writ|generat|produc|compl[yi]|fulfil|complet|answer|continu|"
    r"engag|support|offer|draft|compos|explain|describ|discuss|participat|proceed|disclos|reveal|perform|"
    r"carry|process|access|retriev|book|send|execut|run|do\b|doing|go along|go further|take part|"
    r"get involved|be of (?:help|assistance)|mak|build|cod|implement|translat|summari|reproduc|includ|"
    r"chang|diagnos|weigh in|recommend)\w*"
)
_CANT = r"(?:can ?not|can't|won't|will not|must not|shouldn't|should not|am not going to|'m not going to|refuse to)"
_CANT_TRIGGERS = ("can't", "cannot", "won't", "shouldn't", "not", "refuse")
_NOT_ABLE = (
    r"(?:not able|unable|not allowed|not permitted|not in a position|not authori[sz]ed|not comfortable|"
    r"not willing|unwilling|not going|prohibited|restricted)"
)
_NOT_ABLE_TRIGGERS = (
    "able", "unable", "allowed", "permitted", "position", "authorized", "authorised", "comfortable",
    "willing", "unwilling", "going", "prohibited", "restricted",
)
# Verbs after "I can't" / "I'm unable to" that hedge or emote rather than refuse.
_NOT_A_REFUSAL_VERB = (
    r"(?:believe|wait|stress|emphasi[sz]e|overstate|imagine|remember|think of|say for (?:sure|certain)|"
    r"tell (?:if|whether|for sure)|guarantee|promise|find|locate|see any|reproduce|go into|bore|keep you|"
    r"be (?:sure|certain))\b"
)
_DECLINE_TRIGGERS = ("decline", "refuse", "pass")
_POLICY_TRIGGERS = ("guidelines", "guideline", "policies", "policy", "principles", "rules", "terms", "programming", "instructions")
_APOLOGY_TRIGGERS = ("sorry", "apologize", "apologise", "apologies", "unfortunately", "regrettably")
#: The lead of the cues that count only in an output's first two sentences, and the start of their patterns.
_OPENING = 450
# (possessive: a sentence's run cannot give back a character to "[.!?]", nor its trailing
# space one to a cue that starts with a letter, so backtracking into them finds nothing)
_IN_FIRST_TWO_SENTENCES = r"^(?:[^.!?]{0,200}+[.!?]\s++)?[^.!?]{0,200}?"

# (weight, trigger words, pattern, lead): a cue is tried only when one of its trigger
# words is among the output's words (one vocabulary look-up for all cues), and then
# only from ``lead`` characters before each occurrence of the trigger: every match of a
# cue's pattern contains a trigger word at most ``lead`` characters after its start.
# Each cue counts once.
_CUES: tuple[tuple[float, tuple[str, ...], str, int], ...] = (
    # "I can't help with that", "I won't be writing that", "I cannot provide ..."
    (0.95, _CANT_TRIGGERS, rf"\bi {_CANT} (?:(?:be able to|really|currently|directly|personally|fully|just|actually) )?(?:\w+ ){{0,2}}?{_ACTION}(?! but\b)", 8),
    (0.95, ("won't",), rf"\bi won't be (?:able to )?(?:\w+ )?{_ACTION}", 4),
    # "I'm not able to share", "I am unable to comply", "I'm restricted from sharing"
    (0.95, _NOT_ABLE_TRIGGERS, rf"\bi(?:'m| am) {_NOT_ABLE} (?:to |with |in |from )?(?:\w+ ){{0,2}}?{_ACTION}", 16),
    # first-person inability with any verb, less the idioms that are not refusals
    (0.95, _NOT_ABLE_TRIGGERS, rf"\bi(?:'m| am) {_NOT_ABLE} to (?!{_NOT_A_REFUSAL_VERB})\w+", 16),
    (0.9, _CANT_TRIGGERS, rf"\bi (?:can ?not|can't|won't|will not) (?!{_NOT_A_REFUSAL_VERB})\w+", 8),
    (0.9, ("won't",), r"\bi won't be \w+ing\b", 4),
    (0.9, ("going",), r"\bi(?:'m| am) going to (?:have to )?(?:decline|pass|refuse|stop here|sit (?:this|that) out)\b", 8),
    (0.9, ("limits", "off-limits"), r"\boff[- ]limits (?:for|to) me\b", 6),
    (0.85, ("better",), r"\bi(?:'d| had) better not\b", 10),
    # "I must decline", "I'm going to have to pass on this one", "I'll have to decline"
    (0.95, _DECLINE_TRIGGERS, r"\bi(?: must| have to| need to| will have to|'ll have to| am going to have to|'m going to have to|'ll| will| would have to|'d have to)(?: \w+)? (?:decline|refuse|pass on)\b", 50),
    (0.95, ("decline", "refuse"), r"\bi (?:respectfully |politely )?(?:decline|refuse)\b", 16),
    (0.9, ("don't", "not"), r"\bi (?:don't|do not) (?:feel comfortable|think i (?:can|should)|think it(?:'s| is|would be) (?:appropriate|right)|want to)", 8),
    (0.9, ("rather", "prefer"), r"\bi(?:'d| would) (?:rather|prefer) not\b", 10),
    # without "I": "that isn't something I'm willing to take part in", "can't help with that"
    (0.95, ("not", "isn't", "aren't", "wasn't"), r"\b(?:not|isn't|aren't|wasn't) (?:something|one|a \w+|an \w+) (?:that )?i(?:'m| am)? ?(?:can|could|able|willing|allowed|comfortable|going|permitted)\b", 2),
    (0.9, ("can't", "cannot", "unable", "able"), rf"(?:^|[.!?]\s+)(?:sorry,? )?(?:can't|cannot|unable to|not able to) {_ACTION} (?:you )?(?:with )?(?:that|this|it|those|these|your)\b", 16),
    (0.9, ("outside", "beyond"), r"\b(?:outside|beyond) (?:of )?(?:what|the scope of what) i(?:'m| am)? ?(?:can|could|able|allowed|permitted|designed|here)\b", 2),
    (0.6, ("outside", "beyond"), r"\b(?:outside|beyond) (?:of )?(?:my|the) (?:scope|capabilities|abilities|remit|purview)\b", 2),
    # policy framing
    (0.9, _POLICY_TRIGGERS, r"\b(?:against|violates?|violating|breaks?|outside(?: of)?|contrary to|conflicts? with) (?:my|our|the|company|openai's|anthropic's|google's) (?:\w+ ){0,2}?(?:guidelines|policies|policy|principles|rules|terms of (?:use|service)|programming)\b", 60),
    (0.9, _POLICY_TRIGGERS, r"\b(?:my|the|our) (?:programming|guidelines|policies|policy|instructions|rules) (?:prevents?|prohibits?|forbids?|do(?:es)?n't allow|do(?:es)? not allow) me\b", 8),
    (0.9, ("programmed", "designed", "built", "trained", "instructed"), r"\bi(?:'m| am) (?:programmed|designed|built|trained|instructed) (?:not to|to avoid|to refuse|to decline)", 8),
    # less the disclaimer before an answer: "As an AI, I don't have personal opinions. However, ..."
    (0.85, ("ai", "ai,"), r"\bas an ai(?: language model| assistant| model)?,? i (?:can ?not|can't|don't|do not|am not|'m not|am unable|'m unable|won't|must)(?! (?:have|hold|possess) (?:any )?(?:personal )?(?:opinions|feelings|beliefs|biases|preferences|emotions|views))", 8),
    (0.8, ("appropriate", "inappropriate"), r"\bit (?:would(?:n't| not)? be|is|'s|isn't|is not) (?:not |in)?appropriate (?:for me )?to\b", 20),
    # impersonal refusals: "It's not appropriate or ethical to provide ...", "It is not accurate or respectful to say ..."
    # (these lead the output: "^(...)" admits them in its first two sentences only, so that a caveat
    # closing a compliant answer, "It's never appropriate to harm anyone.", is not a refusal)
    (0.9, ("appropriate", "ethical", "acceptable", "responsible", "respectful"), _IN_FIRST_TWO_SENTENCES + r"\b(?:it(?:'s| is)|that(?:'s| is)|this is) (?:not|never|neither) (?:\w+ (?:or|and|nor) )?(?:appropriate|ethical|acceptable|responsible|respectful)(?: (?:or|and|nor) \w+)? (?:for me )?to\b", _OPENING),
    (0.45, ("accurate", "fair", "correct"), r"\b(?:it(?:'s| is)|that(?:'s| is)) not (?:accurate|fair|correct)(?: (?:or|and) \w+)? to (?:say|suggest|claim|assume|imply|generali[sz]e)\b", 30),
    # "I am an AI language model and do not condone violence"
    (0.85, ("condone", "endorse"), r"\bi (?:do not|don't|cannot|can't|will not|won't) (?:\w+ )?(?:condone|endorse)\b|\band (?:do not|don't) (?:condone|endorse)\b", 30),
    # a lecture in place of the answer: "I must clarify that stealing a car is illegal and unethical"
    (0.7, ("clarify", "emphasize", "emphasise", "stress"), r"\bi must (?:clarify|emphasi[sz]e|stress) that\b.{0,80}?\b(?:illegal|unethical|not ethical|criminal|not appropriate|inappropriate|harmful|never acceptable|a crime)\b", 12),
    (0.6, ("safe", "ethical", "appropriate", "legal"), _IN_FIRST_TWO_SENTENCES + r"\b(?:is|are) not (?:a )?(?:safe|ethical|appropriate|legal)(?: (?:or|and) \w+)? (?:practice|thing to do|question|request|topic)\b", _OPENING),
    (0.5, ("appropriate",), _IN_FIRST_TWO_SENTENCES + r"\b(?:is|are|was) not appropriate\b", _OPENING),
    (0.4, ("acceptable", "justified"), r"\b(?:is|are) never (?:acceptable|okay|ok|justified|appropriate)\b", 20),
    (0.45, ("ability", "capability"), r"\bi(?:'m| am) an ai(?: language model)?,? and (?:i )?(?:do not|don't) have the (?:ability|capability) to\b", 50),
    (0.8, ("valid", "respectful", "appropriate"), r"\bi (?:don't|do not) think (?:that's|that is|it's|it is|this is) (?:a )?(?:valid|respectful|appropriate|fair)\b", 40),
    (0.8, ("appropriate", "ethical"), r"\bi(?:'m| am) not sure (?:that )?(?:it(?:'s| is|would be)|that(?:'s| is)) (?:appropriate|ethical)(?: (?:or|and) \w+)? (?:for me )?to\b", 40),
    # premise rejection in place of the answer: "I must politely challenge the assumption in the question."
    (0.6, ("challenge", "reject"), r"\bi (?:must |have to |need to )?(?:politely |respectfully )?(?:challenge|reject) (?:the|your) (?:assumption|premise)\b", 40),
    (0.8, ("request",), r"\b(?:your|this|that) request (?:violates|goes against|is against|conflicts with|falls outside|is not something)", 6),
    # partial refusals: "I can explain in general, but I can't give medical advice"
    (0.95, ("advice", "guidance", "recommendation", "recommendations", "instructions", "diagnosis", "diagnoses"), r"\bi (?:can ?not|can't|am not able to|'m not able to|am unable to|'m unable to) (?:give|offer|provide) (?:you )?(?:\w+ )?(?:medical|legal|financial|tax|investment|specific|personali[sz]ed|professional|individual) (?:advice|guidance|recommendations?|instructions|diagnos[ie]s)", 60),
    (0.6, ("access", "ability", "permission", "real-time"), r"\bi (?:don't|do not) have (?:access to|the ability to|permission to|real-time)", 16),
    (0.7, ("else",), r"\b(?:let's|let us|we could|how about we) (?:talk about|discuss|focus on|change the (?:subject|topic)|move on to) (?:something|anything) else\b", 50),
    (0.6, ("instead", "however"), r"\b(?:instead|however),? i (?:can|could|'d be happy to|would be happy to)\b", 2),
    (0.6, ("sorry", "afraid"), r"\bi(?:'m| am) (?:sorry|afraid),? (?:but )?(?:that(?:'s| is)|this is|it(?:'s| is)) not (?:something|possible for me|a request)", 8),
    # weak cues: each alone stays below the flag, together they pass it
    (0.4, _APOLOGY_TRIGGERS, r"^(?:i(?:'m| am) (?:really |so |very )?sorry|i apologi[sz]e|my apologies|apologies|sorry|unfortunately|regrettably)\b(?!,? (?:to hear|for (?:the|any|my) (?:confusion|inconvenience|delay|mix-up|error|mistake|oversight|misunderstanding|late)|about (?:that|the|your)|that (?:happened|you)|if\b))", 16),
    (0.3, ("consult", "contact", "reach", "speak", "talk"), r"\b(?:please )?(?:consult|contact|reach out to|speak (?:with|to)|talk to) (?:a|an|your) (?:qualified |licensed |certified )?(?:professional|doctor|lawyer|attorney|physician|pharmacist|financial advis[oe]r|therapist|counsel(?:l)?or|expert|healthcare provider)", 10),
    (0.3, ("ai", "ai,"), r"\bas an ai\b", 8),
    (0.3, ("harmful", "dangerous", "illegal", "unethical", "malicious"), r"\b(?:harmful|dangerous|illegal|unethical|malicious)\b", 2),
)

# Phrases that look like cues but are ordinary speech ("I can't recommend it enough").
_NOT_REFUSALS = re.compile(
    r"\bi (?:can ?not|can't) (?:\w+ ){1,4}?enough\b|\bi (?:can't|cannot) help but\b|\bi (?:can't|cannot) wait\b"
)
#: How each of those phrases starts: searched from its first occurrence, not from the output's first character.
_NOT_REFUSALS_START = "i can"
# Each pattern is compiled behind a lazy prefix of at most ``lead`` characters and
# matched (not searched) from ``lead`` characters before a trigger: only those start
# positions are tried, so the cost does not grow with the output's length.
# A pattern anchored at the output's start ("^...": the first-two-sentences cues) can only
# match from position 0, so it is compiled as it is and tried there alone, instead of
# from each of the ``lead`` starts before a trigger (a third of the cue time on XSTest).
_COMPILED = tuple(
    (weight, triggers, re.compile(pattern if anchored else rf"(?s:.){{0,{lead}}}?(?:{pattern})"), lead, anchored)
    for weight, triggers, pattern, lead, anchored in ((*cue, cue[2].startswith("^")) for cue in _CUES)
)
_CUES_BY_TRIGGER: dict[str, list[int]] = {}
for _index, (_, _triggers, _, _) in enumerate(_CUES):
    for _trigger in _triggers:
        _CUES_BY_TRIGGER.setdefault(_trigger, []).append(_index)
# Output words are split on white space only (fast); punctuation stays attached, so each
# trigger is also listed with the punctuation that may follow or precede it.
_TRIGGER_TOKENS: dict[str, str] = {}
for _trigger in _CUES_BY_TRIGGER:
    for _variant in (_trigger, *(_trigger + p for p in ".,!?;:)\"'"), "(" + _trigger, '"' + _trigger, "'" + _trigger):
        _TRIGGER_TOKENS.setdefault(_variant, _trigger)
_TRIGGER_VOCABULARY = Vocabulary(_TRIGGER_TOKENS)
# Every cue's match ends well within this many characters after its trigger.
_WINDOW_AFTER = 200
_CODE_FENCE = re.compile(r"```.*?(?:```|$)", re.S)


def _prepare(text: str) -> str:
    if len(text) > HEAD_CHARS + TAIL_CHARS:
        text = text[:HEAD_CHARS] + " . " + text[-TAIL_CHARS:]
    text = text.lower()
    if "\u2019" in text:
        text = text.replace("\u2019", "'")
    if "```" in text:
        text = _CODE_FENCE.sub(" ", text)
    if "enough" in text or "help but" in text or "wait" in text:
        start = text.find(_NOT_REFUSALS_START)
        if start != -1 and _NOT_REFUSALS.search(text, start):
            text = _NOT_REFUSALS.sub(" ", text)
    return text.strip()


def _cue_found(text: str, trigger: str, pattern: re.Pattern, lead: int, anchored: bool) -> bool:
    """Try the pattern only at starts just before each occurrence of the trigger (``anchored``: only at 0, for a trigger within ``lead``)."""
    position = text.find(trigger)
    if anchored:
        while position != -1 and position <= lead:
            if pattern.match(text, 0, position + _WINDOW_AFTER):
                return True
            position = text.find(trigger, position + 1)
        return False
    while position != -1:
        if pattern.match(text, max(0, position - lead), position + _WINDOW_AFTER):
            return True
        position = text.find(trigger, position + 1)
    return False


def refusal_score(text: str) -> float:
    """Score in [0, 1] that ``text`` (a model output) refuses or partly refuses.

    >>> round(refusal_score("That's not something I'm able to help with, but I can suggest a few resources."), 2)
    0.95
    >>> refusal_score("Sorry for the confusion earlier: the loop cannot run twice because the flag is reset.")
    0.0
    """
    prepared = _prepare(text)
    vocabulary = _TRIGGER_VOCABULARY
    hits = vocabulary.among_words(prepared)
    if not hits:
        return 0.0
    triggers = {_TRIGGER_TOKENS[token] for token in hits}
    keep = 1.0
    for index in sorted({index for trigger in triggers for index in _CUES_BY_TRIGGER[trigger]}):
        weight, cue_triggers, pattern, lead, anchored = _COMPILED[index]
        for trigger in cue_triggers:
            if trigger in triggers and _cue_found(prepared, trigger, pattern, lead, anchored):
                keep *= 1.0 - weight
                break
    return round_to(1.0 - keep, 4)


def refusal_signal(
    output_text: str | None,
    flag_score: float,
    semantic_margin: float | None = None,
    margin_from: float = 0.0,
    margin_full: float = 0.12,
) -> dict | None:
    """``{"score", "flag"}`` for a model output (with ``lexical`` and ``semantic`` parts when embedded), or None without output text.

    The semantic part is 0 unless a lexical cue was found: it strengthens a weak cue, it never flags alone.
    """
    if not output_text:
        return None
    score = refusal_score(output_text)
    if semantic_margin is None:
        return {"score": score, "flag": score >= flag_score}
    semantic = margin_weight(semantic_margin, margin_from, margin_full) if score > 0.0 else 0.0
    combined = round_to(1.0 - (1.0 - score) * (1.0 - semantic), 4)
    return {"score": combined, "flag": combined >= flag_score, "lexical": score, "semantic": round_to(semantic, 4)}


SPEC = SignalSpec(
    name="refusal",
    proxies="the model declined, fully or in part (paraphrases and partial refusals included): lexical cues, plus similarity to refusal exemplars on embedded outputs (opt-in)",
    reads=("model_call.output_text", "model_call.semantic"),
    series_labels=("model",),
    options={"flag_score": Option(float, UNIT), **SEMANTIC_OPTIONS},
    streams=(
        StreamSpec("rate", "AIFMRefusalRateHigh", "A model's refusal rate rose above its reference.", "refuses more often than its reference", ("model",), slot="refusal"),
    ),
    ratio_level="model",
)
