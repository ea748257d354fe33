"""Document content: patient, provider, dates, results, diagnoses, mentions and
medications, with every printed string decided here (the layouts only place
them).  The truth file is derived from the same objects (truth.py).
"""
from __future__ import annotations

import datetime as dt
import math

from . import catalog as C
from . import fonts
from . import variants as V

FORMS = {"lab": "lab_report", "lab_letter": "lab_report", "cumulative": "lab_report", "visit": "visit_summary",
         "visit_letter": "visit_summary", "medlist": "medication_list", "discharge": "discharge_summary"}


class Doc:
    """Attribute bag for one document."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def wchoice(rng, items):
    """items: [(value, weight)]"""
    tot = sum(w for _, w in items)
    x = rng.random() * tot
    for v, w in items:
        x -= w
        if x <= 0:
            return v
    return items[-1][0]


def num(s):
    """'134' -> 134, '3.50' -> 3.5"""
    return int(s) if "." not in s else float(s)


def fmt_num(v, dec):
    return f"{v:.{dec}f}"


def rand_date(rng, start=dt.date(2023, 1, 2), end=dt.date(2025, 11, 28)):
    return start + dt.timedelta(days=rng.randrange((end - start).days))


def age_on(dob, d):
    return d.year - dob.year - ((d.month, d.day) < (dob.month, dob.day))


# ---------------------------------------------------------------------------
# people
# ---------------------------------------------------------------------------

def make_mrn(rng):
    kind = rng.randrange(7)
    digits = lambda n: "".join(str(rng.randrange(10)) for _ in range(n))
    if kind == 0:
        return "M" + digits(7)
    if kind == 1:
        return f"{digits(3)}-{digits(3)}-{digits(3)}"
    if kind == 2:
        return rng.choice("ABCDEFGHJKLMNPRSTW") + rng.choice("ABCDEFGHJKLMNPRSTW") + digits(6)
    if kind == 3:
        return "00" + digits(6)
    if kind == 4:
        return digits(8)
    if kind == 5:
        return "E" + digits(7)
    return rng.choice(["H", "K", "R"]) + digits(6) + rng.choice("ABCDEFGHJKLMNPRSTW")


def name_printed(fmt, given, middle, family):
    mi = middle or ""
    if fmt == "LAST, FIRST M":
        return f"{family.upper()}, {given.upper()}" + (f" {mi}" if mi else "")
    if fmt == "Last, First M.":
        return f"{family}, {given}" + (f" {mi}." if mi else "")
    if fmt == "First M. Last":
        return f"{given} " + (f"{mi}. " if mi else "") + family
    if fmt == "FIRST M LAST":
        return f"{given.upper()} " + (f"{mi} " if mi else "") + family.upper()
    if fmt == "Last, First":
        return f"{family}, {given}"
    if fmt == "LAST First":
        return f"{family.upper()} {given}"
    if fmt == "Last First":
        return f"{family} {given}"
    raise ValueError(fmt)


def prov_printed(style, p):
    g, f, cr = p["given"], p["family"], p["credential"]
    return {
        "LAST, FIRST CRED": f"{f.upper()}, {g.upper()} {cr}",
        "First Last, CRED": f"{g} {f}, {cr}",
        "Dr. First Last": f"Dr. {g} {f}",
        "Dr. F. Last": f"Dr. {g[0]}. {f}",
        "Last, First CRED": f"{f}, {g} {cr}",
        "F. Last, CRED": f"{g[0]}. {f}, {cr}",
        "Dr First LAST": f"Dr {g} {f.upper()}",
    }[style]


PROV_STYLES = ["LAST, FIRST CRED", "First Last, CRED", "Dr. First Last", "Dr. F. Last", "Last, First CRED",
               "F. Last, CRED", "Dr First LAST"]


def make_provider(rng, intl=False, avoid=()):
    while True:
        g, f = rng.choice(C.PROV_GIVEN), rng.choice(C.PROV_FAMILY)
        if f not in avoid:
            break
    cr = rng.choice(C.INTL_CREDENTIALS if intl else C.CREDENTIALS)
    return {"given": g, "family": f, "credential": cr}


def address(rng, intl=False):
    no = rng.randrange(12, 9800)
    st = rng.choice(C.STREETS)
    if intl:
        city, pc = rng.choice(C.UK_CITIES)
        return f"{no} {st}, {city} {pc}"
    city, state = rng.choice(C.CITIES)
    return f"{no} {st}, {city}, {state} {rng.randrange(10000, 99999)}"


def phone(rng, intl=False):
    if intl:
        return f"0{rng.randrange(1100, 1999)} 555 01{rng.randrange(10, 99)}"
    return f"({rng.randrange(201, 989)}) 555-01{rng.randrange(10, 99)}"


# ---------------------------------------------------------------------------
# style: all wording and format choices of one document
# ---------------------------------------------------------------------------

def make_style(rng, split, d):
    p = lambda name, **k: V.pick(rng, split, name, **k)
    s = Doc()
    s.name_label = p("name_label")
    s.dob_label = p("dob_label")
    s.mrn_label = p("mrn_label")
    s.sex_label = p("sex_label")
    s.provider_label = p({"lab_report": "lab_provider_label", "visit_summary": "visit_provider_label",
                          "discharge_summary": "discharge_provider_label",
                          "medication_list": "medlist_provider_label"}[d.doc_type])
    s.collected_label, s.received_label, s.reported_label = p("collected_label"), p("received_label"), p("reported_label")
    s.visit_date_label, s.admit_label, s.discharge_label = p("visit_date_label"), p("admit_label"), p("discharge_label")
    s.medlist_date_label = p("medlist_date_label")
    s.name_fmt = p("name_fmt")
    if d.intl:
        s.date_fmt = p("date_fmt_intl")
    else:
        s.date_fmt = p("date_fmt_us")
    s.time_style = "24" if d.intl or rng.random() < 0.5 else "12"
    excl = [] if fonts.has_glyph(d.font, "\u2191") else ["col_arrow", "glued_arrow"]
    s.flag_style = p("flag_style", exclude=excl)
    if d.layout == "letter":
        s.flag_style = "sentence"
    s.range_style = p("range_style")
    s.ge_style = p("ge_style", exclude=[] if fonts.has_glyph(d.font, "\u2265") else ["\u2265{x}"])
    s.gt_style = p("gt_style")
    s.lt_style = p("lt_style")
    s.qual_style = p("qual_style")
    s.dx_style = p("dx_style")
    if d.layout == "grid" and rng.random() < 0.5:
        s.dx_style = "table"
    s.sig_style = p("sig_style")
    s.med_name_style = p("med_name_style")
    s.colon = not d.intl
    s.prov_style = rng.choice(PROV_STYLES)
    if d.intl:
        s.prov_style = rng.choice(["LAST, FIRST CRED", "Dr First LAST", "First Last, CRED", "Dr. F. Last"])
    s.units = {}          # unit list id -> chosen (printed, ucum), one spelling per document
    s.split = split
    return s


def unit_for(rng, s, a):
    """One spelling per unit list and document (parallel count-unit lists share the choice)."""
    key = tuple(a.units)
    group = C.UNIT_GROUPS.get(key)
    if group:
        if group not in s.units:
            idx = [i for i, u in enumerate(a.units) if s.split == "holdout" or u[0] not in C.HOLDOUT_UNITS]
            if s.split == "holdout":
                res = [i for i in idx if a.units[i][0] in C.HOLDOUT_UNITS]
                if res and rng.random() < 0.4:
                    idx = res
            s.units[group] = rng.choice(idx)
        i = s.units[group]
        u = a.units[i]
        if s.split != "holdout" and u[0] in C.HOLDOUT_UNITS:
            u = a.units[0]
        return u
    if key not in s.units:
        opts = [u for u in a.units if s.split == "holdout" or u[0] not in C.HOLDOUT_UNITS]
        if s.split == "holdout":
            res = [u for u in opts if u[0] in C.HOLDOUT_UNITS]
            if res and rng.random() < 0.4:
                opts = res
        s.units[key] = rng.choice(opts)
    return s.units[key]


def ref_text(s, ref):
    kind = ref[0]
    if kind == "range":
        lo, hi = ref[1], ref[2]
        return {"dash": f"{lo}-{hi}", "spaced": f"{lo} - {hi}", "to": f"{lo} to {hi}", "paren": f"({lo}-{hi})",
                "bracket": f"[{lo} - {hi}]"}[s.range_style]
    if kind == "lt":
        return s.lt_style.replace("{x}", ref[1])
    if kind == "ge":
        return s.ge_style.replace("{x}", ref[1])
    if kind == "gt":
        return s.gt_style.replace("{x}", ref[1])
    if kind == "qual":
        return s.qual_style
    raise ValueError(ref)


def ref_bounds(ref):
    kind = ref[0]
    if kind == "range":
        return num(ref[1]), num(ref[2])
    if kind == "lt":
        return None, num(ref[1])
    if kind in ("ge", "gt"):
        return num(ref[1]), None
    return None, None


def flag_of(ref, v):
    """v: float, or (comparator, float)."""
    eps = 1e-9
    if isinstance(v, tuple):
        comp, x = v
        v = x - 1e-6 if comp == "<" else x + 1e-6
    kind = ref[0]
    if kind == "range":
        lo, hi = float(ref[1]), float(ref[2])
        return "H" if v > hi + eps else ("L" if v < lo - eps else "")
    if kind == "lt":
        return "H" if v >= float(ref[1]) - eps else ""
    if kind == "ge":
        return "L" if v < float(ref[1]) - eps else ""
    if kind == "gt":
        return "L" if v <= float(ref[1]) + eps else ""
    return ""


def on_bound(ref, v):
    for b in ref_bounds(ref):
        if b is not None and abs(float(b) - v) < 1e-9:
            return True
    return False


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------

def sample_value(rng, a, ref, status):
    lo, hi = ref_bounds(ref)
    band = {"normal": a.normal, "high": a.high, "low": a.low}[status]
    if band is None:
        if status == "normal":
            if lo is not None and hi is not None:
                w = hi - lo
                band = (lo + 0.12 * w, hi - 0.12 * w)
            elif hi is not None:
                band = (0.45 * hi, 0.92 * hi)
            else:
                band = (lo * 1.15, lo * 2.2)
        elif status == "high":
            top = hi if hi is not None else lo * 2
            band = (top * 1.08, top * 1.7)
        else:
            bot = lo if lo is not None else hi * 0.3
            band = (bot * 0.55, bot * 0.93)
    return rng.uniform(*band)


def finalize(rng, a, ref, v):
    """round, keep off the printed bounds; -> (value, value_text)"""
    step = 10 ** -a.dec
    v = max(v, 0.0)
    r = round(v, a.dec)
    for _ in range(5):
        if not on_bound(ref, r):
            break
        r = round(r + step * (1 if rng.random() < 0.5 else -1), a.dec)
    txt = fmt_num(r, a.dec)
    val = int(round(r)) if a.dec == 0 else float(txt)
    return val, txt


def make_result(rng, d, key, status=None, value=None, comp=None, panel=None, date=None):
    a = C.ANALYTES[key]
    s = d.style
    ref = rng.choice(a.refs)
    if isinstance(ref, dict):
        ref = ref[d.sex]
    ref = d.ref_cache.setdefault(key, ref)       # one range per analyte and document
    unit, ucum = unit_for(rng, s, a)
    name = d.name_cache.setdefault(key, rng.choice(a.names))
    if d.layout == "printout":
        name = name.upper()
    res = {"name": name, "analyte": a.analyte, "loinc": a.loinc, "unit": unit, "ucum": ucum}
    if a.qual:
        normal_word, abn = a.qual
        if value is None:
            value = normal_word if rng.random() > 0.18 else rng.choice(abn)
        printed = value
        if value == "Negative":
            printed = s.qual_style
        elif value == "Positive" and s.qual_style.isupper():
            printed = "POSITIVE"
        res.update(value=value, value_text=printed, ref_low=None, ref_high=None, ref_text=ref_text(s, ref),
                   flag="" if value == normal_word else "A")
    else:
        if comp is None and value is None and a.comps and status is None:
            for txt, _flag, prob in a.comps:
                if rng.random() < prob:
                    comp = txt
                    break
        lo, hi = ref_bounds(ref)
        if comp:
            c, x = comp[0], float(comp[1:])
            res.update(value=comp, value_text=comp, flag=flag_of(ref, (c, x)))
        else:
            if value is None:
                if status is None:
                    opts = [("normal", 0.7)]
                    if a.high is not None or (a.normal is None and hi is not None):
                        opts.append(("high", 0.2))
                    if a.low is not None or (a.normal is None and lo is not None and lo > 0):
                        opts.append(("low", 0.1))
                    status = wchoice(rng, opts)
                value = sample_value(rng, a, ref, status)
            val, txt = finalize(rng, a, ref, value)
            res.update(value=val, value_text=txt, flag=flag_of(ref, float(val)))
        res.update(ref_low=lo, ref_high=hi, ref_text=ref_text(s, ref))
    if panel is not None:
        res["panel"] = panel
    if date is not None:
        res["date"] = date.isoformat()
    res["_key"] = key
    res["_ref"] = ref
    return res


def egfr_2021(scr_mgdl, age, sex):
    k, a = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    e = 142 * min(scr_mgdl / k, 1) ** a * max(scr_mgdl / k, 1) ** -1.2 * 0.9938 ** age
    return e * (1.012 if sex == "female" else 1.0)


def panel_results(rng, d, pkey, heading=None, with_optional=None):
    """Results of one panel, with the usual arithmetic relations between them."""
    names, keys, optional = C.PANELS[pkey]
    keys = list(keys)
    if with_optional is None:
        with_optional = rng.random() < 0.5
    if with_optional:
        keys += [k for k in optional if k not in keys]
    heading = heading or rng.choice(names)
    vals = {}
    out = []
    age = age_on(d.patient["dob"], d.date)

    def res(key, **kw):
        r = make_result(rng, d, key, panel=heading, **kw)
        vals[key] = r
        return r

    for key in keys:
        if key in vals:
            continue
        a = C.ANALYTES[key]
        kw = {}
        if key in ("hct",) and "hgb" in vals and isinstance(vals["hgb"]["value"], (int, float)):
            kw["value"] = vals["hgb"]["value"] * 2.95 + rng.gauss(0, 0.7)
        elif key == "mchc" and "hgb" in vals and "hct" in vals:
            kw["value"] = vals["hgb"]["value"] / vals["hct"]["value"] * 100
        elif key.endswith("_pct") and key[:-4] in ("neut", "lymph", "mono", "eos", "baso"):
            if "_diff" not in vals:
                raw = {"neut": rng.uniform(42, 74), "lymph": rng.uniform(16, 42), "mono": rng.uniform(4, 11),
                       "eos": rng.uniform(0.5, 5.5), "baso": rng.uniform(0.2, 1.4)}
                if rng.random() < 0.25:
                    raw[rng.choice(["neut", "lymph", "eos"])] *= rng.uniform(1.4, 1.9)
                tot = sum(raw.values())
                vals["_diff"] = {k: v * 100 / tot for k, v in raw.items()}
            kw["value"] = vals["_diff"][key[:-4]]
        elif (key.endswith("_abs") or key.endswith("_abs_si")) and key.split("_")[0] in ("neut", "lymph", "mono", "eos",
                                                                                          "baso"):
            base = key.split("_")[0]
            wbc = vals.get("wbc") or vals.get("wbc_si")
            if "_diff" not in vals:
                raw = {"neut": rng.uniform(45, 72), "lymph": rng.uniform(18, 40), "mono": rng.uniform(4, 10),
                       "eos": rng.uniform(0.5, 5), "baso": rng.uniform(0.2, 1.2)}
                tot = sum(raw.values())
                vals["_diff"] = {k: v * 100 / tot for k, v in raw.items()}
            w = wbc["value"] if wbc and isinstance(wbc["value"], (int, float)) else rng.uniform(5, 9)
            kw["value"] = w * vals["_diff"][base] / 100
        elif key == "tsat" and "iron" in vals and "tibc" in vals:
            kw["value"] = vals["iron"]["value"] / vals["tibc"]["value"] * 100
        elif key == "globulin" and "protein" in vals and "albumin" in vals:
            kw["value"] = vals["protein"]["value"] - vals["albumin"]["value"]
        elif key == "ldl" and {"chol", "hdl", "tg"} <= set(vals) and all(
                isinstance(vals[k]["value"], (int, float)) for k in ("chol", "hdl", "tg")):
            v = vals["chol"]["value"] - vals["hdl"]["value"] - vals["tg"]["value"] / 5
            kw["value"] = max(v, 38 + rng.random() * 10)
        elif key == "nonhdl" and "chol" in vals and "hdl" in vals:
            kw["value"] = vals["chol"]["value"] - vals["hdl"]["value"]
        elif key == "ldl_si" and {"chol_si", "hdl_si", "tg_si"} <= set(vals):
            v = vals["chol_si"]["value"] - vals["hdl_si"]["value"] - vals["tg_si"]["value"] / 2.2
            kw["value"] = max(v, 1.1 + rng.random() * 0.4)
        elif key == "a1c_ifcc" and "a1c" in vals:
            kw["value"] = (vals["a1c"]["value"] - 2.15) * 10.929
        elif key == "a1c" and "a1c_ifcc" in vals:
            kw["value"] = vals["a1c_ifcc"]["value"] / 10.929 + 2.15
        elif key == "egfr" and ("creatinine" in vals or "creatinine_si" in vals):
            cr = vals.get("creatinine") or vals.get("creatinine_si")
            scr = cr["value"] if "creatinine" in vals else cr["value"] / 88.4
            e = egfr_2021(scr, age, d.sex)
            if e >= 60 and rng.random() < 0.35:
                kw["comp"] = ">60" if e < 90 or rng.random() < 0.5 else ">90"
            else:
                kw["value"] = min(e, 125)
        elif key == "pt" and "inr" in vals:
            kw["value"] = vals["inr"]["value"] * rng.uniform(10.6, 11.6)
        elif key == "inr" and getattr(d, "on_warfarin", False) and "pt" not in vals:
            kw["value"] = rng.uniform(1.7, 3.6)
        if key == "pt" and "value" not in kw:
            # PT before INR in the panel order: derive INR afterwards from PT
            ref = d.ref_cache.setdefault("pt", rng.choice(a.refs))
            lo, hi = ref_bounds(ref)
            kw["value"] = rng.uniform(lo + 0.15 * (hi - lo), hi - 0.15 * (hi - lo))
            if getattr(d, "on_warfarin", False):
                kw["value"] = (lo + hi) / 2 * rng.uniform(1.7, 3.4)
        if key == "inr" and "pt" in vals and "value" not in kw:
            ref = d.ref_cache.get("pt")
            lo, hi = ref_bounds(ref)
            kw["value"] = vals["pt"]["value"] / ((lo + hi) / 2)
        out.append(res(key, **kw))
    return heading, out


# ---------------------------------------------------------------------------
# diagnoses and mentions
# ---------------------------------------------------------------------------

def exclusive_ok(codes, c):
    for grp in C.EXCLUSIVE:
        if c in grp and any(x in grp for x in codes):
            return False
    return True


def pick_conditions(rng, d, n, pool):
    codes = []
    tries = 0
    while len(codes) < n and tries < 200:
        tries += 1
        c = rng.choice(pool)
        if c in codes or not exclusive_ok(codes, c) or (c in C.MALE_ONLY and d.sex != "male"):
            continue
        codes.append(c)
    return codes


def condition_entries(rng, d, codes):
    """-> list of dicts {code, text (as printed), printed (line text), code_printed, extra}"""
    s = d.style
    out = []
    for c in codes:
        desc, shorts = C.CONDITIONS[c]
        style = s.dx_style
        if style == "table" and d.layout not in ("grid", "landscape", "float", "logoband", "leader", "sidepanel"):
            style = "official_paren"
        short = rng.choice(shorts)
        if style in ("short", "short_code"):
            text = short
        else:
            text = desc
        code_printed = style not in ("short", "official")
        if style == "official_paren":
            line = f"{text} ({c})"
        elif style == "code_prefix":
            line = f"{c} - {text}"
        elif style == "bracket":
            line = f"{text} [ICD-10: {c}]"
        elif style == "short":
            line = text
        elif style == "short_code":
            line = f"{text} - {c}"
        elif style == "dx_code_end":
            line = f"{text} .......... {c}"
        elif style == "table":
            line = text
        else:
            line = text
        e = {"code": c, "text": text, "line": line, "code_printed": code_printed, "style": style}
        out.append(e)
        if c == "E66.9" and code_printed and style != "table" and 30 <= d.bmi < 40:
            z = f"Z68.{int(d.bmi)}"
            e["bmi_code"] = z
            e["line"] = line + f"; BMI {d.bmi:.1f} ({z})"
    return out


def make_mentions(rng, d, n_neg, fam=0, hypo=0, hist=0, ruled=0):
    """Negated / family-history / hypothetical / historical mentions, avoiding the categories of the document's
    diagnoses.  -> (list of truth mentions, dict of sentences by section)"""
    cats = {c[:3] for c in d.cond_codes}
    used = set()
    mentions, sent = [], {"hpi": [], "course": [], "fhx": [], "plan": [], "pmh": [], "nohx": []}

    def ok(code, also=()):
        cs = {code[:3]} | {a[:3] for a in also}
        if cs & cats or cs & used:
            return False
        used.update(cs)
        return True

    syms = [x for x in C.SYMPTOMS]
    rng.shuffle(syms)
    denied = []
    for text, code, also in syms:
        if len(denied) >= n_neg:
            break
        if ok(code, also):
            denied.append((text, code, also))
    if denied:
        for text, code, also in denied:
            m = {"text": text, "icd10cm": code, "kind": "negated"}
            if also:
                m["also"] = list(also)
            mentions.append(m)
        words = [x[0] for x in denied]
        style = rng.randrange(4)
        if len(words) == 1:
            joined = words[0]
        elif len(words) == 2:
            joined = f"{words[0]} or {words[1]}"
        else:
            joined = ", ".join(words[:-1]) + (", or " if style != 2 else " or ") + words[-1]
        sent["hpi"].append({0: f"Denies {joined}.", 1: f"Patient denies {joined}.", 2: f"No {joined}.",
                            3: f"Negative for {joined}."}[style])
    ro = list(C.RULED_OUT)
    rng.shuffle(ro)
    k = 0
    for tmpl, text, code, also in ro:
        if k >= ruled:
            break
        if ok(code, also):
            m = {"text": text, "icd10cm": code, "kind": "negated"}
            if also:
                m["also"] = list(also)
            mentions.append(m)
            sent["course"].append(tmpl.replace("{x}", text))
            k += 1
    if rng.random() < 0.35 and len(mentions) < n_neg + ruled + 1:
        nh = list(C.NO_HISTORY)
        rng.shuffle(nh)
        for text, code, also in nh:
            if ok(code, also):
                m = {"text": text, "icd10cm": code, "kind": "negated"}
                if also:
                    m["also"] = list(also)
                mentions.append(m)
                sent["nohx"].append(f"No history of {text}.")
                break
    fams = list(C.FAMILY)
    rng.shuffle(fams)
    rel_forms = [("mother had {x}", "mother"), ("father with {x}", "father"), ("sister with {x}", "sister"),
                 ("brother had {x}", "brother"), ("maternal grandmother with {x}", "grandmother")]
    fparts = []
    for text, code in fams:
        if len(fparts) >= fam:
            break
        if ok(code):
            rel = rng.choice(rel_forms)[0]
            if text == "MI":
                part = rng.choice(["father MI at 55", "father had an MI at 58", "mother MI at 62"])
            else:
                part = rel.replace("{x}", text)
            fparts.append(part)
            mentions.append({"text": text, "icd10cm": code, "kind": "family_history"})
    if fparts:
        sent["fhx"].append(rng.choice(["Family history: ", "FHx: ", "Family hx: "]) + "; ".join(fparts) + ".")
    hyps = list(C.HYPOTHETICAL)
    rng.shuffle(hyps)
    k = 0
    for sentence, text, code in hyps:
        if k >= hypo:
            break
        if ok(code):
            mentions.append({"text": text, "icd10cm": code, "kind": "hypothetical"})
            sent["plan"].append(sentence)
            k += 1
    hs = list(C.HISTORICAL)
    rng.shuffle(hs)
    k = 0
    for sentence, text, code in hs:
        if k >= hist:
            break
        if ok(code):
            mentions.append({"text": text, "icd10cm": code, "kind": "historical"})
            sent["pmh"].append(sentence)
            k += 1
    return mentions, sent


# ---------------------------------------------------------------------------
# medications
# ---------------------------------------------------------------------------

def med_entry(rng, d, key, sig_style=None):
    m = C.M[key]
    s = d.style
    strength = rng.choice(m["strengths"])
    long_sig, short_sig = rng.choice(m["sigs"])
    sig = long_sig if (sig_style or s.sig_style) == "long" else short_sig
    if key == "cholecalciferol" and strength == "50,000 units":
        sig = "Take 1 capsule by mouth once weekly" if sig == long_sig else "1 cap PO q week"
    if key == "semaglutide":
        sig = f"Inject {strength} under the skin once weekly" if sig == long_sig else f"{strength} subcut once weekly"
    style = s.med_name_style
    brand = m["brand"]
    if not brand:
        style = "generic"
    printed_generic = m["printed"]
    if style == "brand_generic":
        label = f"{brand} ({printed_generic})"
    elif style == "generic_brand":
        label = f"{printed_generic} ({brand})"
    elif style == "brand_only":
        label = brand
    else:
        label = printed_generic
    e = {"name": m["name"], "strength": strength, "sig": sig, "form": m["form"], "label": label, "key": key,
         "cls": m["cls"]}
    if style != "generic":
        e["brand"] = brand
    return e


def pick_meds(rng, d, codes, n, extra_pool=()):
    keys = []
    for c in codes:
        opts = [k for k in C.FOR_CONDITION.get(c, []) if k not in keys]
        if opts:
            keys.append(rng.choice(opts))
    pool = list(extra_pool) or ["aspirin", "cholecalciferol", "acetaminophen", "omeprazole", "fluticasone_nasal",
                                "cyanocobalamin", "trazodone"]
    rng.shuffle(pool)
    for k in pool:
        if len(keys) >= n:
            break
        if k not in keys:
            keys.append(k)
    # one entry per ingredient
    seen, out = set(), []
    for k in keys[:max(n, 1)]:
        nm = C.M[k]["name"]
        if nm in seen:
            continue
        seen.add(nm)
        out.append(med_entry(rng, d, k))
    return out


# ---------------------------------------------------------------------------
# the document
# ---------------------------------------------------------------------------

def build(rng, split, spec):
    form = spec["form"]
    layout = spec["layout"]
    d = Doc(id=spec["id"], form=form, doc_type=FORMS[form], layout=layout, font=spec["font"], level=spec["level"],
            pages=spec.get("pages", 1), intl=(layout == "intl"), ref_cache={}, name_cache={})
    d.sex = rng.choice(["female", "male"])
    given = rng.choice(C.GIVEN_F if d.sex == "female" else C.GIVEN_M)
    family = rng.choice(C.FAMILY_NAMES)
    middle = rng.choice("ABCDEFGHJKLMNPRSTVW") if rng.random() < 0.55 else None
    d.date = rand_date(rng)
    dob = dt.date(d.date.year - rng.randrange(24, 89), rng.randrange(1, 13), rng.randrange(1, 29))
    d.style = make_style(rng, split, d)
    s = d.style
    if s.date_fmt in V.DAY_FIRST_NUMERIC and dob.day <= 12:
        # a day-first numeric date is only readable when some day is > 12: make the birth date one
        dob = dob.replace(day=rng.randrange(13, 29))
    d.patient = {"given": given, "middle": middle, "family": family, "dob": dob, "mrn": make_mrn(rng)}
    if s.name_fmt in ("Last, First", "LAST First", "Last First"):
        middle_printed = None
    else:
        middle_printed = middle
    d.patient["middle_printed"] = middle_printed
    d.patient["name_as_printed"] = name_printed(s.name_fmt, given, middle_printed, family)
    d.provider = make_provider(rng, d.intl)
    d.provider["as_printed"] = prov_printed(s.prov_style, d.provider)
    d.hand = []
    d.hand_style = None
    if spec.get("hand"):
        d.hand_style = rng.choice(["script", "caps"])
        fields = ["name", "dob", "mrn", "provider", "date"]
        rng.shuffle(fields)
        d.hand = sorted(fields[:rng.randrange(1, 4)])
        if d.hand_style == "caps":
            if "name" in d.hand:
                d.patient["name_as_printed"] = d.patient["name_as_printed"].upper()
            if "provider" in d.hand:
                d.provider["as_printed"] = d.provider["as_printed"].upper()
    d.bmi = round(rng.uniform(19.5, 39.5), 1)
    d.vitals = vitals(rng, d)
    d.cond_codes = []
    d.conditions, d.mentions, d.sent = [], [], {}
    d.labs, d.panels, d.meds, d.meds_stopped, d.allergies = [], [], [], [], []
    d.lab = None
    d.prev = None
    d.on_warfarin = False
    d.accession = f"{rng.choice('ABCDEFGHKLMNPRSTWXZ')}{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}-" \
                  f"{rng.randrange(10, 99)}"
    d.account = f"{rng.randrange(100000000, 999999999)}"
    d.phone = phone(rng, d.intl)
    d.fax = phone(rng, d.intl)
    if form in ("lab", "lab_letter", "cumulative"):
        build_lab(rng, d, split, spec)
    elif form in ("visit", "visit_letter"):
        build_visit(rng, d, spec)
    elif form == "medlist":
        build_medlist(rng, d, spec)
    else:
        build_discharge(rng, d, spec)
    d.org_address = address(rng, d.intl)
    d.printed_dates = {}
    return d


def vitals(rng, d):
    sbp, dbp = rng.randrange(104, 162), rng.randrange(60, 96)
    wt_lb = rng.randrange(108, 262)
    return {"BP": f"{sbp}/{dbp} mmHg", "HR": f"{rng.randrange(56, 102)} bpm", "Temp": f"{rng.uniform(97.2, 99.1):.1f} F",
            "RR": f"{rng.randrange(12, 20)}", "SpO2": f"{rng.randrange(93, 100)}%", "Wt": f"{wt_lb} lb",
            "BMI": f"{d.bmi:.1f}"}


def dfmt(d, date, birth=False):
    return V.fmt_date(date, d.style.date_fmt, birth=birth)


def tfmt(d, h, m):
    return V.fmt_time(h, m, d.style.time_style)


def build_lab(rng, d, split, spec):
    form = d.form
    d.org = rng.choice(C.INTL_LAB_ORGS if d.intl else C.LAB_ORGS)
    d.lab = d.org
    d.clinic = rng.choice(C.CLINICS)
    d.collected = d.date
    d.coll_time = (rng.randrange(6, 16), rng.randrange(0, 60))
    d.received = d.date + dt.timedelta(days=rng.choice([0, 0, 1]))
    d.reported = d.received + dt.timedelta(days=rng.choice([0, 1, 1, 2, 3]))
    d.rep_time = (rng.randrange(8, 20), rng.randrange(0, 60))
    d.director = make_provider(rng, d.intl, avoid=[d.provider["family"]])
    d.date_kind = "collection"
    if form == "cumulative":
        build_cumulative(rng, d)
        return
    budget = spec.get("budget", 26 if d.layout != "landscape" else 18)
    if d.pages > 1:
        budget = 30 * d.pages
        spec = dict(spec, max_panels=8)
    pool = C.SI_PANELS if d.intl else C.US_PANELS
    pool = list(pool)
    rng.shuffle(pool)
    if d.sex == "female":
        pool = [p for p in pool if p != "psa"]
    chosen, total = [], 0
    first = spec.get("first_panel")
    if first:
        pool.remove(first) if first in pool else None
        pool.insert(0, first)
    for pk in pool:
        n = len(C.PANELS[pk][1])
        if total + n > budget:
            continue
        if pk in ("cbc", "cbc_nodiff") and any(p in ("cbc", "cbc_nodiff") for p in chosen):
            continue
        if pk in ("cmp", "bmp", "renal", "lytes") and any(p in ("cmp", "bmp", "renal", "lytes") for p in chosen):
            continue
        if pk in ("hepatic",) and "cmp" in chosen or pk == "cmp" and "hepatic" in chosen:
            continue
        if pk in ("cardiac", "cardiac_hs") and any(p in ("cardiac", "cardiac_hs") for p in chosen):
            continue
        if pk in ("enzymes", "cardiac", "cardiac_hs") and any(p in ("enzymes", "cardiac", "cardiac_hs") for p in chosen):
            continue
        if pk in ("gout", "minerals") and any(p in ("gout", "minerals") for p in chosen):
            continue
        chosen.append(pk)
        total += n
        if len(chosen) >= spec.get("max_panels", 4):
            break
    if "coag" in chosen and rng.random() < 0.5:
        d.on_warfarin = True
    seen_keys = set()
    for pk in chosen:
        heading, res = panel_results(rng, d, pk, with_optional=rng.random() < 0.4)
        res = [r for r in res if r["_key"] not in seen_keys]
        seen_keys.update(r["_key"] for r in res)
        # one LOINC per document: the same analyte in two panels is printed once
        d.panels.append((heading, res))
        d.labs.extend(res)
    d.panel_keys = chosen
    # diagnosis codes printed on the requisition part of the report
    if rng.random() < 0.45 and form != "lab_letter" or form == "lab_letter" and rng.random() < 0.3:
        codes = pick_conditions(rng, d, rng.randrange(1, 3), C.CHRONIC)
        d.cond_codes = codes
        d.conditions = []
        for c in codes:
            desc = C.CONDITIONS[c][0]
            d.conditions.append({"code": c, "text": desc, "line": f"{c} {desc}", "code_printed": True, "style": "req"})
    # a previous result column (international layout), not results of this report
    if form == "lab" and (d.intl and rng.random() < 0.8 or
                          d.layout in ("grid", "float", "landscape") and rng.random() < 0.5):
        pdate = d.date - dt.timedelta(days=rng.randrange(60, 400))
        prev = {}
        for r in d.labs:
            a = C.ANALYTES[r["_key"]]
            if a.qual:
                prev[id(r)] = a.qual[0] if rng.random() < 0.8 else rng.choice(a.qual[1])
            elif rng.random() < 0.88:
                v = sample_value(rng, a, r["_ref"], "normal" if rng.random() < 0.7 else
                                 ("high" if a.high else "normal"))
                prev[id(r)] = fmt_num(round(v, a.dec), a.dec)
        d.prev = (pdate, prev)
    if form == "lab_letter":
        d.letter_date = d.reported + dt.timedelta(days=rng.randrange(0, 4))
        d.greeting = ("Ms." if d.sex == "female" else "Mr.") + " " + d.patient["family"]


def build_cumulative(rng, d):
    title, keys = rng.choice(C.CUMULATIVE_SETS)
    if not d.intl:
        keys = [k for k in keys if not C.ANALYTES[k].si]
        if len(keys) < 2:
            keys = ["creatinine", "egfr", "potassium", "hgb"]
    n_dates = rng.randrange(3, 6)
    dates = [d.date]
    for _ in range(n_dates - 1):
        dates.append(dates[-1] - dt.timedelta(days=rng.randrange(21, 120)))
    d.cum_title = title
    d.cum_dates = dates            # newest first
    d.cum_newest_first = rng.random() < 0.6
    if "inr" in keys:
        d.on_warfarin = True
    d.cum_rows = []
    for key in keys:
        a = C.ANALYTES[key]
        row = {"key": key, "cells": {}}
        trend = rng.choice(["flat", "up", "down"])
        base_status = wchoice(rng, [("normal", 0.6), ("high", 0.3 if a.high else 0), ("low", 0.1 if a.low else 0)])
        first = None
        for i, dd in enumerate(dates):
            if i > 0 and rng.random() < 0.15:
                continue     # not measured on that date (the newest column is always complete)
            if key == "inr":
                v = rng.uniform(1.6, 3.4)
            else:
                r0 = d.ref_cache.get(key)
                ref = r0 or rng.choice(a.refs)
                if isinstance(ref, dict):
                    ref = ref[d.sex]
                d.ref_cache.setdefault(key, ref)
                if first is None:
                    first = sample_value(rng, a, d.ref_cache[key], base_status)
                drift = {"flat": 0.0, "up": -0.07, "down": 0.07}[trend] * i
                v = first * (1 + drift + rng.gauss(0, 0.04))
            r = make_result(rng, d, key, value=v, date=dd)
            row["cells"][dd] = r
            d.labs.append(r)
        d.cum_rows.append(row)
    rows = {r["key"]: r for r in d.cum_rows}
    # eGFR follows creatinine when both are printed
    ck = "creatinine" if "creatinine" in rows else ("creatinine_si" if "creatinine_si" in rows else None)
    if ck and "egfr" in rows:
        age = age_on(d.patient["dob"], d.date)
        for dd, r in list(rows["egfr"]["cells"].items()):
            cr = rows[ck]["cells"].get(dd)
            if cr is None:
                continue
            scr = cr["value"] if ck == "creatinine" else cr["value"] / 88.4
            e = min(egfr_2021(scr, age, d.sex), 125)
            new = make_result(rng, d, "egfr", value=e, date=dd) if e < 60 or rng.random() < 0.5 else \
                make_result(rng, d, "egfr", comp=">60", date=dd)
            d.labs[d.labs.index(r)] = new
            rows["egfr"]["cells"][dd] = new
    # PT follows INR when both are printed
    if "pt" in rows and "inr" in rows:
        lo, hi = ref_bounds(d.ref_cache["pt"])
        for dd, r in list(rows["pt"]["cells"].items()):
            inr = rows["inr"]["cells"].get(dd)
            if inr is None:
                continue
            new = make_result(rng, d, "pt", value=inr["value"] * (lo + hi) / 2 * rng.uniform(0.97, 1.03), date=dd)
            d.labs[d.labs.index(r)] = new
            rows["pt"]["cells"][dd] = new
    d.panels = [(title, d.labs)]


def build_visit(rng, d, spec):
    d.org = rng.choice(C.CLINICS)
    d.date_kind = "visit"
    n = rng.randrange(2, 6)
    pool = C.CHRONIC + (C.VISIT_ACUTE if rng.random() < 0.4 else [])
    codes = pick_conditions(rng, d, n, pool)
    if rng.random() < 0.35 and not any(c in C.VISIT_ACUTE for c in codes):
        codes = pick_conditions(rng, d, n + 1, C.VISIT_ACUTE)[:1] + codes
        codes = list(dict.fromkeys(codes))
    d.cond_codes = codes
    if "E66.9" in codes:
        d.bmi = round(rng.uniform(30.2, 39.6), 1)
        d.vitals = vitals(rng, d)
    d.conditions = condition_entries(rng, d, codes)
    if any(e.get("bmi_code") for e in d.conditions):
        for e in d.conditions:
            if e.get("bmi_code"):
                d.cond_codes.append(e["bmi_code"])
    d.mentions, d.sent = make_mentions(rng, d, n_neg=rng.randrange(1, 4), fam=rng.choice([0, 1, 1, 2]),
                                       hypo=rng.choice([0, 1]), hist=rng.choice([0, 0, 1]),
                                       ruled=rng.choice([0, 0, 1]))
    d.meds = pick_meds(rng, d, codes, rng.randrange(2, 7))
    if rng.random() < 0.35:
        stop_pool = [k for k in ("simvastatin", "meloxicam", "omeprazole", "hctz", "gabapentin", "glipizide",
                                 "metoprolol_t", "cyclobenzaprine") if C.M[k]["name"] not in {m["name"] for m in d.meds}]
        d.meds_stopped = [med_entry(rng, d, rng.choice(stop_pool))]
        d.stop_reason = rng.choice(["side effects", "no longer needed", "switched", "patient preference"])
    d.allergies = allergies(rng)
    d.reason = visit_reason(rng, codes)
    if rng.random() < 0.45:
        pk = rng.choice(["a1c", "lipid", "bmp", "thyroid", "cbc_nodiff"] if not d.intl else ["a1c_si", "ue", "lipid_si",
                                                                                            "tft"])
        heading, res = panel_results(rng, d, pk, with_optional=False)
        res = res[: rng.randrange(2, len(res) + 1)] if len(res) > 2 else res
        for r in res:
            r.pop("panel", None)
        d.labs = res
        d.panels = [(heading, res)]
    if spec["form"] == "visit_letter":
        d.letter_date = d.date + dt.timedelta(days=rng.randrange(1, 9))
        d.greeting = ("Ms." if d.sex == "female" else "Mr.") + " " + d.patient["family"]


def visit_reason(rng, codes):
    names = {"I10": "blood pressure", "E11.9": "diabetes", "E11.65": "diabetes", "E78.5": "cholesterol",
             "J06.9": "cough and congestion for 5 days", "N39.0": "burning with urination",
             "M25.561": "right knee pain", "J02.9": "sore throat for 3 days", "E86.0": "lightheadedness after a GI illness"}
    for c in codes:
        if c in ("J06.9", "N39.0", "M25.561", "J02.9", "E86.0"):
            return names[c]
    return rng.choice(["3-month follow-up", "follow-up of chronic conditions", "annual wellness visit",
                       "medication review", "lab review and follow-up", "6-month follow-up"])


def allergies(rng):
    if rng.random() < 0.3:
        return [rng.choice(["NKDA", "No known drug allergies", "NKA"])]
    a = list(C.ALLERGIES)
    rng.shuffle(a)
    return a[: rng.randrange(1, 3)]


def build_medlist(rng, d, spec):
    d.org = rng.choice(C.CLINICS)
    d.date_kind = "reviewed"
    codes = pick_conditions(rng, d, rng.randrange(3, 6), C.CHRONIC)
    d.med_codes = codes
    d.meds = pick_meds(rng, d, codes, rng.randrange(5, 10),
                       extra_pool=["aspirin", "cholecalciferol", "acetaminophen", "albuterol", "ondansetron",
                                   "cyclobenzaprine", "trazodone", "fluticasone_nasal", "cyanocobalamin"])
    if rng.random() < 0.3:
        d.meds.append(med_entry(rng, d, "prednisone_taper"))
    names = {m["name"] for m in d.meds}
    stop_pool = [k for k in ("simvastatin", "meloxicam", "omeprazole", "hctz", "gabapentin", "glipizide", "metoprolol_t",
                             "cyclobenzaprine", "buspirone", "montelukast", "doxycycline", "allopurinol")
                 if C.M[k]["name"] not in names]
    rng.shuffle(stop_pool)
    d.meds_stopped = []
    for k in stop_pool[: rng.randrange(1, 4)]:
        if C.M[k]["name"] not in {m["name"] for m in d.meds_stopped}:
            e = med_entry(rng, d, k)
            e["stop_date"] = d.date - dt.timedelta(days=rng.randrange(5, 200))
            e["reason"] = rng.choice(["side effects", "completed course", "switched therapy", "no longer indicated",
                                      "per cardiology", "cost"])
            d.meds_stopped.append(e)
    d.allergies = allergies(rng)
    d.pharmacy = rng.choice(C.PHARMACIES)
    if rng.random() < 0.4:
        # an "active problems" section: these are the document's diagnoses
        d.cond_codes = list(codes)
        d.conditions = condition_entries(rng, d, codes)


COURSE_FILLER = [
    "Physical therapy evaluated the patient and cleared discharge home with a walker.",
    "Diet was advanced as tolerated and oral intake was adequate by hospital day 2.",
    "Case management arranged home health nursing visits twice weekly.",
    "Pain was controlled with oral medication; the patient slept well on the last two nights.",
    "Medication reconciliation was completed with the patient and a family member at the bedside.",
    "Education was provided on warning signs and on the medication schedule, with teach-back.",
]


def build_discharge(rng, d, spec):
    d.org = rng.choice(C.INTL_HOSPITALS if d.intl else C.HOSPITALS)
    d.date_kind = "discharge"
    los = rng.randrange(2, 8)
    d.admit = d.date - dt.timedelta(days=los)
    principal = rng.choice(C.ADMISSION)
    codes = [principal] + pick_conditions(rng, d, rng.randrange(2, 5), [c for c in C.CHRONIC if exclusive_ok([principal], c)])
    codes = list(dict.fromkeys(codes))
    d.cond_codes = codes
    d.conditions = condition_entries(rng, d, codes)
    d.mentions, d.sent = make_mentions(rng, d, n_neg=rng.randrange(1, 3), fam=0, hypo=rng.choice([0, 1, 1]),
                                       hist=rng.choice([0, 1]), ruled=rng.randrange(1, 4))
    cont = pick_meds(rng, d, codes[1:], rng.randrange(2, 5))
    new = []
    for k in C.FOR_CONDITION.get(principal, [])[:2]:
        if C.M[k]["name"] not in {m["name"] for m in cont + new}:
            new.append(med_entry(rng, d, k))
    for m in new:
        m["section"] = "new"
    for m in cont:
        m["section"] = "continue"
    d.meds = new + cont
    names = {m["name"] for m in d.meds}
    stop_pool = [k for k in ("meloxicam", "hctz", "glipizide", "metformin", "simvastatin", "gabapentin")
                 if C.M[k]["name"] not in names]
    d.meds_stopped = [med_entry(rng, d, k) for k in stop_pool[: rng.choice([0, 1, 1, 2])]]
    d.allergies = allergies(rng)
    d.pcp = make_provider(rng, d.intl, avoid=[d.provider["family"]])
    pk = rng.choice(["bmp", "cbc_nodiff", "lytes"] if not d.intl else ["ue", "fbc"])
    heading, res = panel_results(rng, d, pk, with_optional=False)
    for r in res:
        r.pop("panel", None)
    extra = []
    if (rng.random() < 0.5 or d.pages > 1) and not d.intl:
        _, extra = panel_results(rng, d, "cbc_nodiff" if pk != "cbc_nodiff" else "lytes", with_optional=False)
        extra = [r for r in extra[:4] if r["_key"] not in {x["_key"] for x in res}]
        for r in extra:
            r.pop("panel", None)
    d.labs = res + extra
    d.panels = [(heading, d.labs)]
    pt = C.CONDITIONS[principal][1][0] if rng.random() < 0.5 else C.CONDITIONS[principal][0]
    d.principal_text = pt[0].lower() + pt[1:] if len(pt) > 1 and pt[1].islower() else pt
    if d.pages > 1:
        d.course_extra = rng.sample(COURSE_FILLER, 3)
    d.room = f"{rng.randrange(2, 9)}{rng.randrange(10, 60)}-{rng.choice('AB')}"
