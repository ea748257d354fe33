"""Font families used by the generator, located on disk by file name.

Every family has a regular and a bold face.  `HOLDOUT_ONLY` families are only
used with `--split holdout`.  A missing font is an error (the output would not
be reproducible otherwise); see README.md for the Debian packages.
"""
from __future__ import annotations

import functools
import os

from PIL import Image, ImageDraw, ImageFont

FONT_DIRS = ["/usr/share/fonts", "/usr/local/share/fonts", os.path.expanduser("~/.local/share/fonts")]

# key: (regular file, bold file, kind)
FAMILIES = {
    "dejavu_sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "sans"),
    "dejavu_serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "serif"),
    "dejavu_sans_mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "mono"),
    "dejavu_sans_condensed": ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf", "condensed"),
    "dejavu_serif_condensed": ("DejaVuSerifCondensed.ttf", "DejaVuSerifCondensed-Bold.ttf", "serif"),
    "liberation_sans": ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "sans"),
    "liberation_serif": ("LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf", "serif"),
    "liberation_mono": ("LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf", "mono"),
    "carlito": ("Carlito-Regular.ttf", "Carlito-Bold.ttf", "sans"),
    "roboto": ("Roboto-Regular.ttf", "Roboto-Bold.ttf", "sans"),
    "roboto_condensed": ("RobotoCondensed-Regular.ttf", "RobotoCondensed-Bold.ttf", "condensed"),
    "freesans": ("FreeSans.ttf", "FreeSansBold.ttf", "sans"),
    "freeserif": ("FreeSerif.ttf", "FreeSerifBold.ttf", "serif"),
    "freemono": ("FreeMono.ttf", "FreeMonoBold.ttf", "mono"),
    "noto_sans": ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "sans"),
    "noto_serif": ("NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf", "serif"),
    "nimbus_sans": ("NimbusSans-Regular.otf", "NimbusSans-Bold.otf", "sans"),
    "nimbus_roman": ("NimbusRoman-Regular.otf", "NimbusRoman-Bold.otf", "serif"),
    "nimbus_mono_ps": ("NimbusMonoPS-Regular.otf", "NimbusMonoPS-Bold.otf", "mono"),
    "nimbus_sans_narrow": ("NimbusSansNarrow-Regular.otf", "NimbusSansNarrow-Bold.otf", "condensed"),
    "c059": ("C059-Roman.otf", "C059-Bold.otf", "serif"),
    "p052": ("P052-Roman.otf", "P052-Bold.otf", "serif"),
    "urw_gothic": ("URWGothic-Book.otf", "URWGothic-Demi.otf", "sans"),
    "urw_bookman": ("URWBookman-Light.otf", "URWBookman-Demi.otf", "serif"),
}
HOLDOUT_ONLY = {"urw_bookman", "roboto_condensed"}

# hand-writing faces: a chancery script (mixed case) and a thin oblique geometric sans
# (capitals only), both drawn letter by letter with jitter and an elastic warp
HAND = {
    "script": "Z003-MediumItalic.otf",
    "caps": "URWGothic-BookOblique.otf",
}


@functools.lru_cache(maxsize=None)
def _index():
    found = {}
    for d in FONT_DIRS:
        for root, _dirs, files in os.walk(d):
            for f in files:
                if f.lower().endswith((".ttf", ".otf")):
                    found.setdefault(f, os.path.join(root, f))
    return found


def path(fname):
    p = _index().get(fname)
    if not p:
        raise SystemExit(f"font file {fname} not found (install the packages listed in scripts/docgen/README.md)")
    return p


def families(split):
    return [k for k in FAMILIES if split == "holdout" or k not in HOLDOUT_ONLY]


@functools.lru_cache(maxsize=None)
def font(family, px, bold=False):
    reg, bld, _ = FAMILIES[family]
    return ImageFont.truetype(path(bld if bold else reg), max(6, int(round(px))))


@functools.lru_cache(maxsize=None)
def hand_font(style, px):
    return ImageFont.truetype(path(HAND[style]), max(6, int(round(px))))


def kind(family):
    return FAMILIES[family][2]


@functools.lru_cache(maxsize=None)
def has_glyph(family, ch):
    """True when the family draws `ch` with its own glyph (not the .notdef box)."""
    f = font(family, 40)
    def mask(c):
        im = Image.new("L", (60, 60), 0)
        ImageDraw.Draw(im).text((5, 5), c, font=f, fill=255)
        return im.tobytes()
    return mask(ch) != mask("\ue000") and mask(ch) != mask("\uffff")


def check_all():
    missing = [f for fam in FAMILIES.values() for f in fam[:2] if f not in _index()]
    missing += [f for f in HAND.values() if f not in _index()]
    return missing
