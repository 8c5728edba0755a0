"""Abuse aimed at a person, which a word-level profanity model cannot see.

"I will find you and hurt you" has no obscene word, and "you stupid cow" has a farm animal in
it. These rules read normalised text (see `moderation.normalize`) and look for the shape of
abuse: a first person promising violence to "you" or to staff, an insult noun or adjective
aimed at "you" or at a vet, persistent or sexual attention to staff, doxxing.

The four rule sets run as one RE2 set (`re2.Set`): a single linear-time pass over the text tells
which of them match. Python's `re` tried each alternative at each position, a quarter of the
learned model's time per message. RE2's word boundaries and its word and space classes are
ASCII, which is what normalised text holds (`moderation.normalize` folds accents and look-alike
letters to Latin); a test checks that both engines agree on the corpus and on random text made
of the rules' words. RE2 has no lookaround, hence `_NOT_BEFORE_FROM`.
"""

from __future__ import annotations

from collections.abc import Collection

import re2  # type: ignore[import-untyped]

from moderation.labels import Label

RULE_CONFIDENCE = 0.9

_YOU = r"(?:you|ya|ye)"
_YOUR = r"(?:your|yer)"
_YOU_ARE = r"(?:you(?:'re|re| are| r)|ur)"
_I_WILL = (
    r"(?:i'?ll|we'll"
    r"|(?:i|we)(?: will| shall|'d| would| gonna|(?:'m|m| am|'re| are) (?:going to|gonna)))"
    r"(?: (?:just|really|seriously|personally|fucking|absolutely))*"
)
_STAFF = (
    r"(?:vets?|doctors?|docs?|dr \w+|nurses?|receptionists?|staff|clinic|practice|team"
    r"|boss|manager|you people|your lot)"
)
_TARGET = rf"(?:{_YOU}|{_YOUR} \w+|(?:the|that|this|your) {_STAFF}|{_STAFF})"
_HARM = r"(?:kill|murder|hurt|harm|stab|shoot|strangle|choke|beat up|punch|slap|batter|destroy|end)"
_BRUTAL = r"(?:kill|murder|stab|shoot|strangle|punch|slap|batter)"

_THREAT = "|".join(
    (
        rf"\b{_I_WILL} {_HARM} {_TARGET}\b",
        rf"\b{_I_WILL} {_BRUTAL} (?:him|her|them)\b",
        rf"\b{_I_WILL} find {_YOU}(?: and|\s*[.!]|\s*$)",
        rf"\b(?:smash|kick|punch|break|bash|cave) (?:in )?(?:{_YOUR}|his|her) (?:\w+ )?"
        r"(?:face|head|teeth|skull|legs?|arms?|neck|jaw|nose)",
        r"\bbeat the (?:shit|crap|hell|life|living daylights) out of\b",
        r"\bslit (?:your|his|her) throat",
        rf"\b{_YOU}(?:'ll| will|'re going to| are going to|'re gonna| are gonna) "
        r"(?:regret|pay for)\b",
        rf"\b{_YOU}(?:'ll| will) pay\b|\bmake {_YOU} (?:pay|suffer|sorry)\b",
        rf"\b{_YOU}(?:'re| are) (?:going to|gonna) (?:get hurt|suffer|get it|bleed)\b",
        rf"\b(?:going to|gonna|will) happen to {_YOU}\b",
        r"\bhurt (?:somebody|someone|anyone|people|everyone)\b",
        rf"\b(?:find out|found out|know) where {_YOU} live\b",
        rf"\block {_YOUR} doors?\b",
        rf"\bwait(?:ing)? for {_YOU} (?:outside|after work|after your shift|in the car ?park)",
        r"\bsettle this (?:outside|in person|my way|properly)\b",
        rf"\b{_YOU_ARE} (?:dead|finished|done for|going to die)\b",
        r"\bwhat'?s coming to (?:you|ya)\b",
        rf"\b{_YOU} won'?t see it coming\b",
        r"\bwatch (?:your|yer) back\b",
        r"\bsleep with one eye open\b",
        r"\bsee what happens\b",
        r"\bmark my words\b",
        r"\bi know (?:where|which|what time|your)\b.{0,20}\b(?:you|your|yours|live|address)\b",
        r"\bi hope (?:you|your \w+) (?:die|dies|rot|suffer|get hit|burn)",
        r"\b(?:go |just )?kill (?:yourself|yourselves|urself)\b",
        r"\bdrop dead\b",
        r"\bput (?:you|ya) in (?:the ground|a grave|hospital|a box)\b",
        r"\bpay(?:ing)? (?:you|ya) a (?:little )?visit\b",
        rf"\bturn(?:s|ing)? up at {_YOUR} (?:house|home|door|work|place)\b",
        rf"\b(?:i'm|im|i am) coming for {_YOU}\b",
        r"\bi'?ll be waiting (?:for you|outside|in the car ?park|at your)",
        r"\b(?:i have|i've got|i got|i own) an? (?:gun|knife|shotgun|rifle|weapon|blade)\b",
        r"\b(?:someone|somebody|people) (?:should|will|ought to|is going to) "
        r"(?:kill|burn|hurt|shoot|stab|beat)\b",
        rf"\b(?:burn|blow up) (?:down )?(?:{_YOUR}|the|that) (?:clinic|practice|house|place)",
        rf"\b{_YOUR} (?:clinic|practice|house|home|car|place) (?:will|is going to|gonna) burn",
        rf"\b{_YOUR} (?:kids|children|family|wife|husband|daughter|son)\b.{{0,30}}"
        r"\b(?:alone|would be a shame|accident|safe)\b",
    )
)

_INSULT_NOUN = (
    r"(?:idiots?|morons?|imbeciles?|cretins?|clowns?|muppets?|fools?|twats?|pricks?|dicks?"
    r"|dickheads?|assholes?|arseholes?|bastards?|bitch(?:es)?|cunts?|cows?|pigs?|slobs?|hags?"
    r"|witch(?:es)?|quacks?|frauds?|scammers?|crooks?|thie(?:f|ves)|liars?|butchers?|joke"
    r"|losers?|jerks?|tossers?|wankers?|retards?|scum|trash|garbage|fuck|motherfuckers?"
    r"|dumbass|shit|piece of (?:shit|crap|garbage|trash|work)|excuse for an? \w+(?: \w+)?"
    r"|embarrassment|disgrace|parasites|vultures|leeches)"
)
_INSULT_ADJ = (
    r"(?:stupid|dumb|thick|useless|incompetent|pathetic|worthless|ignorant|brainless|clueless"
    r"|arrogant|greedy|lazy|fat|ugly|disgusting|rude|heartless|horrible|terrible|awful|worst"
    r"|money[- ]?grabbing|hopeless|moronic|idiotic|retarded|shit|shitty|crap|rubbish|dumbass"
    r"|dumbest|stupidest|thickest|laziest|greediest|ugliest)"
)
# Intensifiers are insults only next to an insult ("complete idiot"), never before "vet".
_INTENSIFIER = (
    r"(?:absolute|complete|total|utter|little|old|fucking|bloody|such|so|really|just|one|the"
    r"|a|an|nothing but a)"
)
_INSULT_WORDS = rf"(?:(?:{_INTENSIFIER}|{_INSULT_ADJ}) )*"
# "Your nurse is ..." or "Dr Smith is ...", not "our old vet was ...": reported speech.
_DETERMINED_STAFF = rf"(?:(?:your|the|that|this|these|those|all your) (?:\w+ )?{_STAFF}|dr \w+)"

_INSULT = "|".join(
    (
        rf"\b{_YOU_ARE},? {_INSULT_WORDS}(?:{_INSULT_NOUN}|{_INSULT_ADJ})\b",
        rf"\b{_YOU} {_INSULT_WORDS}{_INSULT_NOUN}\b",
        rf"\b(?:what|such) an? {_INSULT_WORDS}{_INSULT_NOUN}\b",
        rf"\bwhat kind of {_INSULT_NOUN}\b",
        rf"\b{_INSULT_ADJ} {_STAFF}\b",
        rf"\b{_DETERMINED_STAFF} (?:is|are|was|were) {_INSULT_WORDS}"
        rf"(?:{_INSULT_NOUN}|{_INSULT_ADJ})\b",
        rf"\bare (?:{_YOU}|{_DETERMINED_STAFF}) (?:(?:a|an|this|that|so|really|just) )?"
        rf"(?:{_INSULT_ADJ}|{_INSULT_NOUN}|deaf|blind)\b",
        r"(?:^|[.!?,] *)(?:just |oh )?(?:shut (?:the \w+ )?up|get lost)\b",
        rf"\bshut (?:the \w+ )?up,? {_YOU}\b",
        r"\b(?:piss|sod|bugger|fuck) off\b|\bgo to hell\b|\bup yours\b|\beat shit\b",
        rf"\b(?:screw|fuck|damn) {_YOU}\b|\bgo fuck (?:yourself|urself)\b",
        r"\bkiss my (?:ass|arse|butt)\b",
        rf"\b{_YOU} call (?:yourself|yourselves) an? {_STAFF}\b",
    )
)

# The word ends, and " from" does not follow ("you don't know your ass from your elbow").
_NOT_BEFORE_FROM = r"(?:$|[^\w ]| (?:$|[^f]|f(?:$|[^r]|r(?:$|[^o]|o(?:$|[^m])))))"

_SEXUAL = "|".join(
    (
        rf"\bwhat are {_YOU} wearing\b",
        rf"\bsend (?:me )?(?:a |some )?(?:pics?|pictures?|photos?|nudes|selfies?)\b.{{0,30}}"
        rf"\b(?:of )?(?:{_YOU}|yourself)\b",
        rf"\b{_YOU_ARE} (?:so |really |very )?(?:hot|sexy|fit|gorgeous|beautiful|pretty)\b",
        r"\bsexy\b|\bnudes?\b|\bsuck my\b|\b(?:tits|boobs)\b",
        rf"\b{_YOUR} (?:breasts|ass|arse|lips){_NOT_BEFORE_FROM}",
        rf"\bshow me {_YOUR} (?:body|breasts|ass|arse|legs|chest)\b",
        r"\b(?:look|be|get) (?:good |hot )?naked\b",
        r"\btake (?:your|yer|that|the) (?:top|clothes|shirt|bra|uniform) off\b",
        r"\bexamine me\b",
    )
)

_HARASSMENT = "|".join(
    (
        r"\b(?:keep|keeps|keep on|will keep|i'll keep) (?:messaging|calling|texting|emailing"
        r"|ringing|phoning|coming|writing)\b.{0,30}\b(?:until|till|every)\b",
        r"\bevery (?:hour|morning|day|night|single day)\b.{0,40}\buntil\b",
        r"\b(?:answer|reply to|respond to) me\b.{0,20}\b(?:answer|reply to|respond to) me\b",
        r"\b(?:answer|reply to|respond to) me now\b",
        rf"\bwhy won'?t {_YOU} (?:reply|answer|respond)\b|\bdon'?t ignore me\b",
        rf"\bi (?:know|can see) {_YOU_ARE} online\b|\bi know {_YOU} like me\b",
        r"\bi(?:'ve| have)? (?:found|got|know|have) (?:your|yer) (?:instagram|facebook"
        r"|twitter|tiktok|linkedin|socials|address|home address|number|phone number"
        r"|husband|wife|kids|children|family|daughter|son|car|house)\b",
        r"\bscreenshots of (?:your|yer)\b",
        r"\b(?:post|share|publish|put|leak|sent|send)\w* (?:your|yer) (?:home )?(?:address"
        r"|number|details|photos?|pictures?|face)\b",
        rf"\bi(?:'ve| have) been (?:watching|following) {_YOU}\b",
        rf"\bi (?:can )?see {_YOU} (?:through|from|leaving|at|in)\b",
        rf"\bi (?:saw|seen|spotted|followed) {_YOU} (?:at|in|outside|leaving|with|on)\b",
        rf"\b{_YOUR} (?:daughter|son|kids|children|husband|wife|family|partner) "
        r"(?:goes|go|lives|live|works|work|walks|walk|drives|drive|plays|play)\b",
        r"\bi'?m (?:outside|parked outside|at) (?:your|yer|the) (?:clinic|house|home|work"
        r"|door|office|practice)\b",
        r"\bnice (?:house|car|kids|family)\b",
        r"\bruin (?:your|yer) (?:life|career|business|reputation)\b",
        rf"\bmake sure {_YOU} never work\b",
        r"\bmake (?:your|yer) life (?:hell|a misery|miserable|a living hell)\b",
        rf"\b(?:everyone|everybody|the whole town|the town|all) will know {_YOU_ARE}\b",
        r"\b(?:tell|telling|warn|warning) (?:the whole|everyone|everybody|the town|all)\b",
        r"\bfake (?:accounts|reviews|profiles)\b",
        rf"\bwon'?t protect {_YOU}\b",
        r"\bgo back to (?:your (?:own )?country|where you (?:came|come) from|the kitchen)\b",
        r"\b(?:women|woman|girls) (?:shouldn'?t|can'?t|should not|cannot) be\b",
        r"\bforeign (?:idiot|vet|doctor|rubbish|trash)s?\b|\bcan'?t speak english\b",
        rf"\b{_YOU} people are\b|\bslave\b|\bhag\b|\bforeigners? like {_YOU}\b",
    )
)


ALL_RULE_LABELS = (Label.INSULT, Label.THREAT, Label.HARASSMENT, Label.SEXUAL)
RULE_PATTERNS: dict[str, str] = {
    Label.INSULT: _INSULT,
    Label.THREAT: _THREAT,
    Label.HARASSMENT: _HARASSMENT,
    Label.SEXUAL: _SEXUAL,
}
_RULE_SET = re2.Set.SearchSet()
for _pattern in RULE_PATTERNS.values():
    _RULE_SET.Add(_pattern)  # indices follow RULE_PATTERNS' order
_RULE_SET.Compile()
_LABEL_OF_INDEX = tuple(RULE_PATTERNS)


def matching_rules(normalized: str) -> set[str]:
    """The rule sets (labels) with a pattern that matches normalised text."""
    return {_LABEL_OF_INDEX[index] for index in _RULE_SET.Match(normalized) or ()}


def abuse_scores(normalized: str, labels: Collection[str] = ALL_RULE_LABELS) -> dict[str, float]:
    """Rule scores for insult, threat, harassment and sexual harassment of normalised text
    (only `labels`, when the caller needs fewer: the send path's screen asks for threats).

    Directed sexual content is harassment too, so it raises both labels.
    """
    matched = matching_rules(normalized)
    if Label.SEXUAL in matched:
        matched.add(Label.HARASSMENT)
    return {
        label: RULE_CONFIDENCE if label in matched else 0.0
        for label in labels
        if label in RULE_PATTERNS
    }
