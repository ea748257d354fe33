"""Wording and format variants, and the ones reserved for the held-out split.

`pick(rng, split, name)` draws one variant of the list `name`.  Items listed in
`RESERVED[name]` are never drawn for the development split; in the holdout
split they are drawn with probability `RESERVED_WEIGHT` (so that they are
common enough there to measure generalisation).
"""
from __future__ import annotations

import datetime as _dt

RESERVED_WEIGHT = 0.45

LISTS = {
    # header labels --------------------------------------------------------------------------
    "name_label": ["Patient", "Patient Name", "Name", "PATIENT", "Pt Name", "Patient name", "Client",
                   "Name of patient"],
    "dob_label": ["DOB", "D.O.B.", "Date of Birth", "Date of birth", "Birth date", "Birthdate", "Born", "DOB/Age"],
    "mrn_label": ["MRN", "MRN #", "Patient ID", "Medical Record #", "Med. Rec. No.", "Chart #", "Hospital No.",
                  "Patient No.", "Record No.", "Member ID", "Unit No.", "Health Record No."],
    "sex_label": ["Sex", "Gender", "Sex", "SEX"],
    "lab_provider_label": ["Ordering Physician", "Ordering Provider", "Ordered by", "Requesting clinician",
                           "Referring Physician", "Physician", "Doctor", "Clinician", "Requested by", "Referrer"],
    "visit_provider_label": ["Provider", "Seen by", "Clinician", "Physician", "Attending", "Rendering Provider",
                             "Encounter provider", "Treating clinician"],
    "discharge_provider_label": ["Attending", "Attending Physician", "Consultant", "Discharging Physician",
                                 "Responsible consultant"],
    "medlist_provider_label": ["Reviewed by", "Reconciled by", "Clinician", "Prescriber", "Verified by"],
    "collected_label": ["Collected", "Collection Date", "Date Collected", "Specimen Collected", "Sample collected",
                        "Drawn", "Coll. Date/Time", "Date sampled", "Specimen taken"],
    "received_label": ["Received", "Date Received", "Rec'd", "Received in lab", "Logged in"],
    "reported_label": ["Reported", "Report Date", "Final Report", "Report issued", "Resulted", "Date reported",
                       "Authorised"],
    "visit_date_label": ["Visit Date", "Date of Service", "DOS", "Encounter Date", "Seen on", "Appointment",
                         "Consultation date", "Clinic date"],
    "admit_label": ["Admitted", "Admission Date", "Date of admission", "Admit Date", "Admission"],
    "discharge_label": ["Discharged", "Discharge Date", "Date of discharge", "D/C Date", "Discharge"],
    "medlist_date_label": ["List date", "Date", "Reviewed on", "As of", "Last reconciled", "Current as of"],
    # formats ----------------------------------------------------------------------------------
    "name_fmt": ["LAST, FIRST M", "Last, First M.", "First M. Last", "FIRST M LAST", "Last, First", "LAST First",
                 "Last First"],
    "date_fmt_us": ["iso", "us", "us_short", "us_dash2", "dmy_mon_upper", "dmy_mon", "month_long", "mon_short",
                    "ymd_slash", "dmy_mon2", "weekday_long"],
    "date_fmt_intl": ["dmy_slash", "dmy_dot", "dmy_dot_short", "dmy_mon", "dmy_mon_upper", "ordinal", "dmy_long", "iso",
                      "weekday_dmy"],
    "flag_style": ["col_HL", "col_HIGHLOW", "glued_HL", "glued_star", "glued_paren", "col_arrow", "glued_arrow",
                   "col_HL", "col_paren", "col_star_word"],
    "range_style": ["dash", "spaced", "to", "paren", "dash", "bracket"],
    "ge_style": ["> OR = {x}", ">={x}", "\u2265{x}", "> or = {x}", ">= {x}"],
    "gt_style": [">{x}", "> {x}"],
    "lt_style": ["<{x}", "< {x}", "<{x}"],
    "qual_style": ["Negative", "NEGATIVE", "Neg", "negative", "NEG"],
    "dx_style": ["official_paren", "code_prefix", "bracket", "short", "short_code", "official", "table", "dx_code_end"],
    "sig_style": ["long", "short"],
    "med_name_style": ["generic", "brand_generic", "generic_brand", "brand_only", "generic"],
}

RESERVED = {
    "name_label": {"Client", "Name of patient"},
    "dob_label": {"Born", "DOB/Age"},
    "mrn_label": {"Member ID", "Unit No.", "Health Record No."},
    "lab_provider_label": {"Requested by", "Referrer"},
    "visit_provider_label": {"Encounter provider", "Treating clinician"},
    "discharge_provider_label": {"Responsible consultant"},
    "medlist_provider_label": {"Verified by"},
    "collected_label": {"Date sampled", "Specimen taken"},
    "received_label": {"Logged in"},
    "reported_label": {"Authorised"},
    "visit_date_label": {"Consultation date", "Clinic date"},
    "admit_label": {"Admission"},
    "discharge_label": {"Discharge"},
    "medlist_date_label": {"Current as of"},
    "name_fmt": {"Last First", "LAST First"},
    "date_fmt_us": {"ymd_slash", "dmy_mon2", "weekday_long"},
    "date_fmt_intl": {"weekday_dmy"},
    "flag_style": {"col_star_word"},
    "range_style": {"bracket"},
    "ge_style": {">= {x}"},
    "qual_style": {"NEG"},
    "dx_style": {"dx_code_end"},
}

# layout families, degradations (see layouts.py / degrade.py)
RESERVED_LAYOUTS = {"leader"}
RESERVED_LEVELS = {"photo_folded"}


def options(split, name):
    items = LISTS[name]
    res = RESERVED.get(name, set())
    if split == "holdout":
        return items, res
    return [x for x in items if x not in res], set()


def pick(rng, split, name, exclude=()):
    items, res = options(split, name)
    items = [x for x in items if x not in exclude] or items
    reserved = [x for x in items if x in res]
    common = [x for x in items if x not in res]
    if reserved and (not common or rng.random() < RESERVED_WEIGHT):
        return rng.choice(reserved)
    return rng.choice(common)


# ---------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
MONTH = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
         "December"]
WEEKDAY = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# formats whose numeric part is day-first
DAY_FIRST_NUMERIC = {"dmy_slash", "dmy_dot", "dmy_dot_short"}
# formats with a two-digit year (never used for birth dates)
TWO_DIGIT_YEAR = {"us_dash2", "dmy_mon2", "dmy_dot_short"}
BIRTH_FALLBACK = {"us_dash2": "us", "dmy_mon2": "dmy_mon", "dmy_dot_short": "dmy_dot"}


def ordinal(n):
    if 10 <= n % 100 <= 20:
        suf = "th"
    else:
        suf = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def fmt_date(d: _dt.date, fmt: str, birth=False) -> str:
    if birth and fmt in TWO_DIGIT_YEAR:
        fmt = BIRTH_FALLBACK[fmt]
    y, m, dd = d.year, d.month, d.day
    return {
        "iso": f"{y:04d}-{m:02d}-{dd:02d}",
        "us": f"{m:02d}/{dd:02d}/{y:04d}",
        "us_short": f"{m}/{dd}/{y}",
        "us_dash2": f"{m:02d}-{dd:02d}-{y % 100:02d}",
        "dmy_mon_upper": f"{dd:02d}-{MON[m - 1].upper()}-{y}",
        "dmy_mon": f"{dd:02d} {MON[m - 1]} {y}",
        "month_long": f"{MONTH[m - 1]} {dd}, {y}",
        "mon_short": f"{MON[m - 1]} {dd}, {y}",
        "ymd_slash": f"{y:04d}/{m:02d}/{dd:02d}",
        "dmy_mon2": f"{dd:02d}-{MON[m - 1]}-{y % 100:02d}",
        "dmy_slash": f"{dd:02d}/{m:02d}/{y:04d}",
        "dmy_dot": f"{dd}.{m}.{y}",
        "dmy_dot_short": f"{dd:02d}.{m:02d}.{y % 100:02d}",
        "ordinal": f"{ordinal(dd)} {MONTH[m - 1]} {y}",
        "dmy_long": f"{dd} {MONTH[m - 1]} {y}",
        "weekday_long": f"{WEEKDAY[d.weekday()]}, {MONTH[m - 1]} {dd}, {y}",
        "weekday_dmy": f"{WEEKDAY[d.weekday()][:3]} {dd} {MONTH[m - 1]} {y}",
    }[fmt]


def fmt_time(h, mi, style):
    if style == "24":
        return f"{h:02d}:{mi:02d}"
    ap = "AM" if h < 12 else "PM"
    return f"{(h - 1) % 12 + 1}:{mi:02d} {ap}"
