"""SmartWatch text: VQA, caption and generation templates, answers and the scorer of each question.

Follows the paper's data notebook (docs/PAPER.md §3): about ten paraphrases per question, captions and generation
prompts built from per-attribute clauses each included with its own probability, and the attributes'
canonical answers (time "HH:MM[:SS]", battery "NN%", the weather word, the corner name, the colour name).

Frequencies (`data.freq`, filled from `default_freq()` by `config.resolve`):
- `caption.<attr>`, `gen.<attr>`: the probability that the attribute's clause appears in a caption / prompt.
- `vqa.<attr>`: the *relative weight* of questions about the attribute (normalised over attributes at each
  turn). The paper asks "what" 3/5 of the time (weather, time, battery) and "where" 2/5 (two positions), so every
  default weight is 0.2; `vqa.face_color = f` makes the colour question f/(1+f) of the turns.

Times: hours are 1..12 written with two digits ("03:45"); with only the hour hand drawn the answer is "HH:00".
"""

from __future__ import annotations

from unified.data.turns import pick, turn_attributes

ATTRIBUTES = ("time", "weather", "battery", "weather_pos", "battery_pos", "face_color")

# question type -> the metric it is scored under (docs/DESIGN.md §2: eval/und/<metric>)
METRICS = {"time": "time", "weather": "weather", "battery": "battery", "weather_pos": "position",
           "battery_pos": "position", "face_color": "face_color"}


def default_freq() -> dict[str, dict[str, float]]:
    clauses = {"time": 1.0, "weather": 0.5, "battery": 0.5, "weather_pos": 0.5, "battery_pos": 0.5,
               "face_color": 0.0}  # docs/PAPER.md §3: the face colour is drawn but never named
    vqa = {"time": 0.2, "weather": 0.2, "battery": 0.2, "weather_pos": 0.2, "battery_pos": 0.2, "face_color": 0.0}
    return {"vqa": vqa, "caption": dict(clauses), "gen": dict(clauses)}


QUESTIONS = {
    "weather": [
        "What weather condition is shown?", "What is the current weather?", "Describe the weather displayed.",
        "What weather is indicated?", "What weather is visible on the watch?", "What is the weather like?",
        "What type of weather is depicted?", "Identify the weather.", "What is the weather icon showing?",
        "Which weather does the watch show?",
    ],
    "time": [
        "What is the current time?", "What time does the watch show?", "What time is displayed?",
        "What's the exact time shown?", "What time is indicated?", "What is the time reading?",
        "Tell me the time on the watch.", "What time is it?", "What is the watch showing?",
        "What's the time value?",
    ],
    "battery": [
        "What is the battery percentage?", "What battery level is shown?", "What is the power status?",
        "What's the remaining battery?", "What is the battery capacity?", "What percentage is displayed?",
        "What is the battery status?", "How much battery is left?", "What is the charge level?",
        "What's the battery indicator showing?",
    ],
    "battery_pos": [
        "Where is the battery indicator located?", "Where is the battery displayed?",
        "Which corner shows the battery?", "Where is the power status shown?", "Where is the battery info?",
        "Where is the charge level visible?", "Where is the battery percentage placed?",
        "In which corner is the battery?", "Where is the battery positioned?", "Where can you see the battery level?",
    ],
    "weather_pos": [
        "Where is the weather displayed?", "Where is the weather info shown?", "Which corner has the weather?",
        "Where is the weather icon?", "Where is the weather condition shown?", "Where is the forecast shown?",
        "Where is the weather indicator located?", "In which corner is the weather?",
        "Where is the forecast positioned?", "Where can you see the weather icon?",
    ],
    "face_color": [
        "What color is the watch face?", "What is the color of the watch face?", "Can you tell the face color?",
        "Identify the watch face color.", "Describe the color of the face.", "What hue is the watch face?",
        "What shade is the watch face?", "What color tone does the face have?", "What is the face colored?",
        "Which color is the dial?",
    ],
}

CAPTION_QUESTIONS = [
    "What are the key components and features of this image?",
    "Could you outline the primary elements of this watch?",
    "What main features define the appearance of this user interface?",
    "Please identify the central elements and characteristics of this watch design.",
    "How would you describe the core features of this image?",
    "What are the standout elements in this smartwatch interface?",
    "Could you detail the principal components of this watch face?",
    "What visual features are most prominent in this image?",
    "Please list the main aspects that make up this user interface.",
    "How would you characterize the key elements of this watch?",
]
CAPTION_OPENERS = ["The image shows a smart watch", "There is a watch in the image",
                   "A smart watch is shown in the image"]
GEN_OPENERS = ["Can you generate an image of a smart watch", "Can you draw a smart watch", "Please show a smart watch"]
ACKS = ["Sure, here is the image.", "The image is shown as you wish.", "The image is generated."]

# clause templates shared by captions and generation prompts, as in the paper's notebook; keys in clause order
CLAUSES = {
    "time": [", on which the current time is {}", ", displaying {}", ", showing the time {}",
             ", on which the time reads {}"],
    "weather": [", showing {} weather", ", with {} weather displayed", ", indicating {} conditions"],
    "battery": [", with {} battery", ", showing {} charge", ", displaying {} power level"],
    "weather_pos": [", with the weather displayed at the {}", ", with the weather indicator at the {}",
                    ", with the weather shown in the {} corner"],
    "battery_pos": [", with the battery level at the {}", ", with the battery indicator at the {}",
                    ", with the power status displayed in the {} corner"],
    "face_color": [", with a {} watch face", ", on a {} face", ", with the face colored {}"],
}

COLOUR_WORDS = ("Dark", "Medium", "Light", "Bright")  # docs/PAPER.md §3: thresholds 64 / 128 / 192


def colour_name(r: int, g: int, b: int) -> str:
    return "-".join(COLOUR_WORDS[min(v // 64, 3)] for v in (r, g, b))


def time_text(attrs: dict, hands: str) -> str:
    parts = [attrs["hour"], attrs["minute"]] + ([attrs["second"]] if hands == "hms" else [])
    return ":".join(f"{v:02d}" for v in parts)


def answer(attribute: str, attrs: dict, data_cfg) -> str:
    """The canonical answer to a question about `attribute` (also the value put into clauses)."""
    if attribute == "time":
        return time_text(attrs, data_cfg.hands)
    if attribute == "battery":
        return f"{attrs['battery']}%"
    if attribute == "face_color":
        return colour_name(attrs["face_r"], attrs["face_g"], attrs["face_b"])
    return attrs[attribute]


def truth(attribute: str, attrs: dict, data_cfg) -> dict:
    """What metrics.score needs to score an answer to this question."""
    t = {"answer": answer(attribute, attrs, data_cfg)}
    if attribute == "time":
        t.update(hour=attrs["hour"], minute=attrs["minute"], second=attrs["second"], hands=data_cfg.hands)
    if attribute == "battery":
        t["battery"] = attrs["battery"]
    return t


def question(rng, attribute: str) -> str:
    return pick(rng, QUESTIONS[attribute])


def vqa_turns(rng, attrs: dict, data_cfg, weights: dict[str, float], extra_turn_p: float) -> list[tuple]:
    """[(attribute, question, answer)]: the first turn always, then up to 3 more, each with extra_turn_p."""
    turns = turn_attributes(rng, ATTRIBUTES, weights, extra_turn_p)
    return [(a, question(rng, a), answer(a, attrs, data_cfg)) for a in turns]


def _clauses(rng, attrs, data_cfg, probs) -> tuple[str, list[str]]:
    text, mentioned = "", []
    for a, templates in CLAUSES.items():
        if rng.random() < probs.get(a, 0.0):
            text += templates[int(rng.integers(len(templates)))].format(answer(a, attrs, data_cfg))
            mentioned.append(a)
    return text, mentioned


def caption(rng, attrs: dict, data_cfg, probs: dict[str, float]) -> tuple[str, str, list[str]]:
    """(question, caption, mentioned attributes): an opener plus the clauses drawn with `probs` (data.freq.caption)."""
    q = CAPTION_QUESTIONS[int(rng.integers(len(CAPTION_QUESTIONS)))]
    opener = CAPTION_OPENERS[int(rng.integers(len(CAPTION_OPENERS)))]
    clauses, mentioned = _clauses(rng, attrs, data_cfg, probs)
    return q, opener + clauses + ".", mentioned


def generation(rng, attrs: dict, data_cfg, probs: dict[str, float]) -> tuple[str, str, list[str]]:
    """(prompt, acknowledgement, mentioned attributes) with clauses drawn with `probs` (data.freq.gen)."""
    opener = GEN_OPENERS[int(rng.integers(len(GEN_OPENERS)))]
    clauses, mentioned = _clauses(rng, attrs, data_cfg, probs)
    return opener + clauses + ".", ACKS[int(rng.integers(len(ACKS)))], mentioned


def full_caption(attrs: dict, data_cfg) -> str:
    """Every attribute, face colour included: the SigLIP stand-in's pretraining text, not VLM data."""
    clauses = "".join(CLAUSES[a][0].format(answer(a, attrs, data_cfg)) for a in CLAUSES)
    return CAPTION_OPENERS[0] + clauses + "."


def mentioned_heads(mentioned: list[str], data_cfg) -> list[str]:
    """Judge heads a generation prompt constrains (time: the heads of the drawn hands)."""
    heads = {"time": ["hour", "minute", "second"][: len(data_cfg.hands)], "face_color": ["face_r", "face_g", "face_b"]}
    return [h for a in mentioned for h in heads.get(a, [a])]


def vocabulary_texts() -> list[str]:
    """Every text the templates can produce, with placeholders removed; values are listed by the tokenizer."""
    texts = [q for qs in QUESTIONS.values() for q in qs] + CAPTION_QUESTIONS + CAPTION_OPENERS + GEN_OPENERS + ACKS
    texts += [t.format("") for ts in CLAUSES.values() for t in ts]
    texts += ["sunny cloudy raining top-left top-right bottom-left bottom-right :%-", " ".join(COLOUR_WORDS)]
    return texts
