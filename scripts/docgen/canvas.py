"""Drawing primitives on a page image, with a log of the text lines drawn (in
reading order) for DOC.txt and for checking the truth against the page."""
from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFilter

from . import fonts

INK = (20, 20, 22)
GREY = (95, 95, 100)
BLUE_INK = (28, 48, 140)
FOOTER = "SYNTHETIC TEST DOCUMENT - NOT A REAL PATIENT"


class Overflow(Exception):
    pass


PAGE_SIZES = {"letter": (8.5, 11.0), "a4": (8.27, 11.69), "landscape": (11.0, 8.5)}


class Canvas:
    def __init__(self, page, dpi, family, base_pt, rng, margins=(0.6, 0.55, 0.6, 0.75)):
        w_in, h_in = PAGE_SIZES[page]
        self.page = page
        self.dpi = dpi
        self.W, self.H = int(round(w_in * dpi)), int(round(h_in * dpi))
        self.img = Image.new("RGB", (self.W, self.H), (255, 255, 255))
        self.d = ImageDraw.Draw(self.img)
        self.family = family
        self.base = base_pt
        self.rng = rng
        ml, mt, mr, mb = margins
        self.left, self.top = self.px(ml), self.px(mt)
        self.right, self.bottom = self.W - self.px(mr), self.H - self.px(mb)
        self.log = []
        self.hand_log = []
        self.clipped = []           # text drawn (partly) outside the sheet: a layout error

    # -- units ---------------------------------------------------------------------------
    def px(self, inches):
        return int(round(inches * self.dpi))

    def ptpx(self, pt):
        return pt * self.dpi / 72.0

    def font(self, size=None, bold=False, family=None):
        return fonts.font(family or self.family, self.ptpx(size or self.base), bold)

    @staticmethod
    def tw(s, font):
        return font.getlength(s)

    def lh(self, size=None, factor=1.32):
        return int(round(self.ptpx(size or self.base) * factor))

    def check(self, y):
        if y > self.bottom:
            raise Overflow(y)

    def say(self, line):
        line = " ".join(str(line).split()) if "  " not in str(line) else str(line).strip()
        if line:
            self.log.append(line)

    # -- text ------------------------------------------------------------------------------
    def text(self, x, y, s, size=None, bold=False, fill=INK, family=None, align="l", log=False):
        f = self.font(size, bold, family)
        w = self.tw(s, f)
        if align == "r":
            x = x - w
        elif align == "c":
            x = x - w / 2
        if x < self.px(0.1) or x + w > self.W - self.px(0.12) or y < 0 or y > self.H:
            self.clipped.append(s)
        self.d.text((x, y), s, font=f, fill=fill, anchor="la")
        if log:
            self.say(s)
        return w

    def row(self, y, parts, log=True):
        """parts: [(x, text, dict(size, bold, fill, align, family))] on one line; logged joined by two spaces."""
        placed = []
        for x, s, kw in parts:
            if not s:
                continue
            w = self.text(x, y, s, **kw)
            align = kw.get("align", "l")
            x0 = x - w if align == "r" else (x - w / 2 if align == "c" else x)
            placed.append((x0, s))
        if log and placed:
            self.say("  ".join(s for _, s in sorted(placed, key=lambda p: p[0])))

    def wrap(self, s, width, size=None, bold=False, family=None):
        f = self.font(size, bold, family)
        words, lines, cur = s.split(), [], ""
        for w in words:
            t = (cur + " " + w).strip()
            if self.tw(t, f) <= width or not cur:
                cur = t
            else:
                lines.append(cur)
                cur = w
        if cur:
            lines.append(cur)
        return lines

    def para(self, x, y, width, s, size=None, bold=False, fill=INK, family=None, spacing=1.32, indent=0):
        for i, line in enumerate(self.wrap(s, width - indent, size, bold, family)):
            self.check(y + self.lh(size, spacing))
            self.text(x + (indent if i else 0), y, line, size, bold, fill, family, log=True)
            y += self.lh(size, spacing)
        return y

    # -- hand-writing ----------------------------------------------------------------------
    def hand(self, x, y, s, style, size=None):
        """Blue-ink hand-written text (per-letter size / angle / baseline jitter and a smooth elastic warp of the
        whole word); returns (width, visible text)."""
        import numpy as np
        size = (size or self.base) * (1.4 if style == "script" else 1.2)
        px = self.ptpx(size)
        visible = s.upper() if style == "caps" else s
        f = fonts.hand_font(style, px)
        rng = self.rng
        W = int(f.getlength(visible) * 1.25 + 3 * px)
        H = int(px * 2.4)
        word = Image.new("L", (W, H), 0)
        cx = px * 0.3
        base_y = px * 0.45
        slope = rng.uniform(-0.025, 0.025)
        for ch in visible:
            if ch == " ":
                cx += px * (0.3 if style == "script" else 0.42)
                continue
            pad = int(px * 0.5)
            gw = max(1, int(f.getlength(ch)) + 2 * pad)
            gh = int(px * 1.5) + 2 * pad
            gl = Image.new("L", (gw, gh), 0)
            ImageDraw.Draw(gl).text((pad, pad), ch, font=f, fill=255, anchor="la")
            sc = rng.uniform(0.93, 1.08)
            ang = rng.uniform(-4, 4)
            gl = gl.resize((max(1, int(gw * sc)), max(1, int(gh * sc))), Image.BICUBIC)
            gl = gl.rotate(ang, resample=Image.BICUBIC, expand=False)
            dy = base_y + rng.uniform(-0.05, 0.05) * px + slope * cx - pad * sc
            word.paste(255, (int(cx - pad * sc), int(dy)), gl)
            cx += f.getlength(ch) * sc * (0.95 if style == "script" else 1.05) + rng.uniform(0.0, 0.05) * px
        # smooth elastic warp
        a = np.asarray(word, dtype=np.float32)
        def field(amp):
            small = Image.fromarray(np.uint8([[rng.randrange(256) for _ in range(max(2, W // int(px * 1.2)))]
                                              for _ in range(3)]), "L")
            return (np.asarray(small.resize((W, H), Image.BICUBIC), np.float32) / 255.0 - 0.5) * 2 * amp
        dx, dy = field(px * 0.07), field(px * 0.07)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        sx = np.clip(xx + dx, 0, W - 1.001)
        sy = np.clip(yy + dy, 0, H - 1.001)
        x0, y0 = sx.astype(np.int32), sy.astype(np.int32)
        fx, fy = sx - x0, sy - y0
        v = (a[y0, x0] * (1 - fx) * (1 - fy) + a[y0, x0 + 1] * fx * (1 - fy) + a[y0 + 1, x0] * (1 - fx) * fy
             + a[y0 + 1, x0 + 1] * fx * fy)
        alpha = Image.fromarray(np.clip(v * rng.uniform(0.82, 0.95), 0, 255).astype(np.uint8), "L")
        ink = Image.new("RGB", (W, H), BLUE_INK)
        self.img.paste(ink, (int(x - px * 0.3), int(y - base_y + self.ptpx(self.base) * 0.05)), alpha)
        if x + cx > self.W - self.px(0.12):
            self.clipped.append(visible)
        self.hand_log.append(visible)
        return cx - px * 0.3, visible

    def signature(self, x, y, w, h):
        rng = self.rng
        pts = []
        n = rng.randrange(5, 9)
        for i in range(n * 6):
            t = i / (n * 6 - 1)
            pts.append((x + t * w + math.sin(t * n * math.pi * 2) * w * 0.04,
                        y + h * 0.5 + math.sin(t * n * math.pi + rng.random()) * h * 0.45 * rng.uniform(0.5, 1)))
        self.d.line(pts, fill=BLUE_INK, width=max(1, int(self.dpi / 90)), joint="curve")
        self.d.line([(x + w * 0.1, y + h * 0.85), (x + w * 0.9, y + h * 0.78)], fill=BLUE_INK,
                    width=max(1, int(self.dpi / 120)))

    # -- lines and boxes --------------------------------------------------------------------
    def hline(self, x0, x1, y, width=1, fill=INK, dash=None):
        width = max(1, int(round(width * self.dpi / 150)))
        if not dash:
            self.d.line([(x0, y), (x1, y)], fill=fill, width=width)
            return
        on, off = dash
        x = x0
        while x < x1:
            self.d.line([(x, y), (min(x + on, x1), y)], fill=fill, width=width)
            x += on + off

    def vline(self, x, y0, y1, width=1, fill=INK):
        self.d.line([(x, y0), (x, y1)], fill=fill, width=max(1, int(round(width * self.dpi / 150))))

    def rect(self, x0, y0, x1, y1, fill=None, outline=None, width=1, radius=0):
        w = max(1, int(round(width * self.dpi / 150)))
        if radius:
            self.d.rounded_rectangle([x0, y0, x1, y1], radius=radius, fill=fill, outline=outline, width=w)
        else:
            self.d.rectangle([x0, y0, x1, y1], fill=fill, outline=outline, width=w)

    def logo(self, x, y, size, color, kind, inner=(255, 255, 255)):
        s = size
        if kind == 0:
            self.d.ellipse([x, y, x + s, y + s], fill=color)
            t = s * 0.18
            self.d.rectangle([x + s / 2 - t / 2, y + s * 0.2, x + s / 2 + t / 2, y + s * 0.8], fill=inner)
            self.d.rectangle([x + s * 0.2, y + s / 2 - t / 2, x + s * 0.8, y + s / 2 + t / 2], fill=inner)
        elif kind == 1:
            self.d.polygon([(x + s / 2, y), (x + s, y + s), (x, y + s)], fill=color)
            self.d.ellipse([x + s * 0.35, y + s * 0.45, x + s * 0.65, y + s * 0.75], fill=inner)
        elif kind == 2:
            self.d.rounded_rectangle([x, y, x + s, y + s], radius=s * 0.2, fill=color)
            self.d.ellipse([x + s * 0.15, y + s * 0.15, x + s * 0.6, y + s * 0.6], fill=inner)
            self.d.ellipse([x + s * 0.4, y + s * 0.4, x + s * 0.85, y + s * 0.85], outline=inner,
                           width=max(1, int(s / 12)))
        else:
            for i in range(3):
                self.d.pieslice([x, y, x + s, y + s], start=i * 120, end=i * 120 + 80, fill=color)

    def barcode(self, x, y, w, h):
        rng = self.rng
        cx = x
        while cx < x + w:
            bw = rng.choice([1, 1, 2, 3]) * max(1, self.dpi // 100)
            self.d.rectangle([cx, y, cx + bw - 1, y + h], fill=INK)
            cx += bw + rng.choice([1, 2, 2, 3]) * max(1, self.dpi // 100)

    def footer(self, left="", center="", right="", size=None):
        """Footer lines at the bottom of the page; the last line is always the SYNTHETIC notice."""
        size = size or max(6.5, self.base - 1.5)
        f = self.font(size)
        lh = self.lh(size)
        items = [(self.left, left, "l"), ((self.left + self.right) / 2, center, "c"), (self.right, right, "r")]
        spans = []
        for x, s, a in items:
            if not s:
                continue
            w = self.tw(s, f)
            x0 = x if a == "l" else (x - w / 2 if a == "c" else x - w)
            spans.append((x0, x0 + w, x, s, a))
        fits = all(spans[i][1] + self.px(0.15) < spans[i + 1][0] for i in range(len(spans) - 1))
        lines = [spans] if fits else [[sp] for sp in spans]
        y = self.H - self.px(0.2) - lh * (len(lines) + 1)
        y = min(y, self.H - self.px(0.55))
        self.hline(self.left, self.right, y - self.px(0.06), 1, GREY)
        for ln in lines:
            if fits:
                self.row(y, [(x, s, dict(size=size, fill=GREY, align=a)) for _, _, x, s, a in ln])
            else:
                for _, _, x, s, a in ln:
                    self.text(self.left, y, s, size=size, fill=GREY, log=True)
            y += lh
        self.text(self.W / 2, y + self.px(0.02), FOOTER, size=size, fill=GREY, align="c", log=True)
        self.footer_drawn = y + self.px(0.02) + lh <= self.H


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------

def cell_text(c):
    return c["t"] if isinstance(c, dict) else (c or "")


def table(cv, x, y, width, cols, rows, st, log=True):
    """Draw a table; returns the y below it.

    cols: [dict(h=header, align='l'|'r'|'c')]; rows: [[cell]], cell = str or dict(t, bold)
    st: dict(size, grid, head_fill, zebra, rules ('none'|'head'|'rows'|'dashed'), stretch, head_bold, head_upper,
             pad, head_line, outer, row_factor, head=True)"""
    size = st.get("size", cv.base)
    pad = cv.ptpx(st.get("pad", 3.2))
    f = cv.font(size)
    fb = cv.font(size, True)
    head = st.get("head", True)
    heads = [(c["h"].upper() if st.get("head_upper") else c["h"]) for c in cols]
    hf = fb if st.get("head_bold", True) else f
    nat = []
    for j, c in enumerate(cols):
        w = cv.tw(heads[j], hf) if head else 0
        for r in rows:
            cc = r[j]
            w = max(w, cv.tw(cell_text(cc), fb if isinstance(cc, dict) and cc.get("bold") else f))
        nat.append(w + 2 * pad)
    total = sum(nat)
    if total > width:
        # shrink the widest column (usually the test name / medication) and wrap it
        j = max(range(len(nat)), key=lambda i: nat[i])
        nat[j] -= total - width
        if nat[j] < cv.ptpx(size) * 4:
            raise Overflow("table too wide")
    elif st.get("stretch", True):
        extra = width - total
        # give the extra width mostly to the first column
        nat[0] += extra * 0.5
        for j in range(1, len(nat)):
            nat[j] += extra * 0.5 / (len(nat) - 1) if len(nat) > 1 else 0
    else:
        gap = min(cv.ptpx(size) * 1.6, (width - total) / max(1, len(nat) - 1))
        nat = [w + (gap if j < len(nat) - 1 else 0) for j, w in enumerate(nat)]
    xs = [x]
    for w in nat:
        xs.append(xs[-1] + w)
    rf = st.get("row_factor", 1.5)
    rh = cv.lh(size, rf)
    line_w = st.get("line_w", 1)
    gridc = st.get("grid_color", (70, 70, 75))

    def wrap_cell(j, s, bold):
        avail = nat[j] - 2 * pad
        return cv.wrap(s, avail, size, bold) if cv.tw(s, fb if bold else f) > avail else [s]

    def draw_row(cells, yy, bold_all=False, fill=None, is_head=False):
        lines_per = []
        for j, cc in enumerate(cells):
            s = cell_text(cc)
            bold = bold_all or (isinstance(cc, dict) and cc.get("bold"))
            lines_per.append((wrap_cell(j, s, bold) if s else [""], bold))
        n = max(len(l) for l, _ in lines_per)
        h = rh + (n - 1) * cv.lh(size, 1.2)
        cv.check(yy + h)
        if fill:
            cv.rect(xs[0], yy, xs[-1], yy + h, fill=fill)
        ty = yy + (rh - cv.ptpx(size) * 1.15) / 2
        parts_log = []
        for j, (ls, bold) in enumerate(lines_per):
            al = cols[j].get("align", "l")
            for k, s in enumerate(ls):
                if not s:
                    continue
                if al == "r":
                    tx = xs[j + 1] - pad
                elif al == "c":
                    tx = (xs[j] + xs[j + 1]) / 2
                else:
                    tx = xs[j] + pad
                cv.text(tx, ty + k * cv.lh(size, 1.2), s, size=size, bold=bold, align=al,
                        fill=cc_fill(cells[j]))
            if any(ls):
                parts_log.append(" ".join(l for l in ls if l))
        if log and parts_log:
            cv.say("  ".join(parts_log))
        return yy + h

    def cc_fill(cc):
        return cc.get("fill", INK) if isinstance(cc, dict) else INK

    y0 = y
    if head:
        y1 = draw_row(heads, y, bold_all=st.get("head_bold", True), fill=st.get("head_fill"), is_head=True)
        if st.get("grid"):
            pass
        elif st.get("rules", "head") in ("head", "rows", "dashed"):
            dash = (cv.px(0.05), cv.px(0.035)) if st.get("rules") == "dashed" else None
            cv.hline(xs[0], xs[-1], y1 - 1, line_w, gridc, dash)
        if st.get("head_line_top"):
            cv.hline(xs[0], xs[-1], y, line_w, gridc)
        y = y1
    row_tops = [y0] + ([y] if head else [])
    for i, r in enumerate(rows):
        fill = st.get("zebra") if st.get("zebra") and i % 2 == 1 else None
        y2 = draw_row(r, y, fill=fill)
        if not st.get("grid") and st.get("rules") == "rows" and i < len(rows) - 1:
            cv.hline(xs[0], xs[-1], y2, 0.7, (170, 170, 170))
        y = y2
        row_tops.append(y)
    if st.get("grid"):
        for yy in sorted(set(row_tops)):
            cv.hline(xs[0], xs[-1], yy, line_w, gridc)
        for xx in xs:
            cv.vline(xx, y0, y, line_w, gridc)
    elif st.get("outer"):
        cv.rect(xs[0], y0, xs[-1], y, outline=gridc, width=line_w)
    if st.get("rules") == "dashed" and not st.get("grid"):
        cv.hline(xs[0], xs[-1], y, line_w, gridc, (cv.px(0.05), cv.px(0.035)))
    return y
