"""Rendered letters: A-Z drawn with the DejaVu fonts matplotlib ships, a second image domain for transfer.

Each image is one capital letter in one of the DejaVu faces (sans, serif, mono; regular, bold, oblique),
drawn white on black like MNIST with a random size, rotation, stroke width, shift and pixel noise, all
from one seeded generator, so the same arguments always give the same pixels. Letters are drawn at twice
the final resolution and box-filtered down to 28x28, which anti-aliases the strokes as a scanner would.
The set is generated, so its source is always `embedded`; it is split 60/20/20, stratified, with
digits.SPLIT_SEED. Simplified: no kerning, clutter or background texture, one letter an image.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dlpractice.data.digits import Splits, split
from dlpractice.errors import DlpError

LETTERS = string.ascii_uppercase  # class k is LETTERS[k]
SIZE = 28  # final side in pixels, as MNIST
SCALE = 2  # drawn at SCALE * SIZE, then box-filtered down
FACES = (  # the full DejaVu faces; the "Display" files hold only a few glyphs
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf",
)
FONT_PX = (26, 42)  # glyph size range at the drawing resolution (13-21 px once downsampled)
ROTATION_DEG = 15.0  # uniform in [-15, 15]
STROKE_PX = (0, 2)  # extra outline width at the drawing resolution, inclusive
SHIFT_PX = 3.0  # uniform shift of the glyph centre in final pixels, each axis
NOISE_STD = (0.0, 0.08)  # Gaussian pixel noise, std drawn uniformly per image


def font_paths() -> list[Path]:
    """The DejaVu TTF files inside matplotlib's data directory."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = [folder / face for face in FACES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DlpError(f"matplotlib's DejaVu fonts are missing ({', '.join(missing)}) in {folder}")
    return paths


def render_letter(letter: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator) -> np.ndarray:
    """One letter as (28, 28) float32 in [0, 1] with random stroke, rotation, shift and noise."""
    side = SIZE * SCALE
    canvas = Image.new("L", (side, side), 0)
    stroke = int(rng.integers(STROKE_PX[0], STROKE_PX[1] + 1))
    centre = side / 2 + SCALE * rng.uniform(-SHIFT_PX, SHIFT_PX, size=2)
    # anchor "mm": the glyph's middle (horizontal and vertical) sits on the shifted centre
    ImageDraw.Draw(canvas).text(
        tuple(centre), letter, fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255
    )
    rotated = canvas.rotate(rng.uniform(-ROTATION_DEG, ROTATION_DEG), Image.BILINEAR, center=tuple(centre))
    small = rotated.resize((SIZE, SIZE), Image.BOX)
    pixels = np.asarray(small, dtype=np.float32) / 255.0  # (28, 28)
    noisy = pixels + rng.normal(0.0, rng.uniform(*NOISE_STD), size=pixels.shape)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def render_letters(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(26 * n, 28, 28) float32 images and (26 * n,) int64 labels, class-major order."""
    if n_per_class < 1:
        raise DlpError(f"n_per_class must be at least 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    paths = font_paths()
    fonts = {  # one FreeType face per (file, size): loading is the slow part
        (path, px): ImageFont.truetype(str(path), px)
        for path in paths
        for px in range(FONT_PX[0], FONT_PX[1] + 1)
    }
    images, labels = [], []
    for label, letter in enumerate(LETTERS):
        for _ in range(n_per_class):
            path = paths[int(rng.integers(len(paths)))]
            px = int(rng.integers(FONT_PX[0], FONT_PX[1] + 1))
            images.append(render_letter(letter, fonts[(path, px)], rng))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load_letters(n_per_class: int = 200, seed: int = 0) -> Splits:
    """Rendered A-Z as x float32 (N, 28, 28) in [0, 1], y int64 0-25 (LETTERS[y]), split 60/20/20."""
    x, y = render_letters(n_per_class, seed)
    origin = f"generated: A-Z in {len(FACES)} DejaVu faces (matplotlib), {n_per_class} a letter, seed={seed}"
    return split(x, y, True, "embedded", origin)
