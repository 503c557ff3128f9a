"""SmartWatch: the paper's synthetic domain (docs/PAPER.md §3), rendered with PIL from seeded attributes.

A white canvas, a round face of a uniform random colour, white hands from the centre, a weather icon and a
battery widget in two distinct corners. The text side (templates, answers, scorers) is in
`smartwatch_text.py`; this module re-exports it so the domain is one module (docs/INTERFACES.md).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unified.data.smartwatch_text import (  # noqa: F401  (the domain's text interface, re-exported)
    ACKS,
    ATTRIBUTES,
    METRICS,
    answer,
    caption,
    colour_name,
    default_freq,
    full_caption,
    generation,
    mentioned_heads,
    question,
    truth,
    vocabulary_texts,
    vqa_turns,
)

# model.alpha_siglip's default here: the SigLIP-output image-loss weight calibrated at cpu scale (docs/LOG.md)
ALPHA_SIGLIP = 10.0
WEATHERS = ("sunny", "cloudy", "raining")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
HANDS = ("hour", "minute", "second")

PAPER_SIZE = 224  # docs/PAPER.md §3: every length below is given in pixels of the 224 px original
HAND_LENGTH = {"hour": 0.5, "minute": 0.7, "second": 0.9}  # fraction of the face radius
HAND_WIDTH = {"hour": 6, "minute": 4, "second": 2}  # px at 224
FACE_RADIUS = 0.4  # fraction of the image size
ICON_PX, MARGIN_PX = 30, 10  # weather icon side and corner margin at 224 px
MIN_ICON_PX = 8  # below this a 32 px judge cannot tell the icons or six battery levels apart
BATTERY_GREEN = (0, 160, 0)


def drawn_hands(data_cfg) -> tuple[str, ...]:
    return HANDS[: len(data_cfg.hands)]  # "h" | "hm" | "hms"


def battery_levels(data_cfg) -> list[int]:
    return list(range(0, 101, data_cfg.battery_step))


def sample_attributes(rng: np.random.Generator, data_cfg, split: str = "train") -> dict:
    """One watch's raw attributes as JSON-able scalars. The same draws happen for every `hands` and
    `battery_step`, so a seed gives the same faces, icons and corners whatever those settings are. `split` is
    ignored: the 24-bit face colour alone keeps test images off the training ones (tests/test_leak.py)."""
    hour = int(rng.integers(1, 13))  # 1..12: one value per dial position (the paper's 0..12 counts 12 twice)
    minute, second = (int(v) for v in rng.integers(0, 60, size=2))
    hands = drawn_hands(data_cfg)
    weather = WEATHERS[int(rng.integers(len(WEATHERS)))]
    weather_pos, battery_pos = (CORNERS[int(i)] for i in rng.choice(len(CORNERS), size=2, replace=False))
    levels = battery_levels(data_cfg)
    battery = levels[int(rng.integers(len(levels)))]
    face_r, face_g, face_b = (int(v) for v in rng.integers(0, 256, size=3))
    return {
        "hour": hour, "minute": minute if "minute" in hands else 0, "second": second if "second" in hands else 0,
        "weather": weather, "weather_pos": weather_pos, "battery": battery, "battery_pos": battery_pos,
        "face_r": face_r, "face_g": face_g, "face_b": face_b,
    }


# ---------------------------------------------------------------- rendering


def icon_size(size: int) -> int:
    """Corner-widget side: the paper's 30/224 of the image, but never under 8 px (about 0.25 of a 32 px image,
    which just touches the face at its inner corner)."""
    return max(round(size * ICON_PX / PAPER_SIZE), min(MIN_ICON_PX, round(size / 4)))


def corner_box(corner: str, size: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the square a corner widget is drawn in."""
    s, m = icon_size(size), size * MARGIN_PX // PAPER_SIZE
    x0 = m if corner.endswith("left") else size - m - s
    y0 = m if corner.startswith("top") else size - m - s
    return x0, y0, s


def render(attrs: dict, data_cfg) -> np.ndarray:
    """attrs -> uint8 [H, W, 3]. Deterministic: no randomness here."""
    size = data_cfg.resolution
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    c, r = size / 2, FACE_RADIUS * size
    draw.ellipse([c - r, c - r, c + r, c + r], fill=(attrs["face_r"], attrs["face_g"], attrs["face_b"]))
    _draw_hands(draw, attrs, drawn_hands(data_cfg), c, r, size)
    _draw_weather(draw, attrs["weather"], *corner_box(attrs["weather_pos"], size))
    _draw_battery(draw, attrs["battery"], data_cfg.battery_text, *corner_box(attrs["battery_pos"], size))
    return np.asarray(img, dtype=np.uint8)


def _draw_hands(draw, attrs, hands, c, r, size):
    # angles as in the paper's renderer: 0 deg at 12 o'clock, the hour hand advancing with the minutes
    turns = {"hour": (attrs["hour"] % 12 + attrs["minute"] / 60) / 12, "minute": attrs["minute"] / 60,
             "second": attrs["second"] / 60}
    for hand in hands:
        a = 2 * math.pi * turns[hand] - math.pi / 2
        length = HAND_LENGTH[hand] * r
        width = max(1, round(HAND_WIDTH[hand] * size / PAPER_SIZE))
        draw.line([c, c, c + length * math.cos(a), c + length * math.sin(a)], fill=(255, 255, 255), width=width)


def _draw_weather(draw, weather, x0, y0, s):
    """Vector icons in distinct colours, so that even an 8 px icon is told apart by its colours alone."""
    cx, cy = x0 + s / 2, y0 + s / 2

    def disc(x, y, rad, fill):
        draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=fill)

    if weather == "sunny":  # yellow disc with orange rays
        for k in range(8):
            a = k * math.pi / 4
            draw.line([cx + 0.3 * s * math.cos(a), cy + 0.3 * s * math.sin(a),
                       cx + 0.5 * s * math.cos(a), cy + 0.5 * s * math.sin(a)],
                      fill=(255, 140, 0), width=max(1, s // 12))
        disc(cx, cy, 0.3 * s, (255, 210, 0))
    elif weather == "cloudy":  # light grey overlapping circles
        grey = (170, 170, 170)
        disc(cx - 0.22 * s, cy + 0.08 * s, 0.22 * s, grey)
        disc(cx + 0.02 * s, cy - 0.08 * s, 0.3 * s, grey)
        disc(cx + 0.26 * s, cy + 0.1 * s, 0.22 * s, grey)
    else:  # raining: a dark cloud in the upper half, blue drops below
        dark = (90, 90, 110)
        disc(cx - 0.2 * s, cy - 0.12 * s, 0.2 * s, dark)
        disc(cx + 0.1 * s, cy - 0.22 * s, 0.24 * s, dark)
        disc(cx + 0.28 * s, cy - 0.1 * s, 0.18 * s, dark)
        for dx in (-0.3, 0.0, 0.3):
            draw.line([cx + dx * s, cy + 0.15 * s, cx + dx * s - 0.08 * s, cy + 0.48 * s],
                      fill=(30, 90, 255), width=max(1, s // 10))


def _draw_battery(draw, level, with_text, x0, y0, s):
    """Outlined body with a nub on the right and a green fill proportional to the level; optional "NN%" below."""
    nub = max(1, s // 12)
    h = max(4, round(0.45 * s)) if with_text else max(4, round(0.5 * s))
    top = y0 if with_text else y0 + (s - h) // 2
    x1, y1 = x0 + s - 1 - nub, top + h - 1
    line = max(1, s // 30)  # the paper's 1 px outline at 224
    draw.rectangle([x0, top, x1, y1], outline=(0, 0, 0), width=line)
    draw.rectangle([x1 + 1, top + h // 3, x1 + nub, y1 - h // 3], fill=(0, 0, 0))
    pad = s // 15  # the paper's 2 px gap between outline and fill at 224
    ix0, ix1 = x0 + line + pad, x1 - line - pad
    fill = round(level / 100 * (ix1 - ix0 + 1))
    if fill > 0:
        draw.rectangle([ix0, top + line + pad, ix0 + fill - 1, y1 - line - pad], fill=BATTERY_GREEN)
    if with_text:
        font = ImageFont.load_default(size=max(6, round(0.4 * s)))
        draw.text((x0, y1 + 2), f"{level}%", fill=(0, 0, 0), font=font)


# ---------------------------------------------------------------- judge targets


def battery_bucket(data_cfg) -> int:
    """Battery judge classes: the levels themselves, bucketed to 20 % when the step is finer."""
    return max(data_cfg.battery_step, 20)


def judge_heads(data_cfg) -> dict[str, int]:
    """Judge head -> number of classes. Minute and second heads (5-unit buckets) only for drawn hands."""
    heads = {"weather": len(WEATHERS), "weather_pos": len(CORNERS), "battery_pos": len(CORNERS), "hour": 12}
    for hand in drawn_hands(data_cfg)[1:]:
        heads[hand] = 12
    heads["battery"] = 100 // battery_bucket(data_cfg) + 1
    heads.update({"face_r": 4, "face_g": 4, "face_b": 4})  # the Dark/Medium/Light/Bright quarters
    return heads


def judge_labels(attrs: dict, data_cfg) -> dict[str, int]:
    heads = judge_heads(data_cfg)
    labels = {
        "weather": WEATHERS.index(attrs["weather"]),
        "weather_pos": CORNERS.index(attrs["weather_pos"]),
        "battery_pos": CORNERS.index(attrs["battery_pos"]),
        "hour": attrs["hour"] % 12,
        "minute": attrs["minute"] // 5,
        "second": attrs["second"] // 5,
        "battery": min(int(attrs["battery"] / battery_bucket(data_cfg) + 0.5), heads["battery"] - 1),
        "face_r": attrs["face_r"] // 64, "face_g": attrs["face_g"] // 64, "face_b": attrs["face_b"] // 64,
    }
    return {h: labels[h] for h in heads}
