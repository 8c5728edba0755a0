"""The veterinary reading of words a general profanity model takes as abuse.

A general model scores "spay the bitch before her next heat" or "his penis is swollen" as
obscene. `clinical_reading` rewrites normalised text for the model: anatomy, body fluids,
death and parasites lose their weight, and ambiguous words ("bitch", "cock", "ass", "balls")
take their animal sense when the message is about animals. What the words can still do when
aimed at a person (threats, insults, sexual harassment) is caught by `moderation.abuse_rules`,
which reads the text before this rewrite.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Words that in a vet consult are clinical far more often than abusive; the model does not see
# them. Aimed at a person they are caught by the abuse rules instead ("I will kill you").
_CLINICAL_WORDS = re.compile(
    r"\b(?:penis|penile|vaginal?|vulva|anus|anal|rectum|rectal|semen|sperm|scrotum|testicles?"
    r"|sex|sexed|sexing|sexual|sexually|nipples?|teats?|erection|hump(?:s|ed|ing)?"
    r"|mount(?:s|ed|ing)?|mat(?:e|ed|ing)"
    r"|poop(?:s|ed|ing|y)?|poo(?:s|ed|ing)?|feces|faeces|fecal|faecal|stools?"
    r"|vomit(?:s|ed|ing)?|puk(?:e|es|ed|ing)|pee(?:s|d|ing)?|urine|wee(?:s|d|ing)?"
    r"|blood|bloody|bleed(?:s|ing)?|smell(?:s|y|ing)?|stink(?:s|y|ing)?|fart(?:s|ed|ing)?"
    r"|lick(?:s|ed|ing)?|holes?|swallow(?:s|ed|ing)?|screws?|fat|obese|overweight"
    r"|kill(?:s|ed|ing|er)?|die[sd]?|dying|dead|death|suffer(?:s|ed|ing)?"
    r"|damn|hell|crap|crappy)\b"
)
_SUCKING_ON = re.compile(r"\bsuck(?:s|ed|ing)? on\b")

# Reproduction and dog words that make "bitch" mean a female dog.
_CANINE_CONTEXT = re.compile(
    r"\b(?:heat|season|spay\w*|unspayed|whelp\w*|litters?|pupp(?:y|ies)|pups?|stud|dam|sire"
    r"|mat(?:e|ed|ing)|tie|pregnan\w*|breed\w*|bred|vulva|nipples?|teats?|o?estrus"
    r"|progesterone|mammary|maiden|brood|dogs?|canine|kennels?|hips?|labrador|spaniel|collie"
    r"|terrier|retriever|shepherd|poodle|whippet|greyhound)\b"
)
_BITCH_AS_INSULT = re.compile(
    r"\b(?:you|you're|youre|son of a|such a|what a|stupid|dumb|silly|crazy|lazy|ugly"
    r"|useless|greedy|rude|arrogant|little|dirty|evil|psycho|old|fat)\s+(?:\w+\s+)?bitch"
    r"|\bbitch(?:es)?\s+(?:please|ass|slap)"
)
_BITCH = re.compile(r"\bbitch(es)?\b")

_POULTRY_CONTEXT = re.compile(
    r"\b(?:crow(?:s|ed|ing)?|hens?|chickens?|chicks?|coop|flock|poultry|comb|wattles?|roosters?"
    r"|cockerels?|laying|eggs?|bantams?|spurs|avian|birds?|feathers?)\b"
)
_COCK = re.compile(r"\bcock(s)?\b")

_ANIMAL_OWNER = r"(?:his|her|its|their|the dog's|the cat's|dog's|cat's|rabbit's|puppy's|kitten's)"
_ANIMAL_REAR = re.compile(
    rf"\b(?:ass|arse|butt|bum)(?=\s+glands?|\s+sacs?)|\b{_ANIMAL_OWNER}\s+(?:ass|arse|butt|bum)\b"
)
_TESTICLES = re.compile(
    rf"\b{_ANIMAL_OWNER}\s+balls\b|\bballs\s+(?:have|haven't|hasn't|dropped|descended|removed)\b"
)
_PUSSYCAT = re.compile(r"\bpussy\s?cats?\b")


def _female_dog(text: str) -> str:
    if _BITCH_AS_INSULT.search(text) or not _CANINE_CONTEXT.search(text):
        return text
    return _BITCH.sub(lambda match: "female dogs" if match.group(1) else "female dog", text)


def _rooster(text: str) -> str:
    return _COCK.sub("rooster", text) if _POULTRY_CONTEXT.search(text) else text


# (cheap substring checks, rewrite) pairs: most messages contain none of the substrings.
_CONTEXTUAL: tuple[tuple[tuple[str, ...], Callable[[str], str]], ...] = (
    (("bitch",), _female_dog),
    (("cock",), _rooster),
    (("pussy",), lambda text: _PUSSYCAT.sub("cat", text)),
    (("balls",), lambda text: _TESTICLES.sub("testicles", text)),
    (("ass", "arse", "butt", "bum"), lambda text: _ANIMAL_REAR.sub("bottom", text)),
    (("suck",), lambda text: _SUCKING_ON.sub("chews on", text)),
)


def clinical_reading(normalized: str) -> str:
    """The normalised text rewritten so that clinical language reads as clinical."""
    for needles, rewrite in _CONTEXTUAL:
        if any(needle in normalized for needle in needles):
            normalized = rewrite(normalized)
    return _CLINICAL_WORDS.sub("", normalized)
