"""SynthFaces: cartoon faces with CelebA-style attributes, the stand-in for the paper's templated CelebA.

A head on a plain background: hair behind and over the forehead, an oval face in one of three skin tones,
two eyes, a mouth (an open red smile or a thin closed line), and optionally tinted eyeglasses, a red brimmed
hat and a beard in the hair colour. Every attribute is a strong colour or shape cue in a fixed place, so the
judge reads it at 32 px. The background colour is the nuisance: drawn, never named by default. The text side
(templates, answers) is in `faces_text.py`; this module re-exports it so the domain is one module
(docs/INTERFACES.md). Shapes are drawn at >= 128 px and box-filtered down, so thin parts (frames, closed
mouths) stay visible as soft strokes at 32 px instead of vanishing in aliasing.

No test image repeats a training image (tests/test_leak.py): 1,152 attribute combinations (192 of the asked
attributes) would otherwise make nearly every test face a pixel twin of a training face, and understanding scores
would measure recall. So every face carries continuous nuisance (position, size, hue of skin and background, a
brightness ramp across the background), and one combination in eight is held out: `held_out` marks it
test-only, `sample_attributes(split=...)` draws training faces outside it and test faces inside it.
"""

from __future__ import annotations

import colorsys
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

# model.alpha_siglip's default here, calibrated at cpu scale on seeds 100-104: at SmartWatch's 10 the mixed
# vq-siglip arm barely follows the prompt on faces (+0.03 to +0.11 over prompt-blind), at 30 it does (+0.16 to
# +0.24) while generation-only follows it at either (docs/LOG.md, 2026-12-01: SynthFaces' ceiling, and SigLIP
# outputs on SynthFaces take their own weight)
ALPHA_SIGLIP = 30.0

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

# nuisance, drawn uniformly per face: name -> (canonical value, half-width). Small enough that every attribute
# stays visible at 32 px (tests/test_faces.py renders the extremes): shifts of ~1 px, hues well inside the
# gaps between background colours (teal to blue is ~0.1), a ramp of +-8 % brightness at the edges.
NUISANCE = {"dx": (0.0, 0.04), "dy": (0.0, 0.04), "scale": (1.0, 0.06), "skin_hue": (0.0, 0.02),
            "bg_hue": (0.0, 0.02), "bg_gx": (0.0, 0.16), "bg_gy": (0.0, 0.16)}
RENDER_VERSION = 2  # part of the pool key (dataset.pool_key): pools cached by the twin-prone renderer are not reused

# Held-out combinations: a parity check over GF(2) of the four flags and the hair index's two bits, columns
# (smiling, eyeglasses, hat, beard, hair bit 0, hair bit 1), must give the skin tone's syndrome. A coset of a
# linear code rather than a hash: exactly 24 of the 192 combinations (1 in 8), every value of every attribute
# equally often in both splits (balanced answers, as before), every combination of up to five attributes seen
# in training, and each held-out face one attribute flip away from training faces.
CHECKS = np.array([[1, 0, 0, 1, 1, 0], [0, 1, 0, 1, 1, 1], [0, 0, 1, 1, 0, 1]])
TEST_SYNDROME = {"light": (0, 0, 0), "medium": (1, 1, 0), "dark": (0, 1, 1)}
COMBINATION = ("hair_color", "skin_tone", *BINARY)  # the attributes asked by default (not the background)


def held_out(attrs: dict) -> bool:
    """Whether the face's combination of `COMBINATION` is test-only: a pure function of the attributes."""
    h = HAIR_COLORS.index(attrs["hair_color"])
    bits = [attrs[a] for a in BINARY] + [h & 1, h >> 1]
    return tuple(int(v) for v in CHECKS @ bits % 2) == TEST_SYNDROME[attrs["skin_tone"]]


def sample_attributes(rng: np.random.Generator, data_cfg=None, split: str = "train") -> dict:
    """One face's attributes as JSON-able scalars: value words, 0/1 for the binary attributes (balanced,
    unlike CelebA's rare hats and glasses, so every answer is equally common in training and evaluation), and
    the nuisance floats. `split` "train" draws outside the held-out combinations, "test" inside them."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    while True:  # rejection keeps every combination of the split equally likely; a test face takes ~8 draws
        hair = HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))]
        skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
        flags = {a: int(rng.random() < 0.5) for a in BINARY}
        attrs = {"hair_color": hair, "skin_tone": skin, **flags}
        if held_out(attrs) == (split == "test"):
            break
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    nuisance = {k: c + float(rng.uniform(-r, r)) for k, (c, r) in NUISANCE.items()}
    return {**attrs, "background": background, **nuisance}


# ---------------------------------------------------------------- rendering


def _hue(rgb, shift) -> list[float]:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    return [c * 255 for c in colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)]  # Python floats keep arrays float32


def render(attrs: dict, data_cfg) -> np.ndarray:
    """attrs -> uint8 [H, W, 3]. Deterministic: no randomness here. Missing nuisance keys take their canonical
    values (a centred face, exact colours, a flat background)."""
    size = data_cfg.resolution
    scale = math.ceil(MIN_CANVAS / size)
    side = size * scale
    nz = {k: attrs.get(k, c) for k, (c, _) in NUISANCE.items()}
    # the background ramp at the output size, blown up to the canvas: a linear ramp box-filters back to its value
    # at the pixel centre, so this is what drawing it on the canvas gives, at 1/scale² of the cost
    ramp = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    shade = 1 + nz["bg_gx"] * ramp[None, :] + nz["bg_gy"] * ramp[:, None]  # brightness, > 0.8 everywhere
    img = Image.merge("RGB", [Image.fromarray(np.minimum(shade * c + 0.5, 255).astype(np.uint8))  # + 0.5: rounds
                              for c in _hue(BACKGROUND_RGB[attrs["background"]], nz["bg_hue"])])
    img = img.resize((side, side), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    s, (fx, fy) = nz["scale"], FACE_C
    ox, oy = fx + nz["dx"], fy + nz["dy"]

    def xy(*coords):  # x, y, x, y, ... in units of the side -> canvas pixels, scaled about the face centre, shifted
        xs = [side * (ox + s * (x - fx)) for x in coords[::2]]
        ys = [side * (oy + s * (y - fy)) for y in coords[1::2]]
        return [v for p in zip(xs, ys, strict=True) for v in p]

    def box(cx, cy, rx, ry):  # an ellipse's bounding box in canvas pixels
        return xy(cx - rx, cy - ry, cx + rx, cy + ry)

    def px(v):  # a length in canvas pixels, at least one
        return max(1, round(side * s * v))

    hair = HAIR_RGB[attrs["hair_color"]]
    skin = tuple(int(round(c)) for c in _hue(SKIN_RGB[attrs["skin_tone"]], nz["skin_hue"]))
    cx, cy = FACE_C
    draw.ellipse(box(cx, cy - 0.05, FACE_RX + 0.07, FACE_RY + 0.04), fill=hair)  # hair behind the head
    draw.ellipse(box(cx, cy, FACE_RX, FACE_RY), fill=skin)
    draw.chord(box(cx, cy - 0.14, FACE_RX, 0.15), 180, 360, fill=hair)  # fringe over the forehead
    if attrs["beard"]:  # the lower half of a wider oval: cheeks, jaw and below the chin, in the hair colour
        draw.chord(box(cx, MOUTH_Y - 0.05, FACE_RX + 0.01, 0.23), 0, 180, fill=hair)
    _draw_eyes(draw, attrs["eyeglasses"], xy, box, px)
    _draw_mouth(draw, attrs["smiling"], xy, box, px)
    if attrs["hat"]:
        _draw_hat(draw, xy, box)
    if scale > 1:
        img = img.resize((size, size), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.uint8)


def _draw_eyes(draw, glasses, xy, box, px):
    cx, y = FACE_C[0], EYE_Y
    for dx in (-EYE_DX, EYE_DX):
        if glasses:  # tinted lenses in thick dark frames: a colour cue as well as a shape
            draw.ellipse(box(cx + dx, EYE_Y, LENS_R, LENS_R), fill=LENS_RGB, outline=FRAME_RGB, width=px(FRAME_W))
        draw.ellipse(box(cx + dx, EYE_Y, EYE_R, EYE_R), fill=EYE_RGB)
    if glasses:
        inner = EYE_DX - LENS_R
        draw.line(xy(cx - inner, y, cx + inner, y), fill=FRAME_RGB, width=px(FRAME_W))  # bridge
        for s in (-1, 1):  # temples, out to the edge of the face
            draw.line(xy(cx + s * (EYE_DX + LENS_R), y, cx + s * FACE_RX, y), fill=FRAME_RGB, width=px(FRAME_W * 0.7))


def _draw_mouth(draw, smiling, xy, box, px):
    cx = FACE_C[0]
    if smiling:  # an open smile: the lower half of an oval, dark red, a white band of teeth along the top
        draw.chord(box(cx, MOUTH_Y - 0.02, MOUTH_RX, 0.09), 0, 180, fill=MOUTH_RGB)
        draw.rectangle(box(cx, MOUTH_Y, MOUTH_RX * 0.75, 0.015), fill=TEETH_RGB)
    else:  # a closed mouth: a short thin line
        draw.line(xy(cx - 0.07, MOUTH_Y, cx + 0.07, MOUTH_Y), fill=LIPS_RGB, width=px(0.022))


def _draw_hat(draw, xy, box):
    """A red brimmed hat over the top of the head; the hair stays visible at the sides."""
    cx, top = FACE_C[0], FACE_C[1] - FACE_RY
    draw.rectangle(xy(cx - 0.17, top - 0.18, cx + 0.17, top + 0.06), fill=HAT_RGB)
    draw.rectangle(xy(cx - 0.17, top + 0.0, cx + 0.17, top + 0.04), fill=HAT_BAND_RGB)
    draw.ellipse(box(cx, top + 0.07, 0.33, 0.045), fill=HAT_RGB)  # the brim, wider than the hair


# ---------------------------------------------------------------- judge targets


def judge_heads(data_cfg=None) -> dict[str, int]:
    """Judge head -> number of classes: one head per attribute, the background included."""
    return {a: len(VALUES[a]) for a in ATTRIBUTES}


def judge_labels(attrs: dict, data_cfg=None) -> dict[str, int]:
    return {a: attrs[a] if a in BINARY else VALUES[a].index(attrs[a]) for a in ATTRIBUTES}
