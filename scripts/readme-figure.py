#!/usr/bin/python3
"""Draws the README's before/after figure (docs/quick-start.png) from the quick start's files:

  scripts/readme-figure.py DAMAGED REPAIRED NOISY DENOISED OUT.png

The top row: the damaged photo and cae repair's output; the bottom row: the noisy photo and cae
denoise's output, each labelled. Needs Debian's python3-pil (a documentation tool only; nothing
in the build or the tests uses it).
"""
import sys

from PIL import Image, ImageDraw

damaged, repaired, noisy, denoised, out = sys.argv[1:6]
tiles = [(damaged, "damaged + your mask"), (repaired, "cae repair"),
         (noisy, "noisy (sigma 25/255)"), (denoised, "cae denoise")]
images = [(Image.open(p).convert("RGB"), label) for p, label in tiles]
w, h = images[0][0].size
gap, band = 6, 22
sheet = Image.new("RGB", (2 * w + gap, 2 * (h + band) + gap), "white")
draw = ImageDraw.Draw(sheet)
for i, (image, label) in enumerate(images):
    x, y = (i % 2) * (w + gap), (i // 2) * (h + band + gap)
    sheet.paste(image, (x, y + band))
    draw.text((x + 4, y + 5), label, fill="black")
sheet.save(out, optimize=True)
