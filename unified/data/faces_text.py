"""SynthFaces text: VQA, caption and generation templates, answers and the question types' metrics.

The paper's templated CelebA (docs/PAPER.md §4) publishes no templates, so these follow SmartWatch's notebook
(`smartwatch_text.py`): about ten paraphrases per question, captions and prompts built from per-attribute
clauses each included with its own probability, and one canonical answer word per attribute value.

Attributes (`data.freq.<task>.<attribute>`, filled from `default_freq()` by `config.resolve`):
- categorical: `hair_color` (black / brown / blond / gray), `skin_tone` (light / medium / dark); asked
  "what", answered with the word;
- binary, CelebA-style: `smiling`, `eyeglasses`, `hat`, `beard`; asked "is/does", answered "yes" / "no";
  captions and prompts name both polarities ("wearing glasses", "without glasses");
- `background` (blue / green / purple / pink / teal / white): drawn but never named by default, like the
  watch's face colour, so a concept-transfer run can switch it on in one task only.
Every answer is scored by the paper's substring match (metrics.substring_score). So that a wrong answer never
contains a right one, no template word contains an answer word of another value (no "eyes": it holds "yes";
no "not": it holds "no"); tests/test_faces.py checks this.

Frequencies: `vqa.<attr>` is a relative weight over question types (0.2 each, as SmartWatch, but the hat
0.05: one VQA question in 21); `caption.<attr>` and `gen.<attr>` are clause probabilities (0.5 each: half the
prompts name an attribute). Evaluation asks every question type equally often, whatever its weight.
"""

from __future__ import annotations

from unified.data.turns import pick, turn_attributes

HAIR_COLORS = ("black", "brown", "blond", "gray")  # CelebA: Black_Hair, Brown_Hair, Blond_Hair, Gray_Hair
SKIN_TONES = ("light", "medium", "dark")  # CelebA has only Pale_Skin; three tones make it a real question
BACKGROUNDS = ("blue", "green", "purple", "pink", "teal", "white")
BINARY = ("smiling", "eyeglasses", "hat", "beard")  # CelebA: Smiling, Eyeglasses, Wearing_Hat, not No_Beard
YES_NO = ("no", "yes")  # index = the attribute's 0/1 value

ATTRIBUTES = ("hair_color", "skin_tone", "smiling", "eyeglasses", "hat", "beard", "background")
VALUES = {"hair_color": HAIR_COLORS, "skin_tone": SKIN_TONES, "background": BACKGROUNDS,
          **{a: YES_NO for a in BINARY}}

# question type -> the metric it is scored under: one per attribute (eval/und/<attribute>)
METRICS = {a: a for a in ATTRIBUTES}


def default_freq() -> dict[str, dict[str, float]]:
    named = {a: 0.5 for a in ATTRIBUTES}
    named["background"] = 0.0  # the nuisance: drawn, never named (the watch's face colour, docs/PAPER.md §3)
    vqa = {a: 0.2 for a in ATTRIBUTES}
    vqa["background"] = 0.0
    # Asked as often as the rest, the hat (one large shape) is read at 1.00 by every arm and hair and skin at
    # 0.95-0.99, so understanding-only ends at 0.92, the ceiling. Asked rarely it is learned gradually and
    # lowers the ceiling (calibrated on seeds 100-104: docs/LOG.md, 2026-12-01). Captions still name it.
    vqa["hat"] = 0.05
    return {"vqa": vqa, "caption": dict(named), "gen": dict(named)}


QUESTIONS = {
    "hair_color": [
        "What color is the hair?", "What is the hair color of the person?", "What color is this person's hair?",
        "Which hair color does the person have?", "Describe the hair color.", "What shade is the hair?",
        "Identify the hair color.", "What hair color is shown?", "What color hair does the face have?",
        "Tell me the color of the hair.",
    ],
    "skin_tone": [
        "What is the skin tone?", "What skin tone does the person have?", "Describe the skin tone.",
        "How would you describe the skin tone?", "Which skin tone is shown?", "What is the tone of the skin?",
        "Identify the skin tone of the face.", "What shade is the skin?", "What skin tone is visible?",
        "Tell me the skin tone.",
    ],
    "smiling": [
        "Is the person smiling?", "Is this person smiling?", "Does the person smile?", "Is there a smile?",
        "Is the face smiling?", "Does the face show a smile?", "Is the mouth smiling?", "Is a smile visible?",
        "Does this person have a smile?", "Is the person in the image smiling?",
    ],
    "eyeglasses": [
        "Is the person wearing glasses?", "Does the person wear eyeglasses?", "Are there glasses on the face?",
        "Is this person wearing eyeglasses?", "Does the face have glasses?", "Are eyeglasses visible?",
        "Does this person have glasses on?", "Is the person in the image wearing glasses?",
        "Can you see eyeglasses?", "Are glasses shown?",
    ],
    "hat": [
        "Is the person wearing a hat?", "Does the person wear a hat?", "Is there a hat on the head?",
        "Is this person wearing a hat?", "Does the face have a hat?", "Is a hat visible?",
        "Does this person have a hat on?", "Is the person in the image wearing a hat?", "Can you see a hat?",
        "Is a hat shown?",
    ],
    "beard": [
        "Does the person have a beard?", "Is there a beard?", "Does this person have a beard?",
        "Is the person bearded?", "Does the face have a beard?", "Is a beard visible?", "Can you see a beard?",
        "Is the chin covered by a beard?", "Does the person in the image have a beard?", "Is a beard shown?",
    ],
    "background": [
        "What color is the background?", "What is the background color?", "Describe the background color.",
        "Which color is behind the person?", "What color is behind the face?", "What shade is the background?",
        "Identify the background color.", "What background color is shown?", "Tell me the background color.",
        "What hue is the background?",
    ],
}

CAPTION_QUESTIONS = [
    "What are the key features of this image?",
    "Could you outline the primary elements of this face?",
    "What main features define the appearance of this person?",
    "Please identify the central characteristics of this portrait.",
    "How would you describe the core features of this image?",
    "What are the standout elements in this portrait?",
    "Could you detail the principal features of this face?",
    "What visual features are most prominent in this image?",
    "Please list the main aspects of this person.",
    "How would you characterize the key elements of this face?",
]
CAPTION_OPENERS = ["The image shows a cartoon face", "There is a person in the image",
                   "A cartoon portrait is shown in the image"]
GEN_OPENERS = ["Can you generate an image of a cartoon face", "Can you draw a person", "Please show a cartoon portrait"]
ACKS = ["Sure, here is the image.", "The image is shown as you wish.", "The image is generated."]  # as SmartWatch

# clause templates shared by captions and prompts, keys in clause order; binary attributes: [no, yes] lists
CLAUSES = {
    "hair_color": [", with {} hair", ", who has {} hair", ", with hair colored {}"],
    "skin_tone": [", with {} skin", ", whose skin tone is {}", ", with a {} skin tone"],
    "smiling": ([", with a neutral expression", ", with a straight face", ", with a closed mouth"],
                [", who is smiling", ", with a big smile", ", smiling widely"]),
    "eyeglasses": ([", without glasses", ", wearing no eyeglasses", ", with no glasses"],
                   [", wearing glasses", ", with eyeglasses", ", who wears eyeglasses"]),
    "hat": ([", without a hat", ", with a bare head", ", wearing no hat"],
            [", wearing a hat", ", with a red hat", ", who wears a hat"]),
    "beard": ([", without a beard", ", with a shaved chin", ", who is beardless"],
              [", with a beard", ", who has a beard", ", with a full beard"]),
    "background": [", on a {} background", ", in front of a {} backdrop", ", with a {} background"],
}


def answer(attribute: str, attrs: dict, data_cfg=None) -> str:
    """The canonical answer to a question about `attribute`: a value word, or yes / no."""
    value = attrs[attribute]
    return YES_NO[value] if attribute in BINARY else value


def truth(attribute: str, attrs: dict, data_cfg=None) -> dict:
    """What metrics.score needs: every faces question is a substring match on the answer word."""
    return {"answer": answer(attribute, attrs)}


def question(rng, attribute: str) -> str:
    return pick(rng, QUESTIONS[attribute])


def vqa_turns(rng, attrs: dict, data_cfg, weights: dict[str, float], extra_turn_p: float) -> list[tuple]:
    """[(attribute, question, answer)]: the first turn always, then up to 3 more, each with extra_turn_p."""
    return [(a, question(rng, a), answer(a, attrs)) for a in turn_attributes(rng, ATTRIBUTES, weights, extra_turn_p)]


def _templates(attribute: str, attrs: dict) -> list[str]:
    if attribute in BINARY:
        return CLAUSES[attribute][attrs[attribute]]
    return [t.format(attrs[attribute]) for t in CLAUSES[attribute]]


def _clauses(rng, attrs, probs) -> tuple[str, list[str]]:
    text, mentioned = "", []
    for a in CLAUSES:
        if rng.random() < probs.get(a, 0.0):
            templates = _templates(a, attrs)
            text += templates[int(rng.integers(len(templates)))]
            mentioned.append(a)
    return text, mentioned


def caption(rng, attrs: dict, data_cfg, probs: dict[str, float]) -> tuple[str, str, list[str]]:
    """(question, caption, mentioned attributes): an opener plus the clauses drawn with `probs` (data.freq.caption)."""
    q = CAPTION_QUESTIONS[int(rng.integers(len(CAPTION_QUESTIONS)))]
    opener = CAPTION_OPENERS[int(rng.integers(len(CAPTION_OPENERS)))]
    clauses, mentioned = _clauses(rng, attrs, probs)
    return q, opener + clauses + ".", mentioned


def generation(rng, attrs: dict, data_cfg, probs: dict[str, float]) -> tuple[str, str, list[str]]:
    """(prompt, acknowledgement, mentioned attributes) with clauses drawn with `probs` (data.freq.gen)."""
    opener = GEN_OPENERS[int(rng.integers(len(GEN_OPENERS)))]
    clauses, mentioned = _clauses(rng, attrs, probs)
    return opener + clauses + ".", ACKS[int(rng.integers(len(ACKS)))], mentioned


def full_caption(attrs: dict, data_cfg=None) -> str:
    """Every attribute, background included: the SigLIP stand-in's pretraining text, not VLM data."""
    return CAPTION_OPENERS[0] + "".join(_templates(a, attrs)[0] for a in CLAUSES) + "."


def mentioned_heads(mentioned: list[str], data_cfg=None) -> list[str]:
    """Judge heads a generation prompt constrains: one head per attribute, named as the attribute."""
    return list(mentioned)


def vocabulary_texts() -> list[str]:
    """Every text the templates can produce, with placeholders removed, plus every value word."""
    texts = [q for qs in QUESTIONS.values() for q in qs] + CAPTION_QUESTIONS + CAPTION_OPENERS + GEN_OPENERS + ACKS
    for a, templates in CLAUSES.items():
        texts += [t for ts in templates for t in ts] if a in BINARY else [t.format("") for t in templates]
    texts += [" ".join(values) for values in VALUES.values()]
    return texts
