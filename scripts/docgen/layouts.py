"""Layout families: how a document's content is placed on the page(s).

float      single column, free-floating tables (no rules), "Label: value" header in two columns
grid       full grid tables with shaded header rows; the patient header is a label/value grid;
           diagnoses may be a table with an ICD-10 column
sidepanel  two columns: a shaded side panel (left or right) beside the main column
intl       international hospital style: A4, centred header, labels without colons, day-month dates,
           SI units, zebra tables, a previous-result column with its own date
letter     letter to the patient: letterhead, address block, RE: line, results in sentences
landscape  landscape page, wide result table (collection date / status / site columns), header in 4 columns
printout   legacy lab-system printout: narrow centred column, upper case, dashed rules, right-aligned values
logoband   coloured logo band across the top, boxed header below it, results split across two tables
leader     (holdout only) boxed sections, results as dot-leader lines
"""
from __future__ import annotations

import datetime as dt

from . import catalog as C
from . import content as K
from .canvas import BLUE_INK, GREY, INK, Canvas, Overflow, table

FAMILIES = ["float", "grid", "sidepanel", "intl", "letter", "landscape", "printout", "logoband", "leader"]
# layouts allowed per document form
ALLOWED = {
    "lab": ["float", "grid", "sidepanel", "intl", "landscape", "printout", "logoband", "leader"],
    "lab_letter": ["letter"],
    "cumulative": ["landscape", "grid", "intl", "float", "logoband", "leader"],
    "visit": ["float", "grid", "sidepanel", "intl", "logoband", "leader"],
    "visit_letter": ["letter"],
    "medlist": ["float", "grid", "sidepanel", "landscape", "logoband", "leader", "intl"],
    "discharge": ["float", "grid", "sidepanel", "intl", "logoband", "leader"],
}
# layouts that can run over several pages (multi-page PDFs)
MULTIPAGE = {"float", "grid", "intl", "logoband", "printout", "leader"}

ACCENTS = [(23, 74, 128), (19, 105, 92), (122, 32, 48), (70, 52, 120), (40, 90, 40), (150, 80, 20)]
SHADE = (222, 224, 228)
ZEBRA = (238, 240, 243)


def page_of(layout):
    return {"intl": "a4", "landscape": "landscape"}.get(layout, "letter")


class R:
    """Renders one document."""

    def __init__(self, d, rng, dpi, base_pt):
        self.d, self.rng, self.dpi, self.base = d, rng, dpi, base_pt
        self.s = d.style
        self.L = d.layout
        self.accent = rng.choice(ACCENTS)
        self.logo_kind = rng.randrange(4)
        self.pages = []
        self.features = set()       # recorded in the truth's render entry
        self.forced_breaks = False
        self.page_items = {}        # id(item) -> page number
        self.max_pages = d.pages
        self.opts = dict(
            side_left=rng.random() < 0.4,
            split_tables=rng.random() < 0.6,
            prev_label=rng.choice(["Prior Result", "Last Result", "Previous"]),
            table_cols=rng.choice(["std", "std", "glued_or_std", "combo", "ref_units"]),
            title_right=rng.random() < 0.5,
            bold_abn=rng.random() < 0.6,
            dx_numbered=rng.random() < 0.7,
            meds_table=rng.random() < 0.55,
            sentence_style=rng.randrange(3),
            age_after_dob=rng.random() < 0.35,
            show_time=rng.random() < 0.6,
            accession_label=rng.choice(["Accession #", "Lab No.", "Specimen ID", "Accession", "Req #"]),
            account_label=rng.choice(["Acct #", "Account No.", "Encounter #", "Visit #"]),
            show_account=rng.random() < 0.5,
            upper_headings=rng.random() < 0.6,
            prn_section=rng.random() < 0.5,
        )

    # -----------------------------------------------------------------------------------
    # formatting helpers
    # -----------------------------------------------------------------------------------
    def date(self, x, birth=False):
        return K.dfmt(self.d, x, birth)

    def lab(self, label):
        if self.L == "printout":
            label = label.upper()
        if self.s.colon and not label.endswith(":") and self.L not in ("grid",):
            return label + ":"
        return label

    def heading_text(self, t):
        return t.upper() if (self.opts["upper_headings"] or self.L in ("printout", "intl")) else t

    def flag_parts(self, r, glued_only=False):
        """-> (value cell text, flag column text)"""
        f = r["flag"]
        st = self.s.flag_style
        if glued_only and st.startswith("col_"):
            st = {"col_HL": "glued_HL", "col_HIGHLOW": "glued_HL", "col_arrow": "glued_arrow",
                  "col_paren": "glued_paren", "col_star_word": "glued_star"}[st]
        v = r["value_text"]
        if not f:
            return v, ""
        word = {"H": ("H", "HIGH", "\u2191", "(H)", "*High"), "L": ("L", "LOW", "\u2193", "(L)", "*Low"),
                "A": ("A", "ABNORMAL", "A", "(A)", "*Abn")}[f]
        if st == "col_HL":
            return v, word[0]
        if st == "col_HIGHLOW":
            return v, word[1]
        if st == "col_arrow":
            return v, word[2]
        if st == "col_paren":
            return v, word[3]
        if st == "col_star_word":
            return v, word[4]
        if st == "glued_HL":
            return f"{v} {word[0]}", ""
        if st == "glued_star":
            return f"{v} *{word[0]}", ""
        if st == "glued_paren":
            return f"{v} {word[3]}", ""
        if st == "glued_arrow":
            return f"{v} {word[2]}", ""
        return v, word[0]

    def glued(self):
        return self.s.flag_style.startswith("glued")

    def reg(self, items, page=None):
        for it in items:
            self.page_items[id(it)] = page or len(self.pages)

    # -----------------------------------------------------------------------------------
    # pages
    # -----------------------------------------------------------------------------------
    def new_page(self):
        margins = {"printout": (0.9, 0.6, 0.9, 0.8), "landscape": (0.55, 0.5, 0.55, 0.75),
                   "intl": (0.7, 0.6, 0.7, 0.8)}.get(self.L, (0.6, 0.55, 0.6, 0.8))
        cv = Canvas(page_of(self.L), self.dpi, self.d.font, self.base, self.rng, margins)
        if self.L == "printout":
            w = cv.px(6.0)
            cv.left = (cv.W - w) // 2
            cv.right = cv.left + w
        self.pages.append(cv)
        return cv

    def finish_pages(self):
        n = len(self.pages)
        for i, cv in enumerate(self.pages, 1):
            d = self.d
            left = {"lab_report": f"Lab Director: Dr. {d.director['given']} {d.director['family']}"
                    if getattr(d, "director", None) else d.org}.get(d.doc_type, d.org)
            if d.form == "cumulative" or d.form == "lab_letter":
                left = d.org
            right = {"lab_report": "Printed " + self.date(getattr(d, "reported", d.date)),
                     "visit_summary": "Visit " + self.date(d.date),
                     "discharge_summary": "Discharged " + self.date(d.date),
                     "medication_list": self.date(d.date)}[d.doc_type]
            if i > 1 or n > 1:
                right = f"{d.patient['family'].upper()}, {d.patient['given'][0]}  " + right
            cv.footer(left, f"Page {i} of {n}", right)

    # -----------------------------------------------------------------------------------
    # organisation header
    # -----------------------------------------------------------------------------------
    def title(self):
        d = self.d
        if d.form == "cumulative":
            return self.rng.choice(["CUMULATIVE REPORT", "Cumulative Results", "RESULTS TREND REPORT",
                                    "Cumulative Laboratory Summary"])
        return {"lab_report": ["LABORATORY REPORT", "Patient Report", "FINAL REPORT", "Laboratory Results",
                               "CLINICAL LABORATORY REPORT"],
                "visit_summary": ["Visit Summary", "Office Visit Note", "CLINIC NOTE", "After Visit Summary",
                                  "Progress Note"],
                "medication_list": ["Medication List", "MEDICATION RECONCILIATION", "Current Medications",
                                    "Medication Record"],
                "discharge_summary": ["Discharge Summary", "DISCHARGE INSTRUCTIONS AND SUMMARY",
                                      "Hospital Discharge Summary", "Discharge Summary / Instructions"]}[d.doc_type][
            self.rng.randrange(4)]

    @staticmethod
    def fit(cv, text, size, bold, width, floor=6.5):
        """largest size <= size at which text fits in width"""
        while size > floor and cv.tw(text, cv.font(size, bold)) > width:
            size -= 0.25
        return size

    def org_header(self, cv, y, title):
        d = self.d
        L = self.L
        sub = f"{d.org_address}  \u00b7  Tel {d.phone}  \u00b7  Fax {d.fax}" if not d.intl else \
            f"{d.org_address}  -  Tel {d.phone}"
        W = cv.right - cv.left
        big = self.fit(cv, d.org.upper() if L == "printout" else d.org, self.base * 1.75, True,
                       W - (cv.px(0.8) if L in ("logoband", "sidepanel", "leader") else 0) -
                       (cv.px(2.4) if L in ("float", "grid", "landscape") and self.opts["title_right"] else 0))
        subsz = self.fit(cv, sub, self.base * 0.85, False,
                         W - (cv.px(0.8) if L in ("logoband", "sidepanel", "leader") else 0))
        if L == "logoband":
            h = cv.px(0.95)
            cv.rect(0, 0, cv.W, h, fill=self.accent)
            cv.logo(cv.left, cv.px(0.17), cv.px(0.6), (255, 255, 255), self.logo_kind, inner=self.accent)
            cv.text(cv.left + cv.px(0.8), cv.px(0.2), d.org, size=big, bold=True, fill=(255, 255, 255), log=True)
            cv.text(cv.left + cv.px(0.8), cv.px(0.2) + cv.lh(big, 1.15), sub, size=subsz,
                    fill=(235, 235, 240), log=True)
            y = h + cv.px(0.2)
            cv.text(cv.right, y, title, size=self.base * 1.35, bold=True, align="r", fill=self.accent, log=True)
            return y + cv.lh(self.base * 1.35, 1.5)
        if L in ("intl", "printout"):
            name = d.org.upper() if L == "printout" else d.org
            cv.text(cv.W / 2 if L == "intl" else (cv.left + cv.right) / 2, y, name, size=big * (0.8 if L == "printout"
                                                                                                   else 1), bold=True,
                    align="c", log=True)
            y += cv.lh(big, 1.2)
            cv.text((cv.left + cv.right) / 2, y, sub, size=subsz, fill=GREY, align="c", log=True)
            y += cv.lh(self.base, 1.5)
            if L == "printout":
                cv.hline(cv.left, cv.right, y, 1, INK, (cv.px(0.06), cv.px(0.04)))
                y += cv.px(0.08)
                t = f"*** {title.upper()} ***"
                cv.text((cv.left + cv.right) / 2, y, t, size=self.base * 1.1, bold=True, align="c", log=True)
                y += cv.lh(self.base * 1.1, 1.4)
                cv.hline(cv.left, cv.right, y, 1, INK, (cv.px(0.06), cv.px(0.04)))
                return y + cv.px(0.1)
            cv.hline(cv.left, cv.right, y, 1.5, INK)
            cv.hline(cv.left, cv.right, y + cv.px(0.035), 0.8, INK)
            y += cv.px(0.14)
            cv.text(cv.W / 2, y, title.upper(), size=self.base * 1.25, bold=True, align="c", log=True)
            return y + cv.lh(self.base * 1.25, 1.5)
        if L in ("sidepanel", "leader"):
            s = cv.px(0.55)
            cv.logo(cv.left, y, s, self.accent, self.logo_kind)
            cv.text(cv.left + s + cv.px(0.15), y, d.org, size=big, bold=True, log=True)
            cv.text(cv.left + s + cv.px(0.15), y + cv.lh(big, 1.2), sub, size=subsz, fill=GREY, log=True)
            y += max(s, cv.lh(big, 1.2) + cv.lh(self.base)) + cv.px(0.1)
            cv.text(cv.right, y, title, size=self.base * 1.3, bold=True, align="r", log=True)
            return y + cv.lh(self.base * 1.3, 1.45)
        # float / grid / landscape
        cv.text(cv.left, y, d.org, size=big, bold=True, log=True)
        if self.opts["title_right"]:
            f = cv.font(self.base * 1.25, True)
            w = cv.tw(title, f)
            pad = cv.px(0.06)
            cv.rect(cv.right - w - 2 * pad, y - pad * 0.5, cv.right, y + cv.lh(self.base * 1.25, 1.25), outline=INK)
            cv.text(cv.right - pad, y + pad * 0.3, title, size=self.base * 1.25, bold=True, align="r", log=True)
            y += cv.lh(big, 1.2)
            cv.text(cv.left, y, sub, size=subsz, fill=GREY, log=True)
            return y + cv.lh(self.base, 1.6)
        y += cv.lh(big, 1.2)
        cv.text(cv.left, y, sub, size=subsz, fill=GREY, log=True)
        y += cv.lh(self.base, 1.4)
        cv.hline(cv.left, cv.right, y, 1.2, INK)
        y += cv.px(0.08)
        cv.text(cv.left, y, title.upper() if L == "grid" else title, size=self.base * 1.3, bold=True, log=True)
        return y + cv.lh(self.base * 1.3, 1.45)

    # -----------------------------------------------------------------------------------
    # patient header
    # -----------------------------------------------------------------------------------
    def header_pairs(self):
        d, s = self.d, self.s
        p = d.patient
        dob = self.date(p["dob"], birth=True)
        age = K.age_on(p["dob"], d.date)
        if s.dob_label == "DOB/Age":
            dob_v = f"{dob} / {age}Y"
        elif self.opts["age_after_dob"]:
            dob_v = f"{dob} (Age {age})"
        else:
            dob_v = dob
        sex = {"female": "F", "male": "M"}[d.sex] if self.rng.random() < 0.5 else d.sex.capitalize()
        prov = d.provider["as_printed"]
        pairs = [("name", s.name_label, p["name_as_printed"]), ("dob", s.dob_label, dob_v),
                 ("sex", s.sex_label, sex), ("mrn", s.mrn_label, p["mrn"])]
        t = lambda hm: (" " + K.tfmt(d, *hm)) if self.opts["show_time"] else ""
        if d.doc_type == "lab_report":
            pairs.append(("provider", s.provider_label, prov))
            if d.form == "cumulative":
                pairs.append(("date", s.collected_label + " (latest)" if self.rng.random() < 0.5 else
                              "Most recent collection", self.date(d.date)))
                pairs.append(("reported", s.reported_label, self.date(d.reported) + t(d.rep_time)))
            else:
                pairs.append(("date", s.collected_label, self.date(d.collected) + t(d.coll_time)))
                pairs.append(("received", s.received_label, self.date(d.received)))
                pairs.append(("reported", s.reported_label, self.date(d.reported) + t(d.rep_time)))
            pairs.append(("accession", self.opts["accession_label"], d.accession))
            if self.opts["show_account"]:
                pairs.append(("account", self.opts["account_label"], d.account))
            if self.rng.random() < 0.5:
                pairs.append(("location", "Ordering location" if self.rng.random() < 0.5 else "Location", d.clinic))
        elif d.doc_type == "visit_summary":
            pairs.append(("date", s.visit_date_label, self.date(d.date)))
            pairs.append(("provider", s.provider_label, prov))
            if self.opts["show_account"]:
                pairs.append(("account", self.opts["account_label"], d.account))
        elif d.doc_type == "medication_list":
            pairs.append(("date", s.medlist_date_label, self.date(d.date)))
            pairs.append(("provider", s.provider_label, prov))
            pairs.append(("pharmacy", "Pharmacy", d.pharmacy))
        else:
            pairs.append(("admit", s.admit_label, self.date(d.admit)))
            pairs.append(("date", s.discharge_label, self.date(d.date)))
            pairs.append(("provider", s.provider_label, prov))
            pairs.append(("pcp", "PCP" if self.rng.random() < 0.5 else "Primary Care",
                          K.prov_printed("First Last, CRED", d.pcp)))
            pairs.append(("account", self.opts["account_label"], d.account))
            pairs.append(("room", "Room" if not d.intl else "Ward", d.room))
        return pairs

    def value_cell(self, cv, x, y, key, value, size=None, bold=False):
        if key in self.d.hand:
            w, vis = cv.hand(x, y - cv.ptpx(size or self.base) * 0.25, value, self.d.hand_style, size)
            return vis
        cv.text(x, y, value, size=size, bold=bold)
        return value

    def kv_fit(self, cv, pairs, ncols, width, size, label_bold, grid=False):
        """Choose the number of label/value column groups that fits; -> (n, rows, label widths, group widths)"""
        fl = cv.font(size, label_bold)
        fv = cv.font(size)
        gap = cv.ptpx(size) * (1.2 if grid else 0.8)
        colgap = cv.ptpx(size) * (0.6 if grid else 1.6)
        for n in range(ncols, 0, -1):
            rows = [pairs[i:i + n] for i in range(0, len(pairs), n)]
            lw, need = [0] * n, [0] * n
            for r in rows:
                for j, (_, lab, _) in enumerate(r):
                    lw[j] = max(lw[j], cv.tw(lab if grid else self.lab(lab), fl))
            for r in rows:
                for j, (key, lab, val) in enumerate(r):
                    vw = cv.tw(val, fv) * (1.5 if key in self.d.hand else 1.0)
                    need[j] = max(need[j], lw[j] + gap + vw + (cv.ptpx(size) if grid else 0))
            total = sum(need) + colgap * (n - 1)
            if total <= width or n == 1:
                extra = max(0.0, width - total)
                widths = [w + colgap + extra / n for w in need]
                return n, rows, lw, widths, gap
        raise AssertionError

    def kv_block(self, cv, y, pairs, ncols, x0=None, x1=None, size=None, label_bold=True, value_bold=False,
                 leader=False, bg=None):
        """Pairs in up to ncols column groups, row by row: "Label: value   Label: value"."""
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        size = size or self.base
        n, rows, lw, widths, gap = self.kv_fit(cv, pairs, ncols, x1 - x0, size, label_bold)
        fl = cv.font(size, label_bold)
        rh = cv.lh(size, 1.6 if self.d.hand else 1.4)
        if bg:
            fill, pad = bg
            cv.rect(x0 - pad, y - pad, x1 + pad * 0.5, y + rh * len(rows) + pad * 0.3, fill=fill)
        for r in rows:
            cv.check(y + rh)
            logp = []
            lx = x0
            for j, (key, lab, val) in enumerate(r):
                lab_t = self.lab(lab)
                cv.text(lx, y, lab_t, size=size, bold=label_bold)
                vx = lx + lw[j] + gap
                if leader:
                    fdot = cv.font(size)
                    dots = "." * max(2, int((lw[j] + gap * 0.7 - cv.tw(lab_t, fl)) / max(1, cv.tw(".", fdot))))
                    cv.text(lx + cv.tw(lab_t, fl) + 2, y, dots, size=size, fill=GREY)
                vis = self.value_cell(cv, vx, y, key, val, size, value_bold)
                logp.append(f"{lab_t}  {vis}")
                lx += widths[j]
            cv.say("  ".join(logp))
            y += rh
        return y

    def kv_grid(self, cv, y, pairs, ncols=2, x0=None, x1=None):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        size = self.base
        n, rows, lw, widths, gap = self.kv_fit(cv, pairs, ncols, x1 - x0, size, True, grid=True)
        # label cells of equal width per group; groups share the width evenly when they fit
        colw = (x1 - x0) / n
        if any(w > colw for w in widths):
            colw = None
        rh = cv.lh(size, 1.9 if self.d.hand else 1.7)
        for r in rows:
            cv.check(y + rh)
            logp = []
            cx = x0
            for j in range(n):
                w = colw or widths[j]
                lwj = lw[j] + cv.ptpx(size) * 1.0
                cv.rect(cx, y, cx + lwj, y + rh, fill=SHADE)
                cv.rect(cx, y, cx + w, y + rh, outline=(80, 80, 85))
                cv.vline(cx + lwj, y, y + rh, 1, (80, 80, 85))
                if j < len(r):
                    key, lab, val = r[j]
                    ty = y + (rh - cv.ptpx(size) * 1.15) / 2
                    cv.text(cx + cv.ptpx(size) * 0.5, ty, lab, size=size, bold=True)
                    vis = self.value_cell(cv, cx + lwj + cv.ptpx(size) * 0.5, ty, key, val, size)
                    logp.append(f"{lab}  {vis}")
                cx += w
            cv.say("  ".join(logp))
            y += rh
        return y + cv.px(0.05)

    def patient_header(self, cv, y, pairs=None, x0=None, x1=None):
        L = self.L
        pairs = pairs or self.header_pairs()
        if L == "grid":
            return self.kv_grid(cv, y, pairs, 2, x0, x1) + cv.px(0.12)
        if L == "landscape":
            return self.kv_block(cv, y, pairs, 4, x0, x1, size=self.base * 0.95) + cv.px(0.1)
        if L == "intl":
            y = self.kv_block(cv, y, pairs, 2, x0, x1, label_bold=False, value_bold=True)
            cv.hline(cv.left, cv.right, y, 1, INK)
            return y + cv.px(0.12)
        if L == "printout":
            y = self.kv_block(cv, y, pairs, 2, x0, x1, size=self.base * 0.95, label_bold=False)
            cv.hline(cv.left, cv.right, y, 1, INK, (cv.px(0.06), cv.px(0.04)))
            return y + cv.px(0.1)
        if L == "logoband":
            ys = y
            y = self.kv_block(cv, y + cv.px(0.08), pairs, 3, (x0 or cv.left) + cv.px(0.1), (x1 or cv.right) - cv.px(0.05),
                              size=self.base * 0.95)
            cv.rect(x0 or cv.left, ys, x1 or cv.right, y + cv.px(0.02), outline=self.accent, width=2)
            return y + cv.px(0.18)
        if L == "sidepanel":
            y = self.kv_block(cv, y + cv.px(0.1), pairs, 3, cv.left + cv.px(0.1), cv.right - cv.px(0.05),
                              size=self.base * 0.95, bg=((232, 236, 242), cv.px(0.1)))
            return y + cv.px(0.2)
        if L == "leader":
            ys = y
            y = self.kv_block(cv, y + cv.px(0.1), pairs, 2, cv.left + cv.px(0.15), cv.right - cv.px(0.1), leader=True)
            cv.rect(cv.left, ys, cv.right, y + cv.px(0.04), outline=self.accent, width=2, radius=cv.px(0.12))
            return y + cv.px(0.2)
        y = self.kv_block(cv, y, pairs, 2, x0, x1)
        return y + cv.px(0.12)

    # -----------------------------------------------------------------------------------
    # sections
    # -----------------------------------------------------------------------------------
    def heading(self, cv, y, t, x0=None, x1=None, size=None):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        size = size or self.base * 1.12
        t = self.heading_text(t)
        L = self.L
        h = cv.lh(size, 1.5)
        cv.check(y + h + cv.lh(self.base, 1.5))
        if L == "grid":
            cv.rect(x0, y, x1, y + h, fill=SHADE)
            cv.text(x0 + cv.ptpx(size) * 0.4, y + (h - cv.ptpx(size) * 1.15) / 2, t, size=size, bold=True, log=True)
            return y + h + cv.px(0.05)
        if L == "logoband":
            cv.text(x0, y, t, size=size, bold=True, fill=self.accent, log=True)
            cv.hline(x0, x1, y + cv.lh(size, 1.25), 1.5, self.accent)
            return y + h + cv.px(0.03)
        if L == "printout":
            cv.text(x0, y, t, size=size, bold=True, log=True)
            cv.hline(x0, x1, y + cv.lh(size, 1.25), 1, INK, (cv.px(0.05), cv.px(0.035)))
            return y + h
        if L == "intl":
            cv.text(x0, y, t, size=size, bold=True, log=True)
            cv.hline(x0, x1, y + cv.lh(size, 1.25), 0.8, INK)
            return y + h
        if L == "leader":
            cv.text(x0, y, t, size=size, bold=True, fill=self.accent, log=True)
            return y + h
        if L == "float":
            cv.text(x0, y, t, size=size, bold=True, log=True)
            return y + cv.lh(size, 1.4)
        cv.text(x0, y, t, size=size, bold=True, log=True)
        cv.hline(x0, x1, y + cv.lh(size, 1.25), 0.8, GREY)
        return y + h

    def tstyle(self, size=None):
        L = self.L
        st = dict(size=size or self.base, rules="head", stretch=True, head_bold=True)
        if L == "grid":
            st.update(grid=True, head_fill=SHADE, row_factor=1.65)
        elif L == "float":
            st.update(rules="none", stretch=False, head_bold=self.rng.random() < 0.6)
        elif L == "intl":
            st.update(zebra=ZEBRA, rules="head")
        elif L == "printout":
            st.update(rules="dashed", stretch=False, head_upper=True, head_bold=False)
        elif L == "logoband":
            st.update(rules="rows", head_fill=(230, 236, 244))
        elif L == "landscape":
            st.update(rules="rows", head_fill=SHADE, outer=True)
        elif L == "sidepanel":
            st.update(rules="head", zebra=(244, 244, 246))
        return st

    def result_rows(self, results, mode, prev=None, x_extra=None):
        """-> (cols, rows) for a results table."""
        bold_abn = self.opts["bold_abn"]
        up = self.L == "printout"
        name = (lambda r: r["name"].upper()) if up else (lambda r: r["name"])
        cols, rows = [], []
        glued = self.glued() or mode == "combo"
        if mode == "combo":
            cols = [dict(h="Test"), dict(h="Your Value"), dict(h="Standard Range"), dict(h="Flag")]
            for r in results:
                v, fl = self.flag_parts(r)
                vu = f"{v} {r['unit']}".strip()
                rows.append([name(r), dict(t=vu, bold=bold_abn and bool(r["flag"])), r["ref_text"], fl])
            if all(not row[3] for row in rows) or self.glued():
                cols = cols[:3]
                rows = []
                for r in results:
                    v, _ = self.flag_parts(r, glued_only=True)
                    rows.append([name(r), dict(t=f"{v} {r['unit']}".strip(), bold=bold_abn and bool(r["flag"])),
                                 r["ref_text"]])
            return cols, rows
        vh = {"printout": "RESULT", "intl": "Result", "landscape": "Result"}.get(self.L, "Result")
        th = {"intl": "Analyte", "printout": "TEST"}.get(self.L, self.rng.choice(["Test", "Test Name", "Component"])
                                                    if not hasattr(self, "_th") else self._th)
        self._th = th
        cols.append(dict(h=th))
        cols.append(dict(h=vh, align="r" if self.L == "printout" else "l"))
        if not glued:
            cols.append(dict(h="Flag"))
        ref_first = mode == "ref_units"
        uh = "Units"
        rh = {"intl": "Ref. interval", "printout": "REF RANGE", "landscape": "Reference Interval"}.get(
            self.L, "Reference Range")
        if ref_first:
            cols += [dict(h=rh), dict(h=uh)]
        else:
            cols += [dict(h=uh), dict(h=rh)]
        if prev is not None:
            lbl = "Previous" if self.L == "intl" else self.opts["prev_label"]
            cols.append(dict(h=f"{lbl} ({self.date(prev[0])})"))
        if x_extra:
            cols += [dict(h=h) for h in x_extra[0]]
        for r in results:
            v, fl = self.flag_parts(r, glued_only=glued)
            row = [name(r), dict(t=v, bold=bold_abn and bool(r["flag"]))]
            if not glued:
                row.append(dict(t=fl, bold=bold_abn))
            unit = r["unit"]
            row += [r["ref_text"], unit] if ref_first else [unit, r["ref_text"]]
            if prev is not None:
                row.append(prev[1].get(id(r), ""))
            if x_extra:
                row += x_extra[1](r)
            rows.append(row)
        return cols, rows

    def results_table(self, cv, y, results, x0=None, x1=None, prev=None, size=None, mode=None):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        mode = mode or self.opts["table_cols"]
        if mode == "glued_or_std":
            mode = "std"
        if self.L in ("intl", "printout", "landscape"):
            mode = "std" if mode == "combo" else mode
        x_extra = None
        if self.L == "landscape":
            d = self.d
            coll = self.date(d.collected)
            x_extra = (["Collected", "Status", "Site"], lambda r: [coll, "Final", self.site_code])
        if self.L == "leader":
            return self.leader_lines(cv, y, results, x0, x1)
        cols, rows = self.result_rows(results, mode, prev, x_extra)
        y = table(cv, x0, y, x1 - x0, cols, rows, self.tstyle(size))
        self.reg(results)
        return y

    def leader_lines(self, cv, y, results, x0, x1):
        size = self.base
        f = cv.font(size)
        fd = cv.font(size)
        namew = max(cv.tw(r["name"], f) for r in results) + cv.ptpx(size) * 3
        namew = min(namew, (x1 - x0) * 0.45)
        xv = x0 + namew
        for r in results:
            cv.check(y + cv.lh(size, 1.45))
            v, fl = self.flag_parts(r, glued_only=True)
            cv.text(x0 + cv.ptpx(size) * 0.3, y, r["name"], size=size)
            nw = cv.tw(r["name"], f) + cv.ptpx(size) * 0.6
            dots = "." * max(2, int((namew - nw - cv.ptpx(size) * 0.5) / max(1, cv.tw(".", fd))))
            cv.text(x0 + nw, y, dots, size=size, fill=GREY)
            vu = f"{v} {r['unit']}".strip()
            cv.text(xv, y, vu, size=size, bold=bool(r["flag"]))
            cv.text(x1 - cv.ptpx(size) * 0.3, y, r["ref_text"], size=size, align="r", fill=(60, 60, 60))
            cv.say(f"{r['name']}  {vu}  {r['ref_text']}")
            y += cv.lh(size, 1.45)
        self.reg(results)
        return y

    def panels_block(self, cv, y, panels, x0=None, x1=None, allow_split=True):
        d = self.d
        for heading, results in panels:
            if d.doc_type == "lab_report":
                for r in results:       # the truth keeps the heading as printed
                    r["panel"] = self.heading_text(heading)
            y = self.heading(cv, y, heading, x0, x1, size=self.base * 1.05)
            prev = d.prev if d.prev and self.L in ("intl", "grid", "float", "landscape", "logoband") else None
            n = len(results)
            if allow_split and (self.opts["split_tables"] or self.L == "logoband") and n >= 10 \
                    and self.L in ("float", "grid", "logoband") and prev is None:
                xl, xr = (cv.left if x0 is None else x0), (cv.right if x1 is None else x1)
                mid = (xl + xr) / 2
                half = (n + 1) // 2
                gap = cv.px(0.12)
                self.features.add("results_split_side_by_side")
                y1 = self.results_table(cv, y, results[:half], xl, mid - gap, size=self.base * 0.92, mode="std")
                y2 = self.results_table(cv, y, results[half:], mid + gap, xr, size=self.base * 0.92, mode="std")
                y = max(y1, y2) + cv.px(0.12)
            elif any(r["_key"].endswith("_pct") for r in results) and self.L in ("grid", "logoband", "float",
                                                                                  "sidepanel", "intl") and \
                    self.rng.random() < 0.6:
                self.features.add("results_split_cbc_differential")
                main = [r for r in results if not (r["_key"].endswith("_pct") or "_abs" in r["_key"])]
                diff = [r for r in results if r not in main]
                y = self.results_table(cv, y, main, x0, x1, prev) + cv.px(0.08)
                y = self.heading(cv, y, "Differential", x0, x1, size=self.base)
                y = self.results_table(cv, y, diff, x0, x1, prev) + cv.px(0.12)
            else:
                y = self.results_table(cv, y, results, x0, x1, prev) + cv.px(0.12)
            if prev is not None:
                self.features.add("previous_result_column")
            if results and results[0]["_key"] in ("a1c", "a1c_ifcc") and self.rng.random() < 0.6:
                self.features.add("interpretation_note_with_numbers")
                y = self.a1c_note(cv, y, x0, x1)
        return y

    def a1c_note(self, cv, y, x0=None, x1=None):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        if self.d.intl:
            t = ("Interpretation (IFCC): below 42 mmol/mol normal; 42-47 mmol/mol increased risk; "
                 "48 mmol/mol or above consistent with diabetes.")
        else:
            t = ("Interpretation: Prediabetes 5.7 - 6.4%; Diabetes >6.4%; Glycemic control for adults with "
                 "diabetes <7.0%.")
        return cv.para(x0, y, x1 - x0, t, size=self.base * 0.85, fill=GREY) + cv.px(0.08)

    def dx_block(self, cv, y, x0=None, x1=None, title=None, prefix_principal=False):
        d = self.d
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        entries = d.conditions
        if not entries:
            return y
        y = self.heading(cv, y, title or "Assessment / Plan", x0, x1)
        if any(e["style"] == "table" for e in entries):
            self.features.add("diagnosis_table")
            cols = [dict(h="#"), dict(h="Diagnosis"), dict(h="ICD-10")]
            rows = [[str(i + 1), e["text"], e["code"]] for i, e in enumerate(entries)]
            y = table(cv, x0, y, x1 - x0, cols, rows, self.tstyle()) + cv.px(0.1)
            self.reg(entries)
            return y
        comments = ["Stable; continue current plan.", "Discussed diet and exercise.", "Monitor; no changes today.",
                    "Improved.", "Recheck labs in 3 months.", ""]
        for i, e in enumerate(entries):
            line = e["line"]
            if prefix_principal:
                line = ("Principal: " if i == 0 else "Secondary: ") + line
            if d.doc_type == "visit_summary" and self.rng.random() < 0.45:
                c = self.rng.choice(comments)
                if c:
                    line += " - " + c
            lead = f"{i + 1}. " if self.opts["dx_numbered"] else "\u2022 "
            y = cv.para(x0, y, x1 - x0, lead + line, indent=cv.ptpx(self.base) * 1.3)
        self.reg(entries)
        return y + cv.px(0.08)

    def med_label(self, m):
        return m["label"]

    def meds_block(self, cv, y, meds, x0=None, x1=None, title="Medications", table_ok=True, numbered=False):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        if not meds:
            return y
        if title:
            y = self.heading(cv, y, title, x0, x1)
        if table_ok and self.opts["meds_table"] and (x1 - x0) > cv.px(4.5):
            self.features.add("medication_table")
            cols = [dict(h="Medication"), dict(h="Strength"), dict(h="Directions")]
            rows = [[f"{m['label']} {m['form']}" if self.rng.random() < 0.5 else m["label"], m["strength"], m["sig"]]
                    for m in meds]
            if self.d.doc_type == "medication_list" and self.rng.random() < 0.5:
                cols.append(dict(h="Start"))
                for r in rows:
                    r.append(self.date(self.d.date - dt.timedelta(days=self.rng.randrange(30, 1500))))
            y = table(cv, x0, y, x1 - x0, cols, rows, self.tstyle(self.base * 0.95)) + cv.px(0.1)
        else:
            for i, m in enumerate(meds):
                lead = f"{i + 1}. " if numbered else "\u2022 "
                y = cv.para(x0, y, x1 - x0, f"{lead}{m['label']} {m['strength']} {m['form']} - {m['sig']}",
                            indent=cv.ptpx(self.base) * 1.3)
            y += cv.px(0.06)
        self.reg(meds)
        return y

    def stopped_block(self, cv, y, stopped, x0=None, x1=None, title="Discontinued Medications"):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        if not stopped:
            return y
        y = self.heading(cv, y, title, x0, x1)
        if self.d.doc_type == "medication_list" and (x1 - x0) > cv.px(4.5):
            cols = [dict(h="Medication"), dict(h="Strength"), dict(h="Stopped"), dict(h="Reason")]
            rows = [[m["label"], m["strength"], self.date(m["stop_date"]), m["reason"]] for m in stopped]
            y = table(cv, x0, y, x1 - x0, cols, rows, self.tstyle(self.base * 0.95)) + cv.px(0.1)
            for m in stopped:
                m["sig"] = ""
        else:
            for m in stopped:
                y = cv.para(x0, y, x1 - x0, f"\u2022 {m['label']} {m['strength']}"
                            + (f" ({self.d.stop_reason})" if getattr(self.d, "stop_reason", None) else ""))
                m["sig"] = ""
        self.reg(stopped)
        return y + cv.px(0.06)

    def allergy_block(self, cv, y, x0=None, x1=None):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        y = self.heading(cv, y, "Allergies", x0, x1)
        return cv.para(x0, y, x1 - x0, ", ".join(self.d.allergies)) + cv.px(0.06)

    def vitals_block(self, cv, y, x0=None, x1=None, stacked=False):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        y = self.heading(cv, y, "Vital Signs", x0, x1)
        v = self.d.vitals
        if stacked:
            for k, val in v.items():
                cv.check(y + cv.lh())
                cv.row(y, [(x0, k, dict(bold=True)), (x0 + cv.ptpx(self.base) * 5, val, {})])
                y += cv.lh()
            return y + cv.px(0.06)
        return cv.para(x0, y, x1 - x0, "  ".join(f"{k}: {val}" for k, val in v.items())) + cv.px(0.06)

    def signature_line(self, cv, y, x0=None, x1=None, when=None):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        d = self.d
        when = when or d.date
        return cv.para(x0, y, x1 - x0, f"Electronically signed by {d.provider['as_printed']} on {self.date(when)}",
                       size=self.base * 0.95)

    def prose(self, cv, y, text, x0=None, x1=None, mentions=()):
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        y = cv.para(x0, y, x1 - x0, text) + cv.px(0.05)
        self.reg(mentions)
        return y

    # -----------------------------------------------------------------------------------
    # flows per document type
    # -----------------------------------------------------------------------------------
    def mentions_of(self, kind):
        return [m for m in self.d.mentions if m["kind"] in kind]

    def blocks(self):
        """-> list of (fn(cv, y) -> y, page_break_before)"""
        d = self.d
        B = []
        brk = [False]

        def add(fn, pb=False):
            B.append((fn, pb))

        if d.form == "cumulative":
            add(lambda cv, y: self.cumulative_table(cv, y))
            return B
        if d.doc_type == "lab_report":
            if d.conditions:
                add(lambda cv, y: self.req_dx(cv, y))
            n = len(d.panels)
            per = max(1, -(-n // max(1, d.pages)))
            for i, p in enumerate(d.panels):
                add(lambda cv, y, p=p: self.panels_block(cv, y, [p]), pb=d.pages > 1 and i > 0 and i % per == 0)
            if self.rng.random() < 0.5:
                add(lambda cv, y: cv.para(cv.left, y, cv.right - cv.left,
                                          "Results reviewed and released electronically. Reference intervals are "
                                          "method- and age-specific.", size=self.base * 0.85, fill=GREY))
            return B
        if d.doc_type == "visit_summary":
            p = d.patient
            age = K.age_on(p["dob"], d.date)
            add(lambda cv, y: self.prose(cv, self.heading(cv, y, "Reason for Visit"), d.reason[0].upper() + d.reason[1:]))
            hpi = (f"{p['given']} is a {age}-year-old {d.sex} seen today for {d.reason}. "
                   "Reports taking medications as prescribed with no side effects. " + " ".join(d.sent.get("hpi", [])
                                                                                  + d.sent.get("nohx", [])
                                                                                  + d.sent.get("course", [])))
            add(lambda cv, y: self.prose(cv, self.heading(cv, y, "History of Present Illness"), hpi,
                                         mentions=self.mentions_of({"negated"})))
            if d.sent.get("pmh") or d.sent.get("fhx"):
                txt = " ".join(d.sent.get("pmh", []) + d.sent.get("fhx", []))
                add(lambda cv, y: self.prose(cv, self.heading(cv, y, "Past / Family History"), txt,
                                             mentions=self.mentions_of({"historical", "family_history"})))
            add(lambda cv, y: self.vitals_block(cv, y))
            add(lambda cv, y: self.allergy_block(cv, y))
            if d.panels:
                add(lambda cv, y: self.results_table(cv, self.heading(cv, y, "Results Reviewed"), d.labs) + cv.px(0.1))
            add(lambda cv, y: self.dx_block(cv, y), pb=d.pages > 1)
            add(lambda cv, y: self.meds_block(cv, y, d.meds, title="Current Medications"))
            if d.meds_stopped:
                add(lambda cv, y: self.stopped_block(cv, y, d.meds_stopped, title="Stopped This Visit"))
            fu = self.rng.choice(["Return in 3 months.", "Follow up in 6 months or sooner if needed.",
                                  "Return in 4 weeks.", "Follow-up visit in 8 weeks with labs."])
            add(lambda cv, y: self.prose(cv, self.heading(cv, y, "Follow-up"), " ".join([fu] + d.sent.get("plan", [])),
                                         mentions=self.mentions_of({"hypothetical"})))
            add(lambda cv, y: self.signature_line(cv, y))
            return B
        if d.doc_type == "medication_list":
            add(lambda cv, y: self.allergy_block(cv, y))
            if d.conditions:
                add(lambda cv, y: self.dx_block(cv, y, title="Active Problems"))
            meds = d.meds
            prn = [m for m in meds if m["cls"] == "prn"] if self.opts["prn_section"] else []
            sched = [m for m in meds if m not in prn]
            add(lambda cv, y: self.meds_block(cv, y, sched, title="Active Medications", numbered=True))
            if prn:
                add(lambda cv, y: self.meds_block(cv, y, prn, title="As Needed (PRN)", numbered=True))
            add(lambda cv, y: self.stopped_block(cv, y, d.meds_stopped,
                                                 title=self.rng.choice(["Discontinued Medications", "Stopped",
                                                                        "Inactive / Discontinued"])),
                pb=d.pages > 1)
            add(lambda cv, y: cv.para(cv.left, y, cv.right - cv.left,
                                      f"Reviewed with patient by {d.provider['as_printed']} on {self.date(d.date)}. "
                                      "Bring this list to every appointment.", size=self.base * 0.95))
            return B
        # discharge
        add(lambda cv, y: self.dx_block(cv, y, title="Discharge Diagnoses", prefix_principal=True))
        course = (f"Patient was admitted on {self.date(d.admit)} for {d.principal_text}. "
                  + " ".join(d.sent.get("course", []) + getattr(d, "course_extra", []))
                  + " Treated and improved; tolerating diet and ambulating at discharge. " + " ".join(("At discharge " + x[0].lower() + x[1:]) for x in d.sent.get("hpi", []))
                  + " " + " ".join(d.sent.get("nohx", []))
                  + (" " + " ".join(d.sent["pmh"]) if d.sent.get("pmh") else ""))
        add(lambda cv, y: self.prose(cv, self.heading(cv, y, "Hospital Course"), course,
                                     mentions=self.mentions_of({"negated", "historical"})))
        add(lambda cv, y: self.results_table(cv, self.heading(cv, y, "Labs at Discharge"), d.labs) + cv.px(0.1),
            pb=d.pages > 1)
        new = [m for m in d.meds if m.get("section") == "new"]
        cont = [m for m in d.meds if m.get("section") != "new"]

        def meds(cv, y):
            y = self.heading(cv, y, "Discharge Medications")
            if new:
                y = self.meds_block(cv, cv.para(cv.left, y, cv.right - cv.left, "NEW:", bold=True), new, title=None,
                                    table_ok=False)
            if cont:
                y = self.meds_block(cv, cv.para(cv.left, y, cv.right - cv.left, "CONTINUE:", bold=True), cont,
                                    title=None, table_ok=False)
            if d.meds_stopped:
                y = cv.para(cv.left, y, cv.right - cv.left, "STOP taking:", bold=True)
                for m in d.meds_stopped:
                    y = cv.para(cv.left, y, cv.right - cv.left, f"\u2022 {m['label']} {m['strength']}",
                                indent=cv.ptpx(self.base))
                    m["sig"] = ""
                self.reg(d.meds_stopped)
            return y
        add(meds, pb=d.pages > 2)
        add(lambda cv, y: self.allergy_block(cv, y))
        fu = f"Follow up with primary care ({K.prov_printed('First Last, CRED', d.pcp)}) within 1 week."
        add(lambda cv, y: self.prose(cv, self.heading(cv, y, "Follow-up"), " ".join([fu] + d.sent.get("plan", [])),
                                     mentions=self.mentions_of({"hypothetical"})))
        add(lambda cv, y: self.signature_line(cv, y))
        return B

    def req_dx(self, cv, y):
        d = self.d
        t = "Diagnosis (ICD-10): " + "; ".join(e["line"] for e in d.conditions)
        y = cv.para(cv.left, y, cv.right - cv.left, t, size=self.base * 0.95) + cv.px(0.08)
        self.reg(d.conditions)
        return y

    def cumulative_table(self, cv, y, x0=None, x1=None):
        d = self.d
        x0 = cv.left if x0 is None else x0
        x1 = cv.right if x1 is None else x1
        dates = list(d.cum_dates)
        if not d.cum_newest_first:
            dates = dates[::-1]
        for r in d.labs:
            r["panel"] = self.heading_text(d.cum_title)
        y = self.heading(cv, y, d.cum_title, x0, x1)
        cols = [dict(h="Test"), dict(h="Units"), dict(h="Ref Range")]
        short = lambda dd: self.date(dd)
        cols += [dict(h=short(dd), align="r" if self.L == "landscape" else "l") for dd in dates]
        rows = []
        for row in d.cum_rows:
            cells = row["cells"]
            any_r = next(iter(cells.values()))
            line = [any_r["name"], any_r["unit"], any_r["ref_text"]]
            for dd in dates:
                r = cells.get(dd)
                if r is None:
                    line.append("--")
                else:
                    v, _ = self.flag_parts(r, glued_only=True)
                    line.append(dict(t=v, bold=self.opts["bold_abn"] and bool(r["flag"])))
            rows.append(line)
        size = self.base * (0.95 if len(dates) >= 5 else 1.0)
        y = table(cv, x0, y, x1 - x0, cols, rows, self.tstyle(size)) + cv.px(0.1)
        self.reg(d.labs)
        note = ("Each column shows the results of one specimen; the column heading is its collection date. "
                "Flags refer to the reference range shown.")
        return cv.para(x0, y, x1 - x0, note, size=self.base * 0.85, fill=GREY)

    # -----------------------------------------------------------------------------------
    # page assembly
    # -----------------------------------------------------------------------------------
    def start(self, cont=False):
        cv = self.new_page()
        y = cv.top
        if not cont:
            y = self.org_header(cv, y, self.title())
            y = self.patient_header(cv, y)
        else:
            d = self.d
            t = f"{d.org} - {self.title()} (continued)"
            cv.text(cv.left, y, t, size=self.base * 1.1, bold=True, log=True)
            y += cv.lh(self.base * 1.1, 1.4)
            pairs = [("name", self.s.name_label, d.patient["name_as_printed"]), ("mrn", self.s.mrn_label, d.patient["mrn"]),
                     ("dob", self.s.dob_label, self.date(d.patient["dob"], birth=True))]
            hand = d.hand
            d.hand = []
            y = self.kv_block(cv, y, pairs, 3, size=self.base * 0.95)
            d.hand = hand
            cv.hline(cv.left, cv.right, y, 1, GREY)
            y += cv.px(0.12)
        return cv, y

    def render(self):
        pages = self.render_pages()
        if any(cv.clipped for cv in pages):
            raise Overflow("text outside the sheet: " + repr([c for cv in pages for c in cv.clipped][:3]))
        return pages

    def render_pages(self):
        if self.L == "sidepanel":
            return self.render_sidepanel()
        if self.L == "letter":
            return self.render_letter()
        if self.L == "landscape":
            self.site_code = self.rng.choice(["MAIN", "CORE", "RL1", "NW-LAB"])
        cv, y = self.start()
        for fn, pb in self.blocks():
            if pb and self.forced_breaks and len(self.pages) < self.max_pages:
                cv, y = self.start(cont=True)
            snap = (cv.img.copy(), len(cv.log), dict(self.page_items))
            try:
                y = fn(cv, y)
            except Overflow:
                if len(self.pages) >= self.max_pages:
                    raise
                cv.img, cv.log[:] = snap[0], cv.log[:snap[1]]
                from PIL import ImageDraw
                cv.d = ImageDraw.Draw(cv.img)
                self.page_items = snap[2]
                cv, y = self.start(cont=True)
                y = fn(cv, y)
            y += cv.px(0.04)
        self.finish_pages()
        return self.pages

    # -- two columns -------------------------------------------------------------------------
    def render_sidepanel(self):
        d = self.d
        cv, y = self.start()
        W = cv.right - cv.left
        sw = W * 0.34
        gap = cv.px(0.2)
        self.features.add("side_panel_left" if self.opts["side_left"] else "side_panel_right")
        if self.opts["side_left"]:
            sx0, sx1 = cv.left, cv.left + sw
            mx0, mx1 = sx1 + gap, cv.right
        else:
            mx0, mx1 = cv.left, cv.right - sw - gap
            sx0, sx1 = mx1 + gap, cv.right
        ytop = y
        side, main = [], []
        if d.doc_type == "lab_report":
            panels = list(d.panels)
            # the smaller panels go to the side column
            panels.sort(key=lambda p: len(p[1]))
            k = max(0, len(panels) // 2)
            side_p, main_p = panels[:k], panels[k:]
            if d.conditions:
                main.append(lambda cv, y: self.req_dx_col(cv, y, mx0, mx1))
            for p in main_p:
                main.append(lambda cv, y, p=p: self.panels_block(cv, y, [p], mx0, mx1, allow_split=False))
            for p in side_p:
                side.append(lambda cv, y, p=p: self.side_results(cv, y, p, sx0, sx1))
            if not side_p:
                side.append(lambda cv, y: self.side_note(cv, y, sx0, sx1))
        elif d.doc_type == "visit_summary":
            p = d.patient
            age = K.age_on(p["dob"], d.date)
            hpi = (f"{p['given']} is a {age}-year-old {d.sex} seen today for {d.reason}. "
                   "Reports taking medications as prescribed. " + " ".join(d.sent.get("hpi", []) + d.sent.get("nohx", []) + d.sent.get("course", [])))
            main.append(lambda cv, y: self.prose(cv, self.heading(cv, y, "History of Present Illness", mx0, mx1), hpi,
                                                 mx0, mx1, mentions=self.mentions_of({"negated"})))
            if d.sent.get("pmh") or d.sent.get("fhx"):
                txt = " ".join(d.sent.get("pmh", []) + d.sent.get("fhx", []))
                main.append(lambda cv, y: self.prose(cv, self.heading(cv, y, "Past / Family History", mx0, mx1), txt,
                                                     mx0, mx1, mentions=self.mentions_of({"historical",
                                                                                          "family_history"})))
            if d.panels:
                main.append(lambda cv, y: self.results_table(cv, self.heading(cv, y, "Results Reviewed", mx0, mx1),
                                                             d.labs, mx0, mx1) + cv.px(0.1))
            main.append(lambda cv, y: self.dx_block(cv, y, mx0, mx1))
            fu = "Return in 3 months. " + " ".join(d.sent.get("plan", []))
            main.append(lambda cv, y: self.prose(cv, self.heading(cv, y, "Plan / Follow-up", mx0, mx1), fu, mx0, mx1,
                                                 mentions=self.mentions_of({"hypothetical"})))
            main.append(lambda cv, y: self.signature_line(cv, y, mx0, mx1))
            side.append(lambda cv, y: self.vitals_block(cv, y, sx0, sx1, stacked=True))
            side.append(lambda cv, y: self.allergy_block(cv, y, sx0, sx1))
            side.append(lambda cv, y: self.meds_block(cv, y, d.meds, sx0, sx1, title="Medications", table_ok=False))
            if d.meds_stopped:
                side.append(lambda cv, y: self.stopped_block(cv, y, d.meds_stopped, sx0, sx1, title="Stopped"))
        elif d.doc_type == "medication_list":
            main.append(lambda cv, y: self.meds_block(cv, y, d.meds, mx0, mx1, title="Active Medications",
                                                      table_ok=False, numbered=True))
            main.append(lambda cv, y: cv.para(mx0, y, mx1 - mx0, f"Reviewed with patient by "
                                              f"{d.provider['as_printed']} on {self.date(d.date)}.",
                                              size=self.base * 0.95))
            side.append(lambda cv, y: self.allergy_block(cv, y, sx0, sx1))
            if d.conditions:
                side.append(lambda cv, y: self.dx_block(cv, y, sx0, sx1, title="Active Problems"))
            side.append(lambda cv, y: self.stopped_block(cv, y, d.meds_stopped, sx0, sx1, title="Discontinued"))
        else:
            main.append(lambda cv, y: self.dx_block(cv, y, mx0, mx1, title="Discharge Diagnoses", prefix_principal=True))
            course = (f"Patient was admitted on {self.date(d.admit)} for {d.principal_text}. "
                      + " ".join(d.sent.get("course", [])) + " Treated and improved. "
                      + " ".join(("At discharge " + x[0].lower() + x[1:]) for x in d.sent.get("hpi", []))
                      + " " + " ".join(d.sent.get("nohx", []))
                      + (" " + " ".join(d.sent["pmh"]) if d.sent.get("pmh") else ""))
            main.append(lambda cv, y: self.prose(cv, self.heading(cv, y, "Hospital Course", mx0, mx1), course, mx0,
                                                 mx1, mentions=self.mentions_of({"negated", "historical"})))
            main.append(lambda cv, y: self.results_table(cv, self.heading(cv, y, "Labs at Discharge", mx0, mx1), d.labs,
                                                         mx0, mx1) + cv.px(0.1))
            fu = f"Follow up with primary care ({K.prov_printed('First Last, CRED', d.pcp)}) within 1 week. " + \
                 " ".join(d.sent.get("plan", []))
            main.append(lambda cv, y: self.prose(cv, self.heading(cv, y, "Follow-up", mx0, mx1), fu, mx0, mx1,
                                                 mentions=self.mentions_of({"hypothetical"})))
            main.append(lambda cv, y: self.signature_line(cv, y, mx0, mx1))
            new = [m for m in d.meds if m.get("section") == "new"]
            cont = [m for m in d.meds if m.get("section") != "new"]
            if new:
                side.append(lambda cv, y: self.meds_block(cv, y, new, sx0, sx1, title="New Medications",
                                                          table_ok=False))
            side.append(lambda cv, y: self.meds_block(cv, y, cont, sx0, sx1, title="Continue", table_ok=False))
            if d.meds_stopped:
                side.append(lambda cv, y: self.stopped_block(cv, y, d.meds_stopped, sx0, sx1, title="Stop Taking"))
            side.append(lambda cv, y: self.allergy_block(cv, y, sx0, sx1))
        # side panel background first (drawn under the text), then both columns; log left column first
        cv.rect(sx0 - cv.px(0.08), ytop - cv.px(0.05), sx1 + cv.px(0.04), cv.bottom, fill=(241, 243, 247))
        logs = {}
        for name, blocks in (("main", main), ("side", side)):
            start = len(cv.log)
            y = ytop
            for fn in blocks:
                y = fn(cv, y) + cv.px(0.04)
            logs[name] = cv.log[start:]
            del cv.log[start:]
        first, second = ("side", "main") if self.opts["side_left"] else ("main", "side")
        cv.log.extend(logs[first] + logs[second])
        self.finish_pages()
        return self.pages

    def req_dx_col(self, cv, y, x0, x1):
        d = self.d
        t = "Diagnosis (ICD-10): " + "; ".join(e["line"] for e in d.conditions)
        y = cv.para(x0, y, x1 - x0, t, size=self.base * 0.95) + cv.px(0.08)
        self.reg(d.conditions)
        return y

    def side_results(self, cv, y, panel, x0, x1):
        heading, results = panel
        for r in results:
            r["panel"] = self.heading_text(heading)
        y = self.heading(cv, y, heading, x0, x1, size=self.base)
        cols = [dict(h="Test"), dict(h="Result")]
        rows = []
        for r in results:
            v, _ = self.flag_parts(r, glued_only=True)
            rows.append([r["name"], dict(t=f"{v} {r['unit']}".strip(), bold=bool(r["flag"]))])
        y = table(cv, x0, y, x1 - x0, cols, rows, dict(size=self.base * 0.9, rules="head", stretch=True))
        refs = "; ".join(f"{r['name']} {r['ref_text']}" for r in results)
        y = cv.para(x0, y + cv.px(0.03), x1 - x0, "Reference: " + refs, size=self.base * 0.8, fill=GREY)
        self.reg(results)
        return y + cv.px(0.1)

    def side_note(self, cv, y, x0, x1):
        d = self.d
        y = self.heading(cv, y, "Specimen", x0, x1, size=self.base)
        for t in [f"Type: {self.rng.choice(['Serum', 'Whole blood', 'Plasma'])}", f"Fasting: {self.rng.choice(['Yes', 'No'])}",
                  f"Lab: {d.org}", f"CLIA: {self.rng.randrange(10, 99)}D{self.rng.randrange(1000000, 9999999)}"]:
            y = cv.para(x0, y, x1 - x0, t, size=self.base * 0.9)
        return y

    # -- letters ---------------------------------------------------------------------------------
    def render_letter(self):
        d = self.d
        cv = self.new_page()
        y = cv.top
        s = cv.px(0.5)
        cv.logo((cv.W - s) / 2 if self.opts["title_right"] else cv.left, y, s, self.accent, self.logo_kind)
        W = cv.right - cv.left - cv.px(0.7)
        osz = self.fit(cv, d.org, self.base * 1.6, True, W)
        line2 = f"{d.org_address}  \u00b7  {d.phone}"
        asz = self.fit(cv, line2, self.base * 0.85, False, W)
        if self.opts["title_right"]:
            y += s + cv.px(0.06)
            cv.text(cv.W / 2, y, d.org, size=osz, bold=True, align="c", log=True, fill=self.accent)
            y += cv.lh(osz, 1.2)
            cv.text(cv.W / 2, y, line2, size=asz, align="c", fill=GREY, log=True)
        else:
            cv.text(cv.left + s + cv.px(0.15), y, d.org, size=osz, bold=True, log=True, fill=self.accent)
            cv.text(cv.left + s + cv.px(0.15), y + cv.lh(osz, 1.2), line2, size=asz, fill=GREY, log=True)
            y += s
        y += cv.lh(self.base, 1.6)
        cv.hline(cv.left, cv.right, y, 1, self.accent)
        y += cv.px(0.2)
        # letter date (not the clinical date)
        lab = "Date" if self.rng.random() < 0.5 else None
        dtxt = self.date(d.letter_date)
        cv.row(y, [(cv.left, f"{lab}: {dtxt}" if lab else dtxt, {})])
        y += cv.lh(self.base, 1.8)
        p = d.patient
        # address block
        addr = K.address(self.rng, d.intl).split(", ")
        w, vis = (None, None)
        if "name" in d.hand:
            w, vis = cv.hand(cv.left, y - cv.ptpx(self.base) * 0.25, p["name_as_printed"], d.hand_style)
            cv.say(vis)
        else:
            cv.text(cv.left, y, p["name_as_printed"], log=True)
        y += cv.lh(self.base, 1.5 if d.hand else 1.3)
        for line in [addr[0], ", ".join(addr[1:])]:
            cv.text(cv.left, y, line, log=True)
            y += cv.lh()
        y += cv.lh(self.base, 0.8)
        # RE line with identifiers
        parts = []
        x = cv.left
        fb = cv.font(None, True)
        f = cv.font()
        label = self.s
        dob_v = self.date(p["dob"], birth=True)
        if label.dob_label == "DOB/Age":
            dob_v += f" / {K.age_on(p['dob'], d.date)}Y"
        re_items = [("RE:", None, "Laboratory results" if d.doc_type == "lab_report" else "Your recent visit"),
                    (self.lab(label.dob_label), "dob", dob_v),
                    (self.lab(label.mrn_label), "mrn", p["mrn"])]
        if d.doc_type == "visit_summary":
            re_items.append((self.lab(label.visit_date_label), "date", self.date(d.date)))
        logp = []
        for lab_t, key, val in re_items:
            need = cv.tw(lab_t, fb) + cv.ptpx(self.base) * 0.5 + cv.tw(val, f) * (1.5 if key in d.hand else 1)
            if x + need > cv.right and x > cv.left:
                cv.say("  ".join(logp))
                logp = []
                y += cv.lh(self.base, 1.6 if d.hand else 1.4)
                x = cv.left + cv.tw("RE:", fb) + cv.ptpx(self.base) * 0.5
            cv.text(x, y, lab_t, bold=True)
            x += cv.tw(lab_t, fb) + cv.ptpx(self.base) * 0.5
            if key and key in d.hand:
                w, vis = cv.hand(x, y - cv.ptpx(self.base) * 0.25, val, d.hand_style)
            else:
                cv.text(x, y, val)
                w, vis = cv.tw(val, f), val
            x += w + cv.ptpx(self.base) * 1.6
            logp.append(f"{lab_t}  {vis}")
        cv.say("  ".join(logp))
        y += cv.lh(self.base, 2.0)
        cv.text(cv.left, y, f"Dear {d.greeting},", log=True)
        y += cv.lh(self.base, 1.7)
        W = cv.right - cv.left
        if d.doc_type == "lab_report":
            intro = (f"Your laboratory tests collected on {self.date(d.collected)} have been completed. "
                     + ("The results are listed below. Values outside the reference range are marked High or Low. "
                        "Please contact our office with any questions."))
            y = cv.para(cv.left, y, W, intro) + cv.px(0.08)
            if d.conditions:
                y = self.req_dx(cv, y)
            st = self.opts["sentence_style"]
            for heading, results in d.panels:
                cv.check(y + cv.lh(self.base, 3))
                for r in results:
                    r["panel"] = heading
                cv.text(cv.left, y, heading, bold=True, log=True)
                y += cv.lh(self.base, 1.4)
                for r in results:
                    y = cv.para(cv.left, y, W, "\u2022 " + self.result_sentence(r, st), indent=cv.ptpx(self.base) * 1.1)
                self.reg(results)
                y += cv.px(0.06)
        else:
            p = d.patient
            y = cv.para(cv.left, y, W, f"Thank you for your visit on {self.date(d.date)}. This letter summarizes what we "
                                       "discussed.") + cv.px(0.06)
            age = K.age_on(p["dob"], d.date)
            hpi = (f"{p['given']} is a {age}-year-old {d.sex} seen for {d.reason}. "
                   + " ".join(d.sent.get("hpi", []) + d.sent.get("nohx", []) + d.sent.get("course", [])))
            y = self.prose(cv, self.heading(cv, y, "How you have been"), hpi, mentions=self.mentions_of({"negated"}))
            if d.sent.get("pmh") or d.sent.get("fhx"):
                y = self.prose(cv, self.heading(cv, y, "Your history"), " ".join(d.sent.get("pmh", []) +
                                                                                d.sent.get("fhx", [])),
                               mentions=self.mentions_of({"historical", "family_history"}))
            y = self.vitals_block(cv, y)
            if d.panels:
                y = self.heading(cv, y, "Your results")
                for r in d.labs:
                    y = cv.para(cv.left, y, W, "\u2022 " + self.result_sentence(r, self.opts["sentence_style"]),
                                indent=cv.ptpx(self.base) * 1.1)
                self.reg(d.labs)
            y = self.dx_block(cv, y, title="What we discussed")
            y = self.meds_block(cv, y, d.meds, title="Your medications", table_ok=False)
            if d.meds_stopped:
                y = self.stopped_block(cv, y, d.meds_stopped, title="Please stop taking")
            y = self.prose(cv, self.heading(cv, y, "Next steps"), " ".join(["Please schedule a follow-up visit in "
                                                                            "3 months."] + d.sent.get("plan", [])),
                           mentions=self.mentions_of({"hypothetical"}))
        cv.check(y + cv.px(1.0))
        cv.text(cv.left, y, "Sincerely,", log=True)
        y += cv.lh()
        if "provider" in d.hand:
            w, vis = cv.hand(cv.left, y, d.provider["as_printed"], d.hand_style)
            cv.say(vis)
            y += cv.lh(self.base, 1.8)
        else:
            cv.signature(cv.left, y, cv.px(1.6), cv.px(0.4))
            y += cv.px(0.45)
            cv.text(cv.left, y, d.provider["as_printed"], log=True)
            y += cv.lh()
        cv.text(cv.left, y, d.org, log=True)
        self.finish_pages()
        return self.pages

    def result_sentence(self, r, st):
        word = {"H": "High", "L": "Low", "A": "Abnormal", "": ""}[r["flag"]]
        vu = f"{r['value_text']} {r['unit']}".strip()
        if st == 0:
            return f"{r['name']}: {vu} (reference range {r['ref_text']})" + (f" - {word}" if word else "")
        if st == 1:
            tail = {"H": ", which is above the reference range", "L": ", which is below the reference range",
                    "A": ", which is abnormal", "": ", within the reference range"}[r["flag"]]
            return f"{r['name']} was {vu} (reference {r['ref_text']}){tail}."
        return f"{r['name']} {vu} [{r['ref_text']}]" + (f" {word.upper()}" if word else "")


def render(d, rng, dpi, base_pt):
    r = R(d, rng, dpi, base_pt)
    pages = r.render()
    if d.pages > 1 and len(pages) < d.pages:
        # not enough content to run over: break the pages at section boundaries
        r = R(d, rng, dpi, base_pt)
        r.forced_breaks = True
        pages = r.render()
    return pages, r
