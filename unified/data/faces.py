"""SynthFaces: cartoon faces with CelebA-style attributes, the stand-in for the paper's templated CelebA.

A head on a plain background: hair behind and over the forehead, an oval face in one of three skin tones,
two eyes, a mouth (an open red smile or a thin closed line), and optionally tinted eyeglasses, a red brimmed
hat and a beard in the hair colour. Every attribute is a strong colour or shape cue in a fixed place, so the
judge reads it at 32 px. The background colour is the nuisance: drawn, never named by default. The text side
(templates, answers) is in `faces_text.py`; this module re-exports it so the domain is one module
(docs/INTERFACES.md). Shapes are drawn at >= 128 px and box-filtered down, so thin parts (frames, closed
mouths) stay visible as soft strokes at 32 px instead of vanishing in aliasing.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from unified.data.faces_text import (  # noqa: F401  (the domain's text interface, re-exported)
    ACKS,
    ATTRIBUTES,
    BACKGROUNDS,
    BINARY,
    HAIR_COLORS,
    METRICS,
    SKIN_TONES,
    VALUES,
    answer,
    caption,
    default_freq,
    full_caption,
    generation,
    mentioned_heads,
    question,
    truth,
    vocabulary_texts,
    vqa_turns,
)

# colours chosen pairwise far apart where they meet: hair vs every skin tone (beard on face), hat vs hair and
# every background (brim over the hair), lens tint vs skin
HAIR_RGB = {"black": (25, 20, 20), "brown": (135, 65, 20), "blond": (240, 205, 90), "gray": (160, 160, 165)}
SKIN_RGB = {"light": (255, 225, 200), "medium": (205, 150, 105), "dark": (95, 62, 45)}
BACKGROUND_RGB = {"blue": (60, 120, 220), "green": (70, 170, 80), "purple": (135, 80, 185),
                  "pink": (245, 165, 205), "teal": (30, 150, 150), "white": (245, 245, 245)}
HAT_RGB, HAT_BAND_RGB = (215, 25, 40), (60, 10, 15)
LENS_RGB, FRAME_RGB = (175, 225, 255), (15, 15, 15)
MOUTH_RGB, TEETH_RGB, LIPS_RGB = (150, 20, 40), (255, 255, 255), (110, 35, 35)
EYE_RGB = (20, 20, 30)
MIN_CANVAS = 128  # draw at least this size, then downsample (an integer factor, box filter)

# geometry in units of the image side: the face oval, the eyes and the mouth
FACE_C, FACE_RX, FACE_RY = (0.5, 0.54), 0.22, 0.28  # face spans y 0.26..0.82
EYE_Y, EYE_DX, EYE_R = 0.50, 0.09, 0.022
LENS_R, FRAME_W = 0.075, 0.03
MOUTH_Y, MOUTH_RX = 0.68, 0.1


def sample_attributes(rng: np.random.Generator, data_cfg=None) -> dict:
    """One face's attributes as JSON-able scalars: value words, and 0/1 for the binary attributes (balanced,
    unlike CelebA's rare hats and glasses, so every answer is equally common in training and evaluation)."""
    hair = HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))]
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    flags = {a: int(rng.random() < 0.5) for a in BINARY}
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    return {"hair_color": hair, "skin_tone": skin, **flags, "background": background}


# ---------------------------------------------------------------- rendering


def render(attrs: dict, data_cfg) -> np.ndarray:
    """attrs -> uint8 [H, W, 3]. Deterministic: no randomness here."""
    size = data_cfg.resolution
    scale = math.ceil(MIN_CANVAS / size)
    side = size * scale
    img = Image.new("RGB", (side, side), BACKGROUND_RGB[attrs["background"]])
    draw = ImageDraw.Draw(img)

    def box(cx, cy, rx, ry):  # an ellipse's bounding box in canvas pixels
        return [side * (cx - rx), side * (cy - ry), side * (cx + rx), side * (cy + ry)]

    def px(v):  # a length in canvas pixels, at least one
        return max(1, round(side * v))

    hair, skin = HAIR_RGB[attrs["hair_color"]], SKIN_RGB[attrs["skin_tone"]]
    cx, cy = FACE_C
    draw.ellipse(box(cx, cy - 0.05, FACE_RX + 0.07, FACE_RY + 0.04), fill=hair)  # hair behind the head
    draw.ellipse(box(cx, cy, FACE_RX, FACE_RY), fill=skin)
    draw.chord(box(cx, cy - 0.14, FACE_RX, 0.15), 180, 360, fill=hair)  # fringe over the forehead
    if attrs["beard"]:  # the lower half of a wider oval: cheeks, jaw and below the chin, in the hair colour
        draw.chord(box(cx, MOUTH_Y - 0.05, FACE_RX + 0.01, 0.23), 0, 180, fill=hair)
    _draw_eyes(draw, attrs["eyeglasses"], box, px, side)
    _draw_mouth(draw, attrs["smiling"], box, px, side)
    if attrs["hat"]:
        _draw_hat(draw, box, side)
    if scale > 1:
        img = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8)


def _draw_eyes(draw, glasses, box, px, side):
    cx, y = FACE_C[0], side * EYE_Y
    for dx in (-EYE_DX, EYE_DX):
        if glasses:  # tinted lenses in thick dark frames: a colour cue as well as a shape
            draw.ellipse(box(cx + dx, EYE_Y, LENS_R, LENS_R), fill=LENS_RGB, outline=FRAME_RGB, width=px(FRAME_W))
        draw.ellipse(box(cx + dx, EYE_Y, EYE_R, EYE_R), fill=EYE_RGB)
    if glasses:
        inner = EYE_DX - LENS_R
        draw.line([side * (cx - inner), y, side * (cx + inner), y], fill=FRAME_RGB, width=px(FRAME_W))  # bridge
        for s in (-1, 1):  # temples, out to the edge of the face
            draw.line([side * (cx + s * (EYE_DX + LENS_R)), y, side * (cx + s * FACE_RX), y], fill=FRAME_RGB,
                      width=px(FRAME_W * 0.7))


def _draw_mouth(draw, smiling, box, px, side):
    cx = FACE_C[0]
    if smiling:  # an open smile: the lower half of an oval, dark red, a white band of teeth along the top
        draw.chord(box(cx, MOUTH_Y - 0.02, MOUTH_RX, 0.09), 0, 180, fill=MOUTH_RGB)
        draw.rectangle(box(cx, MOUTH_Y, MOUTH_RX * 0.75, 0.015), fill=TEETH_RGB)
    else:  # a closed mouth: a short thin line
        y = side * MOUTH_Y
        draw.line([side * (cx - 0.07), y, side * (cx + 0.07), y], fill=LIPS_RGB, width=px(0.022))


def _draw_hat(draw, box, side):
    """A red brimmed hat over the top of the head; the hair stays visible at the sides."""
    cx, top = FACE_C[0], FACE_C[1] - FACE_RY
    draw.rectangle([side * (cx - 0.17), side * (top - 0.18), side * (cx + 0.17), side * (top + 0.06)], fill=HAT_RGB)
    draw.rectangle([side * (cx - 0.17), side * (top + 0.0), side * (cx + 0.17), side * (top + 0.04)],
                   fill=HAT_BAND_RGB)
    draw.ellipse(box(cx, top + 0.07, 0.33, 0.045), fill=HAT_RGB)  # the brim, wider than the hair


# ---------------------------------------------------------------- judge targets


def judge_heads(data_cfg=None) -> dict[str, int]:
    """Judge head -> number of classes: one head per attribute, the background included."""
    return {a: len(VALUES[a]) for a in ATTRIBUTES}


def judge_labels(attrs: dict, data_cfg=None) -> dict[str, int]:
    return {a: attrs[a] if a in BINARY else VALUES[a].index(attrs[a]) for a in ATTRIBUTES}
