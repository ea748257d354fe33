"""Capture simulation: clean renders, office scans, faxes, phone photos and the
rest, with every parameter returned for the truth's `degradation` entry."""
from __future__ import annotations

import datetime as dt
import io
import math
import re

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

MAX_BYTES = 350 * 1024

# level -> (group, render dpi range)
LEVELS = {
    "clean": ("clean", (200, 200)),
    "scan": ("scan", (120, 150)),
    "scan_fax": ("scan", (150, 150)),
    "scan_upside_down": ("scan", (130, 150)),
    "scan_lowres": ("scan", (100, 100)),
    "photo_mild": ("photo", (200, 200)),
    "photo_strong": ("photo", (200, 200)),
    "photo_sideways": ("photo", (200, 200)),
    "photo_curl": ("photo", (200, 200)),
    "photo_glare": ("photo", (200, 200)),
    "photo_folded": ("photo", (200, 200)),
    "pdf_multipage": ("scan", (150, 150)),
}


def np_rng(rng):
    return np.random.default_rng(rng.randrange(2 ** 32))


def smooth_field(g, shape, cells, lo, hi):
    """low-frequency random field in [lo, hi]"""
    h, w = shape
    small = g.uniform(0, 1, (cells[0], cells[1])).astype(np.float32)
    im = Image.fromarray((small * 255).astype(np.uint8), "L").resize((w, h), Image.BICUBIC)
    a = np.asarray(im, dtype=np.float32) / 255.0
    return lo + (hi - lo) * a


def png_bytes(im):
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def jpeg_bytes(im, q):
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q, optimize=True, subsampling=2 if im.mode == "RGB" else 0)
    return buf.getvalue()


def fit_png(im, params):
    data = png_bytes(im)
    levels = None
    for lv in (32, 16, 8):
        if len(data) <= MAX_BYTES:
            break
        step = 256 // lv
        lut = [min(255, (v // step) * step + step // 2) for v in range(256)]
        data = png_bytes(im.point(lut))
        levels = lv
    if levels:
        params["grey_levels"] = levels
    return data


def fit_jpeg(im, q, qmin, params):
    data = jpeg_bytes(im, q)
    while len(data) > MAX_BYTES and q > qmin:
        q -= 4
        data = jpeg_bytes(im, q)
    scale = 1.0
    while len(data) > MAX_BYTES:
        scale *= 0.9
        im = im.resize((int(im.width * 0.9), int(im.height * 0.9)), Image.LANCZOS)
        data = jpeg_bytes(im, q)
    params["jpeg_quality"] = q
    if scale < 1.0:
        params["downscaled"] = round(scale, 3)
        if "effective_dpi" in params:
            params["effective_dpi"] = int(round(params["effective_dpi"] * scale))
    return data


# ---------------------------------------------------------------------------
# scans
# ---------------------------------------------------------------------------

def scan(page_rgb, rng, dpi, level):
    g = np_rng(rng)
    p = {"group": "scan", "level": level if level != "scan_fax" else "scan", "dpi": dpi}
    im = page_rgb.convert("L")
    a = np.asarray(im, dtype=np.float32)
    h, w = a.shape
    tone = smooth_field(g, (h, w), (6, 5), rng.uniform(0.9, 0.95), 1.0)
    toner = smooth_field(g, (h, w), (9, 7), rng.uniform(0.72, 0.86), 1.0)
    ink = (255.0 - a) * toner
    a = (255.0 - ink) * tone
    # specks and a few smudges
    n = rng.randrange(60, 260)
    ys, xs = g.integers(0, h, n), g.integers(0, w, n)
    for y, x in zip(ys, xs):
        r = 1 if rng.random() < 0.8 else 2
        a[max(0, y - r):y + r, max(0, x - r):x + r] *= rng.uniform(0.25, 0.7)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    blur = round(rng.uniform(0.3, 0.7) if level != "scan_lowres" else rng.uniform(0.25, 0.45), 2)
    im = im.filter(ImageFilter.GaussianBlur(blur))
    ang = round(rng.uniform(0.3, 2.0) * rng.choice([-1, 1]), 2)
    if level == "scan_lowres":
        ang = round(rng.uniform(0.2, 1.0) * rng.choice([-1, 1]), 2)
    bg = int(235 * float(tone.mean()))
    im = im.rotate(ang, resample=Image.BICUBIC, fillcolor=bg)
    p.update(rotation_deg=ang, blur=blur, fax_binarized=False)
    if level == "scan_fax":
        thr = rng.randrange(150, 185)
        noise = g.normal(0, 14, (im.height, im.width))
        b = (np.asarray(im, dtype=np.float32) + noise) > thr
        im = Image.fromarray((b * 255).astype(np.uint8), "L").convert("1")
        p.update(fax_binarized=True, threshold=thr)
        data = png_bytes(im)
        return data, "png", p
    if level == "scan_upside_down":
        im = im.rotate(180)
        p["orientation_deg"] = 180
    return fit_png(im, p), "png", p


def clean(page_rgb, rng, dpi):
    p = {"group": "clean", "level": "clean", "dpi": dpi}
    im = page_rgb.convert("L")
    return fit_png(im, p), "png", p


# ---------------------------------------------------------------------------
# photos
# ---------------------------------------------------------------------------

def perspective_coeffs(dst, src):
    """coefficients for Image.transform(PERSPECTIVE): maps output (dst) points to input (src) points"""
    A, B = [], []
    for (x, y), (u, v) in zip(dst, src):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        B += [u, v]
    return np.linalg.solve(np.array(A, dtype=np.float64), np.array(B, dtype=np.float64)).tolist()


def background(g, rng, w, h):
    kind = rng.choice(["wood", "desk", "fabric", "stone", "table_light"])
    if kind == "wood":
        base = np.array([132, 92, 58], np.float32) * rng.uniform(0.8, 1.15)
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        f = rng.uniform(0.02, 0.05)
        warp = smooth_field(g, (h, w), (4, 4), 0, 40)
        stripes = 0.85 + 0.15 * np.sin((yy * 0.3 + xx * 0.02 + warp) * f * 3.0)
        img = base[None, None, :] * stripes[:, :, None]
    elif kind == "desk":
        base = np.array(rng.choice([[70, 72, 78], [48, 52, 58], [150, 152, 150]]), np.float32)
        img = np.broadcast_to(base, (h, w, 3)).copy()
    elif kind == "fabric":
        base = np.array(rng.choice([[60, 80, 120], [120, 60, 60], [80, 100, 80]]), np.float32)
        yy = np.arange(h)[:, None]
        xx = np.arange(w)[None, :]
        weave = 0.9 + 0.1 * (((yy // 3) + (xx // 3)) % 2)
        img = base[None, None, :] * weave[:, :, None]
    elif kind == "stone":
        base = np.array([128, 124, 118], np.float32)
        img = base[None, None, :] * smooth_field(g, (h, w), (30, 30), 0.7, 1.2)[:, :, None]
    else:
        base = np.array([196, 188, 172], np.float32)
        img = base[None, None, :] * smooth_field(g, (h, w), (5, 5), 0.9, 1.05)[:, :, None]
    img = img + g.normal(0, 6, (h, w, 1))
    return np.clip(img, 0, 255), kind


def curl_warp(page, rng, g):
    """Cylindrical curl of one edge of the flat page: the paper beyond x0 bends away from the camera, so it is
    foreshortened (projected position x0 + R sin(s / R) for arc length s) and darker."""
    a = np.asarray(page, dtype=np.float32)
    edge = rng.choice(["right", "bottom"])
    if edge == "bottom":
        a = np.transpose(a, (1, 0, 2))
    h, w, _ = a.shape
    frac = rng.uniform(0.2, 0.34)
    L = frac * w
    x0 = w - L
    R = L / rng.uniform(1.3, 1.52)
    xo = np.arange(w, dtype=np.float32)
    srcx = xo.copy()
    shade = np.ones(w, np.float32)
    m = xo > x0
    lim = math.sin(L / R)
    u = (xo[m] - x0) / R
    valid = u < lim
    s = R * np.arcsin(np.clip(u, 0, lim))
    srcx[m] = np.where(valid, x0 + s, -1.0)
    shade[m] = np.where(valid, 0.5 + 0.5 * np.cos(s / R * 1.4), 1.0)
    xi = np.floor(srcx).astype(np.int64)
    fx = (srcx - xi).astype(np.float32)
    ok = (srcx >= 0) & (xi < w - 1)
    xi_c = np.clip(xi, 0, w - 2)
    v = a[:, xi_c] * (1 - fx)[None, :, None] + a[:, xi_c + 1] * fx[None, :, None]
    v *= shade[None, :, None]
    v[:, ~ok] = 0
    mask = np.broadcast_to(ok[None, :], (h, w)).astype(np.uint8) * 255
    if edge == "bottom":
        v = np.transpose(v, (1, 0, 2))
        mask = mask.T
    params = {"edge": edge, "curled_fraction": round(frac, 3), "radius_frac": round(R / w, 3)}
    return (Image.fromarray(np.clip(v, 0, 255).astype(np.uint8), "RGB"),
            Image.fromarray(np.ascontiguousarray(mask), "L"), params)


def fold_creases(page, rng, g):
    """Tri-fold letter: two horizontal creases with a light/dark shading band each."""
    a = np.asarray(page, dtype=np.float32).copy()
    h, w, _ = a.shape
    ys = [int(h * rng.uniform(0.31, 0.35)), int(h * rng.uniform(0.64, 0.69))]
    prof = np.ones(h, np.float32)
    for i, y0 in enumerate(ys):
        width = rng.uniform(0.01, 0.025) * h
        yy = np.arange(h, dtype=np.float32) - y0
        sign = 1 if i == 0 else -1
        prof *= 1 - 0.18 * np.exp(-((yy - sign * width * 0.6) / width) ** 2)
        prof *= 1 + 0.06 * np.exp(-((yy + sign * width * 0.6) / (width * 0.7)) ** 2)
        line = np.exp(-(yy / 1.5) ** 2)
        prof *= 1 - 0.25 * line
    a *= prof[:, None, None]
    # the panels do not lie flat: a slight horizontal shift of the middle panel
    shift = rng.randrange(2, 6)
    a[ys[0]:ys[1]] = np.roll(a[ys[0]:ys[1]], shift, axis=1)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB"), {"creases_y_frac": [round(y / h, 3) for y in ys],
                                                                       "middle_shift_px": shift}


def photo(page_rgb, rng, level, render_dpi):
    g = np_rng(rng)
    strong = level == "photo_strong"
    p = {"group": "photo", "level": level}
    page = page_rgb
    mask = Image.new("L", page.size, 255)
    if level == "photo_curl":
        page, mask, cp = curl_warp(page, rng, g)
        p["curl"] = cp
    if level == "photo_folded":
        page, fp = fold_creases(page, rng, g)
        p["fold"] = fp
    if strong:
        eff = rng.randrange(125, 151)
        rot = round(rng.uniform(1.5, 4.0) * rng.choice([-1, 1]), 2)
        jit = round(rng.uniform(0.02, 0.045), 3)
        keystone = round(rng.uniform(0.03, 0.08), 3)
    elif level == "photo_mild":
        eff = rng.randrange(165, 186)
        rot = round(rng.uniform(0.2, 1.5) * rng.choice([-1, 1]), 2)
        jit = round(rng.uniform(0.003, 0.01), 3)
        keystone = 0.0
    else:
        eff = rng.randrange(145, 176)
        rot = round(rng.uniform(0.3, 2.5) * rng.choice([-1, 1]), 2)
        jit = round(rng.uniform(0.006, 0.02), 3)
        keystone = round(rng.uniform(0.0, 0.03), 3)
    sf = eff / render_dpi
    pw, ph = page.size[0] * sf, page.size[1] * sf
    margin = rng.uniform(1.08, 1.2)
    W, H = int(pw * margin), int(ph * margin)
    cx, cy = W / 2 + rng.uniform(-0.02, 0.02) * W, H / 2 + rng.uniform(-0.02, 0.02) * H
    corners = [(-pw / 2, -ph / 2), (pw / 2, -ph / 2), (pw / 2, ph / 2), (-pw / 2, ph / 2)]
    th = math.radians(rot)
    dst = []
    for i, (x, y) in enumerate(corners):
        if i < 2:      # keystone: top edge narrower (camera tilted)
            x *= 1 - keystone
        x += rng.uniform(-jit, jit) * pw
        y += rng.uniform(-jit, jit) * ph
        dst.append((cx + x * math.cos(th) - y * math.sin(th), cy + x * math.sin(th) + y * math.cos(th)))
    src = [(0, 0), (page.size[0], 0), page.size, (0, page.size[1])]
    co = perspective_coeffs(dst, src)
    warped = page.transform((W, H), Image.PERSPECTIVE, co, Image.BICUBIC, fillcolor=(0, 0, 0))
    wmask = mask.transform((W, H), Image.PERSPECTIVE, co, Image.BILINEAR, fillcolor=0)
    bg, kind = background(g, rng, W, H)
    # the sheet's own shadow on the surface
    sh = wmask.filter(ImageFilter.GaussianBlur(max(3, W / 150)))
    sh = ImageChops.offset(sh, int(W * 0.006), int(H * 0.008))
    sha = np.asarray(sh, np.float32)[..., None] / 255.0
    bg = bg * (1 - 0.45 * sha)
    ma = np.asarray(wmask, np.float32)[..., None] / 255.0
    img = np.asarray(warped, np.float32) * ma + bg * (1 - ma)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    # lighting gradient
    ang = rng.uniform(0, 2 * math.pi)
    grad = ((xx - W / 2) * math.cos(ang) + (yy - H / 2) * math.sin(ang)) / max(W, H)
    gstr = rng.uniform(0.08, 0.2) if strong else rng.uniform(0.03, 0.1)
    img *= (1 + gstr * grad)[..., None]
    p.update(rotation_deg=rot, perspective_jitter=jit, keystone=keystone, background=kind)
    # cast shadow (hand / phone) across part of the page
    shadow = None
    if strong and rng.random() < 0.8 or level in ("photo_sideways",) and rng.random() < 0.3:
        k = rng.uniform(0.55, 0.78)
        x0 = rng.uniform(0.1, 0.7) * W
        slope = rng.uniform(-0.6, 0.6)
        side = rng.choice([-1, 1])
        m = (xx - (x0 + slope * (yy - H / 2))) * side > 0
        sm = Image.fromarray((m * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(W / 40))
        sma = np.asarray(sm, np.float32) / 255.0
        img *= (1 - (1 - k) * sma)[..., None]
        shadow = {"darkness": round(1 - k, 2), "edge_x_frac": round(x0 / W, 2), "slope": round(slope, 2)}
    p["shadow"] = shadow
    # vignette
    vig = rng.uniform(0.15, 0.32) if strong else rng.uniform(0.05, 0.14)
    r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
    img *= (1 - vig * np.clip(r2 / 2, 0, 1))[..., None]
    p["vignette"] = round(vig, 2)
    # colour cast
    if strong or rng.random() < 0.4:
        cast = [rng.uniform(1.02, 1.07), 1.0, rng.uniform(0.82, 0.92)]
        img *= np.array(cast, np.float32)[None, None, :]
        p["warm_cast"] = [round(c, 3) for c in cast]
    # glare spot
    if level == "photo_glare":
        gx, gy = rng.uniform(0.25, 0.75) * W, rng.uniform(0.2, 0.8) * H
        rx, ry = rng.uniform(0.1, 0.2) * W, rng.uniform(0.06, 0.14) * H
        strength = rng.uniform(0.55, 0.8)
        e = np.exp(-(((xx - gx) / rx) ** 2 + ((yy - gy) / ry) ** 2))
        img = img + (255 - img) * (strength * e)[..., None]
        core = np.exp(-(((xx - gx) / (rx * 0.3)) ** 2 + ((yy - gy) / (ry * 0.3)) ** 2))
        img = img + (255 - img) * (0.35 * core)[..., None]
        p["glare"] = {"x_frac": round(gx / W, 3), "y_frac": round(gy / H, 3), "rx_frac": round(rx / W, 3),
                      "ry_frac": round(ry / H, 3), "strength": round(strength, 2)}
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    blur = round(rng.uniform(0.6, 1.3) if strong else rng.uniform(0.3, 0.8), 2)
    im = im.filter(ImageFilter.GaussianBlur(blur))
    p["blur"] = blur
    mb = None
    if strong and rng.random() < 0.45:
        n = rng.randrange(3, 6)
        mang = rng.uniform(0, math.pi)
        acc = np.zeros((H, W, 3), np.float32)
        for i in range(n):
            off = i - (n - 1) / 2
            acc += np.asarray(ImageChops.offset(im, int(round(off * math.cos(mang))), int(round(off * math.sin(mang)))),
                              np.float32)
        im = Image.fromarray(np.clip(acc / n, 0, 255).astype(np.uint8), "RGB")
        mb = {"length_px": n, "angle_deg": round(math.degrees(mang), 1)}
    p["motion_blur"] = mb
    sigma = round(rng.uniform(3.0, 6.0) if strong else rng.uniform(1.0, 2.5), 2)
    a = np.asarray(im, np.float32) + g.normal(0, sigma, (H, W, 1)) + g.normal(0, sigma * 0.4, (H, W, 3))
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    p["noise_sigma"] = sigma
    p["effective_dpi"] = eff
    if level == "photo_sideways":
        o = rng.choice([90, 270])
        im = im.rotate(-o, expand=True)       # clockwise by o degrees
        p["orientation_deg"] = o
    q = rng.randrange(45, 71) if strong else rng.randrange(74, 90)
    qmin = 45 if strong else 62
    return fit_jpeg(im, q, qmin, p), "jpg", p


# ---------------------------------------------------------------------------
# multi-page PDF
# ---------------------------------------------------------------------------

def pdf(pages_rgb, rng, dpi, date, corrupt_page=None):
    g = np_rng(rng)
    p = {"group": "scan", "level": "pdf_multipage", "dpi": dpi, "pages": len(pages_rgb)}
    ims = []
    rots = []
    for pg in pages_rgb:
        im = pg.convert("L")
        a = np.asarray(im, np.float32)
        tone = smooth_field(g, a.shape, (5, 4), 0.93, 1.0)
        a = 255 - (255 - a) * smooth_field(g, a.shape, (7, 6), 0.8, 1.0)
        a = a * tone
        im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(0.35))
        ang = round(rng.uniform(-0.8, 0.8), 2)
        im = im.rotate(ang, resample=Image.BICUBIC, fillcolor=int(240 * float(tone.mean())))
        rots.append(ang)
        ims.append(im)
    p["rotation_deg"] = rots
    q = 72
    stamp = dt.datetime(date.year, date.month, date.day, 12, 0, 0).timetuple()
    while True:
        buf = io.BytesIO()
        ims[0].save(buf, "PDF", save_all=True, append_images=ims[1:], resolution=float(dpi), quality=q,
                    title="Scanned document", creationDate=stamp, modDate=stamp, producer="docgen")
        data = buf.getvalue()
        if len(data) <= MAX_BYTES or q <= 40:
            break
        q -= 6
    p["jpeg_quality"] = q
    if corrupt_page:
        data, info = corrupt_pdf_page(data, corrupt_page)
        p["corruption"] = info
    return data, "pdf", p


def pdf_image_streams(data):
    """-> [(start, end)] byte spans of each page's image stream, in page order"""
    kids = re.search(rb"/Kids \[([^\]]*)\]", data).group(1)
    page_ids = [int(x) for x in re.findall(rb"(\d+) 0 R", kids)]
    spans = []
    for pid in page_ids:
        m = re.search(rb"(?<![0-9])%d 0 obj<<(.*?)>>endobj" % pid, data, re.S)
        img_id = int(re.search(rb"/image (\d+) 0 R", m.group(1)).group(1))
        m2 = re.search(rb"(?<![0-9])%d 0 obj<<(.*?)/Length (\d+)\s*>>stream\n" % img_id, data, re.S)
        start = m2.end()
        spans.append((start, start + int(m2.group(2))))
    return spans


def corrupt_pdf_page(data, page_no):
    """Zero the entropy-coded data of one page's JPEG (everything after its SOS header), keeping the PDF
    structure and all byte offsets valid: the page exists but its image cannot be decoded."""
    start, end = pdf_image_streams(data)[page_no - 1]
    jpg = data[start:end]
    sos = jpg.find(b"\xff\xda")
    hdr_len = int.from_bytes(jpg[sos + 2:sos + 4], "big")
    keep = sos + 2 + hdr_len
    bad = jpg[:keep] + b"\x00" * (len(jpg) - keep)
    out = data[:start] + bad + data[end:]
    return out, {"page": page_no, "method": "JPEG scan data zeroed after the SOS header", "bytes_kept": keep,
                 "bytes_total": len(jpg)}


def pdf_page_images(data):
    """Decode each page image of a PDF written by pdf(); None for a page that cannot be decoded."""
    out = []
    for start, end in pdf_image_streams(data):
        try:
            im = Image.open(io.BytesIO(data[start:end]))
            im.load()
            a = np.asarray(im.convert("L"))
            out.append(im if a.std() > 2 else None)
        except Exception:
            out.append(None)
    return out
