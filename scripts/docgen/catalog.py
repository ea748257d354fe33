"""Reference data: analytes (LOINC / UCUM / ranges), panels, diagnoses (ICD-10-CM),
negated / family-history / hypothetical / historical mentions, medications and
the pools of invented people and organisations.

Only LOINC codes whose meaning was checked are used; the unit of each entry
decides the code (mass and molar quantities of one analyte have different
codes).  ICD-10-CM codes are checked against the `simple-icd-10-cm` package by
`python -m docgen --check-codes` (they must be valid, billable leaf codes).
"""
from __future__ import annotations

# ---------------------------------------------------------------------------
# units: printed spelling -> UCUM code
# ---------------------------------------------------------------------------
# count units: the lists run in parallel (same index = same spelling family), so a document that prints
# "K/uL" for white cells prints "M/uL" for red cells
K_UL = [("x10^3/uL", "10*3/uL"), ("10*3/uL", "10*3/uL"), ("K/uL", "10*3/uL"), ("thou/uL", "10*3/uL"),
        ("x10E3/uL", "10*3/uL"), ("10^3/uL", "10*3/uL"), ("x10^3/\u00b5L", "10*3/uL")]
M_UL = [("x10^6/uL", "10*6/uL"), ("10*6/uL", "10*6/uL"), ("M/uL", "10*6/uL"), ("mil/uL", "10*6/uL"),
        ("x10E6/uL", "10*6/uL"), ("10^6/uL", "10*6/uL"), ("x10^6/\u00b5L", "10*6/uL")]
G_L = [("x10^9/L", "10*9/L"), ("10*9/L", "10*9/L"), ("x10E9/L", "10*9/L"), ("10^9/L", "10*9/L")]
T_L = [("x10^12/L", "10*12/L"), ("10*12/L", "10*12/L"), ("x10E12/L", "10*12/L"), ("10^12/L", "10*12/L")]
UNIT_GROUPS = {tuple(K_UL): "count_us", tuple(M_UL): "count_us", tuple(G_L): "count_si", tuple(T_L): "count_si"}
ENZ = [("U/L", "U/L"), ("IU/L", "[IU]/L"), ("U/L", "U/L")]
MEQ = [("mmol/L", "mmol/L"), ("mEq/L", "meq/L"), ("mmol/L", "mmol/L")]
UMOL = [("umol/L", "umol/L"), ("\u00b5mol/L", "umol/L"), ("umol/L", "umol/L")]
TSH_U = [("mIU/L", "m[IU]/L"), ("uIU/mL", "u[IU]/mL"), ("\u00b5IU/mL", "u[IU]/mL"), ("uIU/mL", "u[IU]/mL")]
SEC = [("sec", "s"), ("s", "s"), ("seconds", "s")]
UGDL = [("ug/dL", "ug/dL"), ("mcg/dL", "ug/dL"), ("\u00b5g/dL", "ug/dL")]
FERR = [("ng/mL", "ng/mL"), ("ng/mL", "ng/mL"), ("ug/L", "ug/L")]
EGFR_U = [("mL/min/1.73m2", "mL/min/{1.73_m2}"), ("mL/min/1.73 m2", "mL/min/{1.73_m2}"),
          ("mL/min/1.73m\u00b2", "mL/min/{1.73_m2}")]

# holdout-only unit spellings (printed forms never seen in the development split)
HOLDOUT_UNITS = {"x10E9/L", "10^9/L", "x10E12/L", "10^12/L", "mL/min/1.73 m2", "seconds"}


class A:
    """One reportable quantity (analyte in one kind of unit)."""

    def __init__(self, key, analyte, loinc, names, units, refs, dec, normal=None, low=None, high=None,
                 comps=(), qual=None, si=False):
        self.key, self.analyte, self.loinc = key, analyte, loinc
        self.names = names            # printed test names
        self.units = units            # [(printed, ucum)]; [("", "")] for unit-less results
        self.refs = refs              # list of ref specs; ("range", lo, hi) | ("lt", x) | ("ge", x) | ("gt", x)
        self.dec = dec                # decimals printed
        self.normal, self.low, self.high = normal, low, high
        self.comps = comps            # [(printed, flag-if-any, probability)]
        self.qual = qual              # qualitative: (normal word, [abnormal words])
        self.si = si


def sexed(f, m):
    return {"female": f, "male": m}


ANALYTES = {}


def _add(*a, **k):
    x = A(*a, **k)
    ANALYTES[x.key] = x


# --- chemistry, conventional units ----------------------------------------------------------
_add("glucose", "glucose", "2345-7", ["Glucose", "Glucose, Serum", "GLUCOSE", "Glucose, Fasting", "Glu"],
     [("mg/dL", "mg/dL")], [("range", "70", "99"), ("range", "65", "99"), ("range", "74", "106")], 0,
     (72, 98), (52, 64), (108, 262))
_add("bun", "bun", "3094-0", ["BUN", "Urea Nitrogen (BUN)", "Blood Urea Nitrogen", "UREA NITROGEN"],
     [("mg/dL", "mg/dL")], [("range", "6", "24"), ("range", "7", "20"), ("range", "8", "23")], 0,
     (9, 19), (3, 5), (26, 58))
_add("creatinine", "creatinine", "2160-0", ["Creatinine", "Creatinine, Serum", "CREATININE", "Creat"],
     [("mg/dL", "mg/dL")], [sexed(("range", "0.57", "1.00"), ("range", "0.76", "1.27")),
                            sexed(("range", "0.50", "1.10"), ("range", "0.70", "1.30"))], 2,
     (0.72, 0.98), (0.38, 0.48), (1.35, 3.4))
_add("egfr", "egfr", "98979-8", ["eGFR", "eGFR (CKD-EPI 2021)", "Est. GFR", "eGFR CKD-EPI"],
     EGFR_U, [("ge", "60"), ("gt", "59"), ("ge", "60")], 0, (62, 118), (22, 58), None,
     comps=[(">60", "", 0.25), (">90", "", 0.15)])
_add("sodium", "sodium", "2951-2", ["Sodium", "Sodium, Serum", "SODIUM", "Na"], MEQ,
     [("range", "136", "145"), ("range", "134", "144"), ("range", "135", "145")], 0, (137, 143), (124, 133), (147, 152))
_add("potassium", "potassium", "2823-3", ["Potassium", "Potassium, Serum", "POTASSIUM", "K"], MEQ,
     [("range", "3.5", "5.1"), ("range", "3.5", "5.2"), ("range", "3.6", "5.0")], 1, (3.7, 4.9), (2.9, 3.4), (5.3, 6.1))
_add("chloride", "chloride", "2075-0", ["Chloride", "CHLORIDE", "Cl", "Chloride, Serum"], MEQ,
     [("range", "98", "107"), ("range", "96", "106"), ("range", "98", "110")], 0, (99, 105), (88, 95), (109, 114))
_add("co2", "co2", "2028-9", ["CO2", "Carbon Dioxide, Total", "CO2, Total", "Total CO2", "CARBON DIOXIDE"], MEQ,
     [("range", "22", "29"), ("range", "20", "29"), ("range", "21", "31")], 0, (23, 28), (15, 19), (31, 35))
_add("calcium", "calcium", "17861-6", ["Calcium", "Calcium, Serum", "CALCIUM", "Ca"], [("mg/dL", "mg/dL")],
     [("range", "8.6", "10.3"), ("range", "8.7", "10.2"), ("range", "8.5", "10.1")], 1, (8.9, 10.0), (7.6, 8.4), (10.5, 11.6))
_add("protein", "protein", "2885-2", ["Total Protein", "Protein, Total", "TOTAL PROTEIN", "Protein, Total, Serum"],
     [("g/dL", "g/dL")], [("range", "6.0", "8.5"), ("range", "6.1", "8.1"), ("range", "6.4", "8.3")], 1,
     (6.6, 7.8), (5.2, 5.9), (8.7, 9.2))
_add("albumin", "albumin", "1751-7", ["Albumin", "Albumin, Serum", "ALBUMIN", "Alb"], [("g/dL", "g/dL")],
     [("range", "3.5", "5.0"), ("range", "3.8", "4.9"), ("range", "3.6", "5.1")], 1, (3.9, 4.7), (2.6, 3.4), None)
_add("globulin", "globulin", "10834-0", ["Globulin", "Globulin, Total", "GLOBULIN"], [("g/dL", "g/dL")],
     [("range", "1.5", "4.5"), ("range", "2.0", "3.5")], 1, (2.3, 3.3), None, (3.8, 4.4))
_add("bilirubin", "bilirubin", "1975-2", ["Bilirubin, Total", "Total Bilirubin", "BILIRUBIN, TOTAL", "T. Bili"],
     [("mg/dL", "mg/dL")], [("range", "0.0", "1.2"), ("range", "0.1", "1.2"), ("range", "0.2", "1.3")], 1,
     (0.3, 1.0), None, (1.4, 3.6))
_add("bili_direct", "bilirubin_direct", "1968-7", ["Bilirubin, Direct", "Direct Bilirubin", "BILIRUBIN, DIRECT"],
     [("mg/dL", "mg/dL")], [("range", "0.00", "0.40"), ("range", "0.0", "0.3")], 2, (0.05, 0.25), None, (0.5, 1.6))
_add("alp", "alp", "6768-6", ["Alkaline Phosphatase", "ALK PHOS", "Alk Phos", "ALP"], ENZ,
     [("range", "44", "121"), ("range", "39", "117"), ("range", "40", "129")], 0, (52, 108), (28, 36), (135, 260))
_add("ast", "ast", "1920-8", ["AST (SGOT)", "AST", "SGOT (AST)", "Aspartate Aminotransferase"], ENZ,
     [("range", "0", "40"), ("range", "10", "35"), ("lt", "40")], 0, (14, 33), None, (45, 160))
_add("alt", "alt", "1742-6", ["ALT (SGPT)", "ALT", "SGPT (ALT)", "Alanine Aminotransferase"], ENZ,
     [("range", "0", "44"), ("range", "7", "52"), ("lt", "41")], 0, (12, 38), None, (55, 190))
_add("ggt", "ggt", "2324-2", ["GGT", "Gamma-Glutamyl Transferase", "Gamma GT", "GAMMA GT"], ENZ,
     [("range", "0", "65"), ("range", "8", "61"), ("range", "5", "55")], 0, (12, 45), None, (75, 320))
_add("ldh", "ldh", "2532-0", ["LDH", "Lactate Dehydrogenase (LDH)", "LD", "Lactate Dehydrogenase"], ENZ,
     [("range", "119", "226"), ("range", "125", "220"), ("range", "135", "225")], 0, (140, 210), None, (240, 520))
_add("ck", "ck", "2157-6", ["CK", "Creatine Kinase (CK)", "CPK", "Creatine Kinase, Total"], ENZ,
     [("range", "30", "200"), ("range", "49", "397"), ("range", "24", "204")], 0, (60, 180), None, (420, 2400))
_add("amylase", "amylase", "1798-8", ["Amylase", "Amylase, Serum", "AMYLASE"], ENZ,
     [("range", "31", "110"), ("range", "28", "100"), ("range", "25", "115")], 0, (40, 95), None, (130, 480))
_add("lipase", "lipase", "3040-3", ["Lipase", "Lipase, Serum", "LIPASE"], ENZ,
     [("range", "13", "60"), ("range", "10", "67"), ("range", "14", "72")], 0, (18, 55), None, (90, 1400))
_add("magnesium", "magnesium", "19123-9", ["Magnesium", "Magnesium, Serum", "MAGNESIUM", "Mg"], [("mg/dL", "mg/dL")],
     [("range", "1.6", "2.3"), ("range", "1.7", "2.4"), ("range", "1.8", "2.6")], 1, (1.9, 2.2), (1.1, 1.5), (2.6, 3.1))
_add("phosphorus", "phosphorus", "2777-1", ["Phosphorus", "Phosphorus, Serum", "PHOSPHORUS", "Phosphate"],
     [("mg/dL", "mg/dL")], [("range", "2.5", "4.5"), ("range", "2.8", "4.1"), ("range", "2.4", "4.4")], 1,
     (3.0, 4.0), (1.6, 2.3), (4.8, 6.4))
_add("uric_acid", "uric_acid", "3084-1", ["Uric Acid", "Uric Acid, Serum", "URIC ACID", "Urate"], [("mg/dL", "mg/dL")],
     [sexed(("range", "2.5", "7.1"), ("range", "3.7", "8.6")), sexed(("range", "2.6", "6.0"), ("range", "3.5", "7.2"))],
     1, (4.0, 5.8), None, (8.8, 11.4))
# --- chemistry, SI units ----------------------------------------------------------------------
_add("glucose_si", "glucose", "14749-6", ["Glucose", "Glucose (fasting)", "GLUCOSE", "Plasma glucose"],
     [("mmol/L", "mmol/L")], [("range", "3.9", "5.5"), ("range", "3.6", "6.0"), ("range", "4.0", "5.9")], 1,
     (4.3, 5.4), (2.8, 3.4), (6.4, 14.8), si=True)
_add("urea_si", "urea", "22664-7", ["Urea", "UREA", "Urea, Serum"], [("mmol/L", "mmol/L")],
     [("range", "2.5", "7.8"), ("range", "2.8", "8.1"), ("range", "3.0", "7.5")], 1, (3.4, 7.0), (1.2, 2.2), (8.6, 21.5),
     si=True)
_add("creatinine_si", "creatinine", "14682-9", ["Creatinine", "CREATININE", "Creatinine, Serum"], UMOL,
     [sexed(("range", "45", "84"), ("range", "59", "104")), sexed(("range", "49", "90"), ("range", "64", "111"))], 0,
     (62, 82), (30, 40), (118, 310), si=True)
_add("bicarbonate_si", "bicarbonate", "1963-8", ["Bicarbonate", "BICARBONATE", "HCO3"], [("mmol/L", "mmol/L")],
     [("range", "22", "29"), ("range", "21", "31")], 0, (23, 28), (15, 20), (32, 35), si=True)
_add("calcium_si", "calcium", "2000-8", ["Calcium", "CALCIUM", "Calcium, Total"], [("mmol/L", "mmol/L")],
     [("range", "2.20", "2.60"), ("range", "2.15", "2.55")], 2, (2.25, 2.50), (1.85, 2.10), (2.66, 2.95), si=True)
_add("phosphate_si", "phosphorus", "14879-1", ["Phosphate", "PHOSPHATE", "Phosphate, Inorganic"],
     [("mmol/L", "mmol/L")], [("range", "0.80", "1.50"), ("range", "0.87", "1.45")], 2, (0.92, 1.38), (0.45, 0.75),
     (1.56, 2.10), si=True)
_add("magnesium_si", "magnesium", "2601-3", ["Magnesium", "MAGNESIUM"], [("mmol/L", "mmol/L")],
     [("range", "0.70", "1.00"), ("range", "0.66", "1.07")], 2, (0.76, 0.96), (0.40, 0.62), (1.10, 1.40), si=True)
_add("urate_si", "uric_acid", "14933-6", ["Urate", "URATE", "Uric acid"], UMOL,
     [sexed(("range", "140", "360"), ("range", "200", "430"))], 0, (230, 340), None, (450, 620), si=True)
_add("bilirubin_si", "bilirubin", "14631-6", ["Bilirubin", "Total bilirubin", "BILIRUBIN"], UMOL,
     [("range", "0", "21"), ("range", "3", "21"), ("lt", "21")], 0, (5, 17), None, (24, 68), si=True)
_add("protein_gl", "protein", "2885-2", ["Total protein", "TOTAL PROTEIN", "Protein"], [("g/L", "g/L")],
     [("range", "60", "80"), ("range", "64", "83")], 0, (65, 78), (52, 59), (84, 92), si=True)
_add("albumin_gl", "albumin", "1751-7", ["Albumin", "ALBUMIN"], [("g/L", "g/L")],
     [("range", "35", "50"), ("range", "34", "48")], 0, (37, 47), (24, 33), None, si=True)
# --- lipids ------------------------------------------------------------------------------------
_add("chol", "cholesterol", "2093-3", ["Cholesterol, Total", "Total Cholesterol", "CHOLESTEROL", "Cholesterol"],
     [("mg/dL", "mg/dL")], [("lt", "200"), ("range", "100", "199"), ("lt", "200")], 0, (142, 196), None, (204, 288))
_add("hdl", "hdl", "2085-9", ["HDL Cholesterol", "HDL-C", "HDL CHOLESTEROL", "HDL"], [("mg/dL", "mg/dL")],
     [("ge", "40"), ("gt", "39"), ("ge", "40")], 0, (42, 82), (26, 38), None)
_add("ldl", "ldl", "13457-7", ["LDL Cholesterol Calc", "LDL-C (calculated)", "LDL CHOL CALC", "LDL Chol Calc (NIH)"],
     [("mg/dL", "mg/dL")], [("lt", "100"), ("range", "0", "99"), ("lt", "100")], 0, (58, 97), None, (104, 192))
_add("tg", "triglycerides", "2571-8", ["Triglycerides", "TRIGLYCERIDES", "Triglyceride"], [("mg/dL", "mg/dL")],
     [("lt", "150"), ("range", "0", "149"), ("lt", "150")], 0, (62, 146), None, (156, 420))
_add("nonhdl", "non_hdl", "43396-1", ["Non-HDL Cholesterol", "NON-HDL CHOL", "Non HDL Cholesterol"],
     [("mg/dL", "mg/dL")], [("lt", "130"), ("range", "0", "129")], 0, (88, 127), None, (134, 220))
_add("chol_si", "cholesterol", "14647-2", ["Cholesterol", "Total cholesterol", "CHOLESTEROL"], [("mmol/L", "mmol/L")],
     [("lt", "5.0"), ("lt", "5.2")], 1, (3.6, 4.9), None, (5.3, 7.4), si=True)
_add("hdl_si", "hdl", "14646-4", ["HDL cholesterol", "HDL-C", "HDL CHOLESTEROL"], [("mmol/L", "mmol/L")],
     [("gt", "1.0"), ("ge", "1.0"), ("gt", "1.00")], 2, (1.06, 2.1), (0.62, 0.96), None, si=True)
_add("ldl_si", "ldl", "39469-2", ["LDL cholesterol (calc)", "LDL-C (calculated)", "LDL CHOLESTEROL"],
     [("mmol/L", "mmol/L")], [("lt", "3.0"), ("lt", "3.4")], 1, (1.6, 2.9), None, (3.5, 5.4), si=True)
_add("tg_si", "triglycerides", "14927-8", ["Triglycerides", "TRIGLYCERIDES", "Triglyceride"], [("mmol/L", "mmol/L")],
     [("lt", "1.7"), ("lt", "1.70"), ("range", "0.4", "1.7")], 1, (0.7, 1.6), None, (1.8, 4.6), si=True)
# --- diabetes ------------------------------------------------------------------------------------
_add("a1c", "hba1c", "4548-4", ["Hemoglobin A1c", "HbA1c", "HEMOGLOBIN A1C", "Glycohemoglobin A1c", "A1C"],
     [("%", "%")], [("lt", "5.7"), ("range", "4.8", "5.6"), ("range", "4.0", "5.6")], 1, (4.9, 5.6), None, (5.8, 10.4))
_add("a1c_ifcc", "hba1c", "59261-8", ["HbA1c (IFCC)", "HbA1c", "Haemoglobin A1c (IFCC)", "HBA1C IFCC"],
     [("mmol/mol", "mmol/mol")], [("range", "20", "42"), ("lt", "42")], 0, (30, 41), None, (43, 92))
# --- thyroid -------------------------------------------------------------------------------------
_add("tsh", "tsh", "3016-3", ["TSH", "Thyroid Stimulating Hormone", "TSH, 3rd Generation", "THYROTROPIN (TSH)"], TSH_U,
     [("range", "0.45", "4.50"), ("range", "0.40", "4.00"), ("range", "0.27", "4.20")], 2, (0.7, 3.9), (0.03, 0.38),
     (4.8, 14.6), comps=[("<0.01", "L", 0.08)])
_add("tsh_uk", "tsh", "3016-3", ["TSH", "Thyroid stimulating hormone", "SERUM TSH"], [("mU/L", "m[IU]/L")],
     [("range", "0.27", "4.20"), ("range", "0.35", "4.94")], 2, (0.8, 3.8), (0.05, 0.25), (5.1, 12.0), si=True,
     comps=[("<0.01", "L", 0.08)])
_add("ft4", "free_t4", "3024-7", ["Free T4", "T4, Free", "FREE T4", "Thyroxine, Free (FT4)"], [("ng/dL", "ng/dL")],
     [("range", "0.82", "1.77"), ("range", "0.93", "1.70"), ("range", "0.89", "1.76")], 2, (0.95, 1.6), (0.45, 0.78),
     (1.85, 2.6))
_add("ft4_si", "free_t4", "14920-3", ["Free T4", "Free thyroxine", "FREE T4 (FT4)"], [("pmol/L", "pmol/L")],
     [("range", "12.0", "22.0"), ("range", "10.0", "19.8"), ("range", "9.0", "19.0")], 1, (12.5, 18.5), (6.0, 8.8),
     (22.5, 34.0), si=True)
_add("ft3", "free_t3", "3051-0", ["Free T3", "T3, Free", "FREE T3", "Triiodothyronine, Free"], [("pg/mL", "pg/mL")],
     [("range", "2.0", "4.4"), ("range", "2.3", "4.2")], 1, (2.5, 4.0), (1.4, 1.9), (4.6, 6.8))
# --- haematology -----------------------------------------------------------------------------
_add("wbc", "wbc", "6690-2", ["WBC", "White Blood Cell Count", "WBC Count", "White Blood Cells", "Leukocytes"], K_UL,
     [("range", "4.0", "10.5"), ("range", "3.4", "10.8"), ("range", "4.5", "11.0")], 1, (4.8, 9.6), (2.2, 3.3), (11.4, 18.6))
_add("wbc_si", "wbc", "6690-2", ["White cell count", "WBC", "WCC", "Leucocytes"], G_L,
     [("range", "4.0", "11.0"), ("range", "3.6", "10.5")], 1, (4.6, 9.8), (2.1, 3.4), (11.5, 17.9), si=True)
_add("rbc", "rbc", "789-8", ["RBC", "Red Blood Cell Count", "RBC Count", "Red Blood Cells"], M_UL,
     [sexed(("range", "3.77", "5.28"), ("range", "4.14", "5.80")), sexed(("range", "3.80", "5.10"), ("range", "4.30", "5.70"))],
     2, (4.2, 5.0), (3.1, 3.7), (5.9, 6.3))
_add("rbc_si", "rbc", "789-8", ["Red cell count", "RBC", "Erythrocytes"], T_L,
     [sexed(("range", "3.80", "5.10"), ("range", "4.40", "5.80"))], 2, (4.3, 5.0), (3.0, 3.7), None, si=True)
_add("hgb", "hgb", "718-7", ["Hemoglobin", "Hgb", "HEMOGLOBIN", "Hb"], [("g/dL", "g/dL")],
     [sexed(("range", "11.1", "15.9"), ("range", "13.0", "17.7")), sexed(("range", "12.0", "15.5"), ("range", "13.5", "17.5"))],
     1, (13.2, 15.2), (8.1, 10.9), (16.2, 17.6))
_add("hgb_gl", "hgb", "718-7", ["Haemoglobin", "Hb", "HAEMOGLOBIN", "Hemoglobin"], [("g/L", "g/L")],
     [sexed(("range", "115", "155"), ("range", "130", "170")), sexed(("range", "120", "150"), ("range", "130", "180"))],
     0, (132, 150), (82, 112), None, si=True)
_add("hct", "hct", "4544-3", ["Hematocrit", "Hct", "HEMATOCRIT", "HCT"], [("%", "%")],
     [sexed(("range", "34.0", "46.6"), ("range", "37.5", "51.0")), sexed(("range", "35.0", "45.0"), ("range", "39.0", "50.0"))],
     1, (39.0, 45.0), (25.0, 33.0), None)
_add("mcv", "mcv", "787-2", ["MCV", "Mean Corpuscular Volume", "MCV (Mean Cell Volume)"], [("fL", "fL")],
     [("range", "79", "97"), ("range", "80", "100"), ("range", "80.0", "98.0")], 0, (83, 95), (66, 77), (101, 112))
_add("mch", "mch", "785-6", ["MCH", "Mean Corpuscular Hemoglobin", "MCH (Mean Cell Hb)"], [("pg", "pg")],
     [("range", "26.6", "33.0"), ("range", "27.0", "33.0")], 1, (27.5, 32.4), (20.5, 25.9), (33.5, 36.0))
_add("mchc", "mchc", "786-4", ["MCHC", "Mean Corpuscular Hgb Conc", "MCHC (Mean Cell Hb Conc)"], [("g/dL", "g/dL")],
     [("range", "31.5", "35.7"), ("range", "32.0", "36.0")], 1, (32.2, 35.0), (28.4, 31.0), None)
_add("mchc_gl", "mchc", "786-4", ["MCHC", "Mean cell Hb conc"], [("g/L", "g/L")], [("range", "320", "360")], 0,
     (325, 355), (290, 315), None, si=True)
_add("rdw", "rdw", "788-0", ["RDW", "Red Cell Distribution Width", "RDW-CV"], [("%", "%")],
     [("range", "11.7", "15.4"), ("range", "11.5", "14.5")], 1, (12.0, 14.2), None, (15.8, 19.4))
_add("plt", "platelets", "777-3", ["Platelets", "Platelet Count", "PLT", "PLATELET COUNT"], K_UL,
     [("range", "150", "450"), ("range", "150", "379"), ("range", "140", "400")], 0, (170, 360), (62, 130), (470, 640))
_add("plt_si", "platelets", "777-3", ["Platelet count", "Platelets", "PLT"], G_L,
     [("range", "150", "400"), ("range", "140", "450")], 0, (175, 360), (70, 135), (460, 600), si=True)
_add("mpv", "mpv", "32623-1", ["MPV", "Mean Platelet Volume"], [("fL", "fL")],
     [("range", "7.4", "10.4"), ("range", "9.4", "12.4")], 1, None, None, None)
for _k, _an, _lp, _la, _nm, _rng, _rngabs in [
        ("neut", "neutrophils", "770-8", "751-8", ["Neutrophils", "Neut", "NEUTROPHILS", "Segs"], ("40", "74"), ("1.4", "7.0")),
        ("lymph", "lymphocytes", "736-9", "731-0", ["Lymphocytes", "Lymphs", "LYMPHOCYTES", "Lymph"], ("14", "46"), ("0.7", "3.1")),
        ("mono", "monocytes", "5905-5", "742-7", ["Monocytes", "Monos", "MONOCYTES", "Mono"], ("4", "12"), ("0.1", "0.9")),
        ("eos", "eosinophils", "713-8", "711-2", ["Eosinophils", "Eos", "EOSINOPHILS", "Eosin"], ("0", "7"), ("0.0", "0.4")),
        ("baso", "basophils", "706-2", "704-7", ["Basophils", "Basos", "BASOPHILS", "Baso"], ("0", "2"), ("0.0", "0.2"))]:
    # differential values are derived from the WBC count (see content.py), so no distributions here
    _add(_k + "_pct", _an + "_pct", _lp, [n + " %" for n in _nm[:2]] + [_nm[0] + " (%)", _nm[2] + " %"], [("%", "%")],
         [("range",) + _rng], 0)
    _add(_k + "_abs", _an + "_abs", _la, ["Absolute " + _nm[0], _nm[1] + " (Absolute)", _nm[0] + ", Absolute",
                                          _nm[2] + " ABS", "Abs " + _nm[1]], K_UL, [("range",) + _rngabs], 1)
    _add(_k + "_abs_si", _an + "_abs", _la, [_nm[0], _nm[0] + " count", _nm[2]], G_L, [("range",) + _rngabs], 1, si=True)
# --- iron, vitamins --------------------------------------------------------------------------
_add("iron", "iron", "2498-4", ["Iron", "Iron, Serum", "IRON", "Iron, Total"], UGDL,
     [sexed(("range", "27", "159"), ("range", "38", "169")), ("range", "50", "170")], 0, (62, 140), (12, 24), (175, 230))
_add("iron_si", "iron", "14798-3", ["Iron", "Serum iron", "IRON"], [("umol/L", "umol/L"), ("\u00b5mol/L", "umol/L")],
     [("range", "10", "30"), ("range", "9", "30")], 0, (12, 27), (3, 8), (32, 40), si=True)
_add("tibc", "tibc", "2500-7", ["TIBC", "Total Iron Binding Capacity", "Iron Binding Capacity (TIBC)"], UGDL,
     [("range", "250", "450"), ("range", "250", "425")], 0, (270, 410), (180, 240), (460, 560))
_add("tsat", "transferrin_saturation", "2502-3", ["Transferrin Saturation", "Iron Saturation", "% Saturation",
                                                   "TSAT"], [("%", "%")],
     [("range", "15", "55"), ("range", "20", "50")], 0, (21, 44), (4, 13), (58, 76))
_add("ferritin", "ferritin", "2276-4", ["Ferritin", "Ferritin, Serum", "FERRITIN"], FERR,
     [sexed(("range", "15", "150"), ("range", "30", "400")), sexed(("range", "13", "150"), ("range", "24", "336"))], 0,
     (42, 140), (3, 11), (420, 880))
_add("ferritin_si", "ferritin", "2276-4", ["Ferritin", "FERRITIN", "Serum ferritin"], [("ug/L", "ug/L"), ("\u00b5g/L", "ug/L")],
     [sexed(("range", "13", "150"), ("range", "30", "400"))], 0, (40, 140), (3, 11), (420, 800), si=True)
_add("vitd", "vitamin_d", "62292-8", ["Vitamin D, 25-Hydroxy", "25-OH Vitamin D", "VITAMIN D, 25-OH, TOTAL",
                                      "25-Hydroxyvitamin D"], [("ng/mL", "ng/mL")],
     [("range", "30.0", "100.0"), ("range", "30", "100")], 1, (31, 64), (8, 28), (104, 130))
_add("b12", "vitamin_b12", "2132-9", ["Vitamin B12", "Vitamin B-12", "VITAMIN B12", "Cobalamin (B12)"],
     [("pg/mL", "pg/mL")], [("range", "232", "1245"), ("range", "211", "911"), ("range", "200", "1100")], 0,
     (290, 860), (120, 195), (1300, 1800), comps=[(">2000", "H", 0.1)])
_add("folate", "folate", "2284-8", ["Folate", "Folate, Serum", "FOLATE", "Folic Acid"], [("ng/mL", "ng/mL")],
     [("gt", "3.0"), ("range", "2.7", "17.0"), ("gt", "5.4")], 1, (6.0, 16.5), (1.1, 2.5), None,
     comps=[(">24.0", "", 0.08)])
# --- coagulation -----------------------------------------------------------------------------
_add("pt", "pt", "5902-2", ["Prothrombin Time", "PT", "Protime", "PROTHROMBIN TIME"], SEC,
     [("range", "9.1", "12.0"), ("range", "11.0", "13.5"), ("range", "9.6", "11.8")], 1, None, None, None)
_add("inr", "inr", "6301-6", ["INR", "PT-INR", "INR (Prothrombin)"], [("", "")],
     [("range", "0.8", "1.2"), ("range", "0.9", "1.1")], 1, (0.9, 1.1), None, (1.6, 3.6))
_add("aptt", "aptt", "3173-2", ["aPTT", "PTT", "Activated PTT", "APTT"], SEC,
     [("range", "24", "33"), ("range", "25.0", "36.5"), ("range", "22.0", "35.0")], 1, (26, 32), None, (38, 62))
# --- inflammation / cardiac ------------------------------------------------------------------
_add("crp", "crp", "1988-5", ["C-Reactive Protein", "CRP", "C REACTIVE PROTEIN", "C-Reactive Protein, Quant"],
     [("mg/L", "mg/L")], [("lt", "5.0"), ("range", "0.0", "4.9"), ("lt", "10")], 1, (0.6, 4.6), None, (11, 148),
     comps=[("<0.5", "", 0.15)])
_add("hscrp", "hs_crp", "30522-7", ["hs-CRP", "C-Reactive Protein, Cardiac", "HS CRP"], [("mg/L", "mg/L")],
     [("range", "0.00", "3.00"), ("lt", "3.00")], 2, (0.2, 2.8), None, (3.2, 9.5))
_add("esr", "esr", "4537-7", ["Sed Rate, Westergren", "ESR (Westergren)", "SED RATE BY MODIFIED WESTERGREN",
                              "Erythrocyte Sed Rate, Westergren"], [("mm/hr", "mm/h"), ("mm/h", "mm/h")],
     [("range", "0", "20"), ("range", "0", "30"), ("range", "0", "15")], 0, (2, 14), None, (34, 88))
_add("tni", "troponin_i", "10839-9", ["Troponin I", "Troponin I, Cardiac", "TROPONIN I"], [("ng/mL", "ng/mL")],
     [("lt", "0.04"), ("range", "0.00", "0.04")], 2, (0.01, 0.03), None, (0.08, 2.4),
     comps=[("<0.01", "", 0.45)])
_add("hstnt", "troponin_t_hs", "67151-1", ["Troponin T, high sensitivity", "hs-Troponin T", "HS TROPONIN T"],
     [("ng/L", "ng/L")], [("lt", "14"), ("range", "0", "14")], 0, (7, 13), None, (19, 240), comps=[("<6", "", 0.35)])
_add("hstni", "troponin_i_hs", "89579-7", ["Troponin I, high sensitivity", "hs-Troponin I", "HS-TNI"],
     [("ng/L", "ng/L")], [("lt", "26"), ("range", "0", "34")], 0, (4, 20), None, (45, 1200), comps=[("<3", "", 0.3)])
_add("bnp", "bnp", "30934-4", ["BNP", "B-Type Natriuretic Peptide", "BNP (B-type natriuretic peptide)"],
     [("pg/mL", "pg/mL")], [("lt", "100"), ("range", "0", "100")], 0, (12, 88), None, (140, 1650))
_add("ntprobnp", "nt_probnp", "33762-6", ["NT-proBNP", "NT-PRO BNP", "N-terminal pro-BNP"], [("pg/mL", "pg/mL"),
                                                                                          ("ng/L", "ng/L")],
     [("lt", "125"), ("range", "0", "125"), ("lt", "300")], 0, (30, 118), None, (420, 6200))
_add("psa", "psa", "2857-1", ["PSA", "PSA, Total", "Prostate Specific Ag", "PSA (Total)"], [("ng/mL", "ng/mL")],
     [("range", "0.0", "4.0"), ("lt", "4.0"), ("range", "0.00", "4.00")], 2, (0.3, 3.6), None, (4.3, 11.8),
     comps=[("<0.10", "", 0.12)])
# --- urinalysis -----------------------------------------------------------------------------
_add("u_sg", "urine_sg", "5811-5", ["Specific Gravity", "Sp. Gravity", "SPECIFIC GRAVITY", "Urine Specific Gravity"],
     [("", "")], [("range", "1.005", "1.030"), ("range", "1.003", "1.030")], 3, (1.008, 1.027), None, (1.031, 1.035))
_add("u_ph", "urine_ph", "5803-2", ["pH", "Urine pH", "PH"], [("", "")], [("range", "5.0", "8.0"), ("range", "4.5", "8.0")],
     1, (5.5, 7.5), None, None)
for _k, _nm, _lc, _abn in [
        ("u_protein", ["Protein", "Urine Protein", "PROTEIN", "Protein, UA"], "20454-5", ["Trace", "1+", "2+", "3+"]),
        ("u_glucose", ["Glucose", "Urine Glucose", "GLUCOSE", "Glucose, UA"], "25428-4", ["Trace", "1+", "2+", "Positive"]),
        ("u_ketones", ["Ketones", "Urine Ketones", "KETONES", "Ketone"], "2514-8", ["Trace", "1+"]),
        ("u_blood", ["Blood", "Occult Blood", "BLOOD", "Hemoglobin, UA"], "5794-3", ["Trace", "1+", "2+", "Positive"]),
        ("u_nitrite", ["Nitrite", "Urine Nitrite", "NITRITE", "Nitrites"], "5802-4", ["Positive"]),
        ("u_le", ["Leukocyte Esterase", "Leuk Esterase", "LEUKOCYTE ESTERASE", "Leukocytes"], "5799-2", ["Trace", "1+", "2+"]),
        ("u_bili", ["Bilirubin", "Urine Bilirubin", "BILIRUBIN"], "5770-3", ["1+", "Positive"])]:
    _add(_k, _k.replace("u_", "urine_"), _lc, _nm, [("", "")], [("qual", "Negative")], 0, qual=("Negative", _abn))

# ---------------------------------------------------------------------------
# panels: (heading variants, analyte keys, optional keys)
# ---------------------------------------------------------------------------
PANELS = {
    "cmp": (["Comprehensive Metabolic Panel", "CMP", "COMP METABOLIC PANEL (14)", "Metabolic Panel, Comprehensive"],
            ["glucose", "bun", "creatinine", "egfr", "sodium", "potassium", "chloride", "co2", "calcium", "protein",
             "albumin", "bilirubin", "alp", "ast", "alt"], ["globulin"]),
    "bmp": (["Basic Metabolic Panel", "BMP", "BASIC METABOLIC PANEL (8)", "Chem 8"],
            ["glucose", "bun", "creatinine", "sodium", "potassium", "chloride", "co2", "calcium"], ["egfr"]),
    "renal": (["Renal Function Panel", "RENAL PANEL", "Kidney Function Panel"],
              ["glucose", "bun", "creatinine", "egfr", "sodium", "potassium", "chloride", "co2", "calcium", "phosphorus",
               "albumin"], []),
    "hepatic": (["Hepatic Function Panel", "LIVER PANEL", "Hepatic Function Panel (7)", "Liver Function Tests"],
                ["protein", "albumin", "bilirubin", "bili_direct", "alp", "ast", "alt"], ["ggt"]),
    "lytes": (["Electrolyte Panel", "ELECTROLYTES", "Electrolytes"], ["sodium", "potassium", "chloride", "co2"],
              ["magnesium"]),
    "lipid": (["Lipid Panel", "LIPID PANEL", "Lipid Profile", "Lipid Panel w/ Calc LDL"], ["chol", "tg", "hdl", "ldl"],
              ["nonhdl"]),
    "a1c": (["Hemoglobin A1c", "HEMOGLOBIN A1C", "Glycohemoglobin", "Diabetes Monitoring"], ["a1c"], ["a1c_ifcc"]),
    "thyroid": (["Thyroid Panel", "THYROID FUNCTION", "TSH + Free T4", "Thyroid Studies"], ["tsh", "ft4"], ["ft3"]),
    "cbc": (["CBC With Differential/Platelet", "CBC W/ AUTO DIFF", "Complete Blood Count with Differential",
             "Hemogram with Diff"],
            ["wbc", "rbc", "hgb", "hct", "mcv", "mch", "mchc", "rdw", "plt", "neut_pct", "lymph_pct", "mono_pct",
             "eos_pct", "baso_pct", "neut_abs", "lymph_abs", "mono_abs", "eos_abs", "baso_abs"], ["mpv"]),
    "cbc_nodiff": (["CBC", "Complete Blood Count", "CBC (NO DIFF)", "Hemogram"],
                   ["wbc", "rbc", "hgb", "hct", "mcv", "mch", "mchc", "rdw", "plt"], ["mpv"]),
    "iron": (["Iron Studies", "IRON AND TIBC", "Iron Panel", "Iron, TIBC and Ferritin Panel"],
             ["iron", "tibc", "tsat", "ferritin"], []),
    "anemia": (["Anemia Panel", "B12 AND FOLATE", "Vitamin B12 and Folate"], ["b12", "folate"], ["ferritin"]),
    "vitd": (["Vitamin D", "VITAMIN D, 25-HYDROXY", "25-Hydroxy Vitamin D"], ["vitd"], []),
    "coag": (["Coagulation", "PT/INR AND PTT", "Coagulation Panel", "PROTIME-INR"], ["pt", "inr"], ["aptt"]),
    "inflam": (["Inflammatory Markers", "CRP AND SED RATE", "Inflammation"], ["crp", "esr"], []),
    "cardiac": (["Cardiac Markers", "CARDIAC PANEL", "Cardiac Biomarkers"], ["tni", "bnp"], ["ck"]),
    "cardiac_hs": (["Cardiac Markers", "CARDIAC BIOMARKERS", "Chest Pain Panel"], ["hstnt", "ntprobnp"], ["ck"]),
    "ua": (["Urinalysis", "URINALYSIS, ROUTINE", "Urinalysis, Dipstick", "UA, Complete"],
           ["u_sg", "u_ph", "u_protein", "u_glucose", "u_ketones", "u_blood", "u_nitrite", "u_le"], ["u_bili"]),
    "psa": (["Prostate Specific Antigen", "PSA, TOTAL", "PSA Screen"], ["psa"], []),
    "minerals": (["Magnesium and Phosphorus", "MINERALS", "Mg / Phos / Uric Acid"], ["magnesium", "phosphorus"],
                 ["uric_acid"]),
    "enzymes": (["Enzymes", "PANCREATIC ENZYMES", "Amylase and Lipase"], ["amylase", "lipase"], ["ldh", "ck", "ggt"]),
    "gout": (["Uric Acid", "URIC ACID"], ["uric_acid"], []),
    # international / SI panels
    "ue": (["Urea & Electrolytes", "U&E", "RENAL PROFILE", "Urea and electrolytes"],
           ["sodium", "potassium", "urea_si", "creatinine_si", "egfr"], ["bicarbonate_si"]),
    "lft": (["Liver function tests", "LFT", "LIVER PROFILE", "Liver Function"],
            ["bilirubin_si", "alt", "alp", "ggt", "albumin_gl"], ["protein_gl"]),
    "bone": (["Bone profile", "BONE PROFILE", "Calcium, phosphate"], ["calcium_si", "phosphate_si", "albumin_gl", "alp"], []),
    "lipid_si": (["Lipid profile", "LIPIDS", "Lipid Profile (fasting)"], ["chol_si", "hdl_si", "ldl_si", "tg_si"], []),
    "a1c_si": (["HbA1c", "HAEMOGLOBIN A1c", "Glycated haemoglobin"], ["a1c_ifcc"], ["a1c"]),
    "fbc": (["Full blood count", "FBC", "FULL BLOOD COUNT", "Haematology"],
            ["hgb_gl", "wbc_si", "plt_si", "rbc_si", "mcv", "mch", "neut_abs_si", "lymph_abs_si", "mono_abs_si",
             "eos_abs_si", "baso_abs_si"], ["mchc_gl"]),
    "tft": (["Thyroid function", "TFT", "THYROID FUNCTION TESTS"], ["tsh_uk", "ft4_si"], []),
    "misc_si": (["Biochemistry", "CHEMISTRY", "Other tests"], ["glucose_si", "magnesium_si", "urate_si", "crp"], []),
    "iron_si": (["Iron studies", "IRON STUDIES", "Haematinics"], ["iron_si", "ferritin_si", "tsat"], ["b12", "folate"]),
}
US_PANELS = ["cmp", "bmp", "renal", "hepatic", "lytes", "lipid", "a1c", "thyroid", "cbc", "cbc_nodiff", "iron", "anemia",
             "vitd", "coag", "inflam", "cardiac", "cardiac_hs", "ua", "psa", "minerals", "enzymes", "gout"]
SI_PANELS = ["ue", "lft", "bone", "lipid_si", "a1c_si", "fbc", "tft", "misc_si", "iron_si", "inflam"]
# panels that fill a page on their own
BIG_PANELS = {"cmp", "cbc", "renal", "ua", "fbc"}

# cumulative (trend) reports: the analytes followed over time
CUMULATIVE_SETS = [
    ("Renal function trend", ["creatinine", "egfr", "potassium", "bun", "hgb"]),
    ("Diabetes monitoring", ["a1c", "glucose", "creatinine", "ldl"]),
    ("Anticoagulation clinic", ["inr", "pt", "hgb"]),
    ("Lipid management", ["chol", "ldl", "hdl", "tg", "alt"]),
    ("Thyroid follow-up", ["tsh", "ft4"]),
    ("Renal profile", ["sodium", "potassium", "urea_si", "creatinine_si", "egfr", "hgb_gl"]),
    ("Liver enzymes", ["alt", "ast", "alp", "ggt", "bilirubin"]),
    ("Anaemia follow-up", ["hgb", "mcv", "ferritin", "plt"]),
]

# ---------------------------------------------------------------------------
# diagnoses: code -> (official description, [short / clinical forms])
# ---------------------------------------------------------------------------
CONDITIONS = {
    "I10": ("Essential (primary) hypertension", ["HTN", "Hypertension", "Essential hypertension", "Benign essential HTN"]),
    "E11.9": ("Type 2 diabetes mellitus without complications", ["T2DM", "Type 2 diabetes", "DM2", "Diabetes mellitus type 2",
                                                                   "NIDDM"]),
    "E11.65": ("Type 2 diabetes mellitus with hyperglycemia", ["T2DM, uncontrolled (hyperglycemia)",
                                                               "Type 2 diabetes with hyperglycemia"]),
    "E78.5": ("Hyperlipidemia, unspecified", ["HLD", "Hyperlipidemia", "Dyslipidemia"]),
    "E78.00": ("Pure hypercholesterolemia, unspecified", ["Hypercholesterolemia", "High cholesterol"]),
    "E78.2": ("Mixed hyperlipidemia", ["Mixed HLD", "Mixed dyslipidemia"]),
    "K21.9": ("Gastro-esophageal reflux disease without esophagitis", ["GERD", "Acid reflux (GERD)", "Reflux"]),
    "N18.31": ("Chronic kidney disease, stage 3a", ["CKD 3a", "CKD stage 3a", "Stage 3a CKD"]),
    "N18.32": ("Chronic kidney disease, stage 3b", ["CKD 3b", "CKD stage 3b", "Stage 3b chronic kidney disease"]),
    "N18.4": ("Chronic kidney disease, stage 4 (severe)", ["CKD 4", "CKD stage 4"]),
    "I48.91": ("Unspecified atrial fibrillation", ["AFib", "A-fib", "Atrial fibrillation", "AF"]),
    "I48.0": ("Paroxysmal atrial fibrillation", ["Paroxysmal AFib", "PAF"]),
    "J44.9": ("Chronic obstructive pulmonary disease, unspecified", ["COPD", "Chronic obstructive lung disease"]),
    "G47.33": ("Obstructive sleep apnea (adult) (pediatric)", ["OSA", "Obstructive sleep apnea", "OSA on CPAP"]),
    "N40.0": ("Benign prostatic hyperplasia without lower urinary tract symptoms", ["BPH", "Enlarged prostate (BPH)"]),
    "N40.1": ("Benign prostatic hyperplasia with lower urinary tract symptoms", ["BPH with LUTS"]),
    "E03.9": ("Hypothyroidism, unspecified", ["Hypothyroidism", "Hypothyroid", "Primary hypothyroidism"]),
    "M17.11": ("Unilateral primary osteoarthritis, right knee", ["Right knee OA", "OA of right knee", "OA R knee"]),
    "M17.12": ("Unilateral primary osteoarthritis, left knee", ["Left knee OA", "OA of left knee", "OA L knee"]),
    "M17.0": ("Bilateral primary osteoarthritis of knee", ["Bilateral knee OA", "OA of both knees"]),
    "F32.9": ("Major depressive disorder, single episode, unspecified", ["MDD", "Major depression", "MDD, single episode"]),
    "F33.1": ("Major depressive disorder, recurrent, moderate", ["MDD, recurrent, moderate", "Recurrent MDD, moderate"]),
    "F41.1": ("Generalized anxiety disorder", ["GAD", "Generalized anxiety"]),
    "J45.909": ("Unspecified asthma, uncomplicated", ["Asthma", "Asthma, uncomplicated"]),
    "J45.20": ("Mild intermittent asthma, uncomplicated", ["Mild intermittent asthma"]),
    "E66.9": ("Obesity, unspecified", ["Obesity"]),
    "E55.9": ("Vitamin D deficiency, unspecified", ["Vitamin D deficiency", "Vit D deficiency", "Low vitamin D"]),
    "D50.9": ("Iron deficiency anemia, unspecified", ["Iron deficiency anemia", "IDA", "Iron-deficiency anaemia"]),
    "I25.10": ("Atherosclerotic heart disease of native coronary artery without angina pectoris", ["CAD", "Coronary artery disease"]),
    "I50.22": ("Chronic systolic (congestive) heart failure", ["Chronic systolic CHF", "HFrEF, chronic"]),
    "G43.909": ("Migraine, unspecified, not intractable, without status migrainosus", ["Migraine", "Migraines"]),
    "J30.9": ("Allergic rhinitis, unspecified", ["Allergic rhinitis", "Seasonal allergies"]),
    "R73.03": ("Prediabetes", ["Prediabetes", "Pre-diabetes"]),
    "M81.0": ("Age-related osteoporosis without current pathological fracture", ["Osteoporosis"]),
    "G47.00": ("Insomnia, unspecified", ["Insomnia"]),
    "K76.0": ("Fatty (change of) liver, not elsewhere classified", ["Fatty liver", "Hepatic steatosis", "NAFLD"]),
    "F17.210": ("Nicotine dependence, cigarettes, uncomplicated", ["Tobacco use (cigarettes)", "Current smoker"]),
    "M10.9": ("Gout, unspecified", ["Gout"]),
    "K58.9": ("Irritable bowel syndrome, unspecified", ["IBS", "Irritable bowel syndrome"]),
    "M54.50": ("Low back pain, unspecified", ["LBP", "Low back pain", "Chronic low back pain"]),
    "D64.9": ("Anemia, unspecified", ["Anemia"]),
    "L40.0": ("Psoriasis vulgaris", ["Psoriasis"]),
    "E87.1": ("Hypo-osmolality and hyponatremia", ["Hyponatremia"]),
    # acute (visits, admissions)
    "J06.9": ("Acute upper respiratory infection, unspecified", ["URI", "Upper respiratory infection"]),
    "N39.0": ("Urinary tract infection, site not specified", ["UTI", "Urinary tract infection"]),
    "J18.9": ("Pneumonia, unspecified organism", ["Pneumonia", "Community-acquired pneumonia", "CAP"]),
    "J44.1": ("Chronic obstructive pulmonary disease with (acute) exacerbation", ["COPD exacerbation", "AECOPD"]),
    "I50.23": ("Acute on chronic systolic (congestive) heart failure", ["Acute on chronic systolic CHF",
                                                                        "Acute on chronic HFrEF"]),
    "L03.116": ("Cellulitis of left lower limb", ["Cellulitis, left leg", "LLE cellulitis"]),
    "L03.115": ("Cellulitis of right lower limb", ["Cellulitis, right leg", "RLE cellulitis"]),
    "K85.90": ("Acute pancreatitis without necrosis or infection, unspecified", ["Acute pancreatitis"]),
    "I21.4": ("Non-ST elevation (NSTEMI) myocardial infarction", ["NSTEMI"]),
    "N17.9": ("Acute kidney failure, unspecified", ["AKI", "Acute kidney injury"]),
    "K57.32": ("Diverticulitis of large intestine without perforation or abscess without bleeding",
               ["Diverticulitis", "Sigmoid diverticulitis"]),
    "N10": ("Acute pyelonephritis", ["Pyelonephritis", "Acute pyelonephritis"]),
    "E86.0": ("Dehydration", ["Dehydration"]),
    "M25.561": ("Pain in right knee", ["Right knee pain"]),
    "J02.9": ("Acute pharyngitis, unspecified", ["Pharyngitis", "Sore throat (pharyngitis)"]),
}
# BMI codes printed next to obesity (only when the code is printed): Z68.30 ... Z68.39
BMI_DESC = {f"Z68.{n}": f"Body mass index [BMI] {n}.0-{n}.9, adult" for n in range(30, 40)}

CHRONIC = ["I10", "E11.9", "E11.65", "E78.5", "E78.00", "E78.2", "K21.9", "N18.31", "N18.32", "N18.4", "I48.91", "I48.0",
           "J44.9", "G47.33", "N40.0", "N40.1", "E03.9", "M17.11", "M17.12", "M17.0", "F32.9", "F33.1", "F41.1",
           "J45.909", "J45.20", "E66.9", "E55.9", "D50.9", "I25.10", "I50.22", "G43.909", "J30.9", "R73.03", "M81.0",
           "G47.00", "K76.0", "F17.210", "M10.9", "K58.9", "M54.50", "L40.0"]
MALE_ONLY = {"N40.0", "N40.1"}
VISIT_ACUTE = ["J06.9", "N39.0", "M25.561", "J02.9", "E86.0"]
ADMISSION = ["J18.9", "J44.1", "I50.23", "L03.116", "L03.115", "K85.90", "I21.4", "N17.9", "K57.32", "N10", "N39.0"]
# mutually exclusive groups (one diagnosis per group in one document)
EXCLUSIVE = [{"E11.9", "E11.65", "R73.03"}, {"E78.5", "E78.00", "E78.2"}, {"N18.31", "N18.32", "N18.4", "N17.9"},
             {"I48.91", "I48.0"}, {"J44.9", "J44.1", "J45.909", "J45.20"}, {"N40.0", "N40.1"},
             {"M17.11", "M17.12", "M17.0", "M25.561"}, {"F32.9", "F33.1"}, {"I50.22", "I50.23"},
             {"L03.116", "L03.115"}, {"D50.9", "D64.9"}, {"N39.0", "N10"}]

# ---------------------------------------------------------------------------
# mentions that must not become conditions
# ---------------------------------------------------------------------------
# denied symptoms: text, code, also-codes
SYMPTOMS = [("chest pain", "R07.9", []), ("shortness of breath", "R06.02", []), ("fever", "R50.9", []),
            ("nausea", "R11.0", []), ("vomiting", "R11.10", []), ("abdominal pain", "R10.9", []),
            ("headache", "R51.9", []), ("dizziness", "R42", []), ("syncope", "R55", []), ("palpitations", "R00.2", []),
            ("leg swelling", "R60.0", []), ("unintentional weight loss", "R63.4", []), ("cough", "R05.9", []),
            ("dysuria", "R30.0", []), ("hematuria", "R31.9", []), ("diarrhea", "R19.7", []), ("chills", "R68.83", []),
            ("constipation", "K59.00", [])]
# ruled-out findings: (sentence template with {x}, text, code, also)
RULED_OUT = [("CT angiogram of the chest was negative for {x}.", "pulmonary embolism", "I26.99", []),
             ("Serial troponins were negative; {x} was ruled out.", "myocardial infarction", "I21.9", ["I25.2"]),
             ("Chest x-ray showed no evidence of {x}.", "pneumonia", "J18.9", []),
             ("Blood cultures showed no growth; no evidence of {x}.", "sepsis", "A41.9", []),
             ("Venous duplex of both legs was negative for {x}.", "DVT", "I82.409", []),
             ("MRI brain: no evidence of acute {x}.", "stroke", "I63.9", ["Z86.73"]),
             ("Rapid antigen test negative for {x}.", "COVID-19", "U07.1", []),
             ("Rapid strep test negative; {x} ruled out.", "strep pharyngitis", "J02.0", []),
             ("Renal function stable; no {x}.", "acute kidney injury", "N17.9", []),
             ("Stool guaiac negative; no signs of {x}.", "GI bleeding", "K92.2", []),
             ("Imaging negative for {x}.", "malignancy", "C80.1", []),
             ("Influenza A/B PCR negative; {x} ruled out.", "influenza", "J11.1", [])]
NO_HISTORY = [("stroke", "I63.9", ["Z86.73"]), ("seizures", "R56.9", ["G40.909"]), ("myocardial infarction", "I21.9", ["I25.2"]),
              ("DVT", "I82.409", []), ("kidney stones", "N20.0", [])]
# family history: (relative phrase templates) text, code
FAMILY = [("breast cancer", "C50.919"), ("colon cancer", "C18.9"), ("prostate cancer", "C61"), ("MI", "I21.9"),
          ("type 2 diabetes", "E11.9"), ("stroke", "I63.9"), ("Alzheimer's disease", "G30.9"), ("lung cancer", "C34.90"),
          ("ovarian cancer", "C56.9"), ("hypothyroidism", "E03.9"), ("hypertension", "I10"), ("CAD", "I25.10")]
# hypothetical (return precautions): sentence, text, code
HYPOTHETICAL = [("Return if fever develops.", "fever", "R50.9"), ("Call the office if chest pain recurs.", "chest pain", "R07.9"),
                ("Seek care right away for worsening shortness of breath.", "shortness of breath", "R06.02"),
                ("Stop the medication and call if a rash develops.", "rash", "R21"),
                ("Watch for signs of bleeding (black stools, bruising).", "bleeding", "R58"),
                ("Report any new muscle pain.", "muscle pain", "M79.10"),
                ("Check sugars if symptoms of hypoglycemia occur.", "hypoglycemia", "E16.2"),
                ("Return to the ED if vomiting prevents taking fluids.", "vomiting", "R11.10")]
# past, resolved conditions: sentence, text, code
HISTORICAL = [("History of kidney stones, none since 2016.", "kidney stones", "N20.0"),
              ("Remote history of DVT after knee surgery, completed anticoagulation.", "DVT", "I82.409"),
              ("Pneumonia in 2019, resolved.", "pneumonia", "J18.9"),
              ("Surgical history: appendectomy for appendicitis (2009).", "appendicitis", "K37"),
              ("Prior C. difficile infection (2021), treated.", "C. difficile infection", "A04.72"),
              ("Past history of Bell's palsy, fully recovered.", "Bell's palsy", "G51.0")]

# ---------------------------------------------------------------------------
# medications: key -> generic name (truth), printed generic, brand, strengths, form, sigs (long, short)
# ---------------------------------------------------------------------------
M = {}


def _m(key, name, printed, brand, strengths, form, sigs, cls="chronic"):
    M[key] = dict(name=name, printed=printed, brand=brand, strengths=strengths, form=form, sigs=sigs, cls=cls)


_m("lisinopril", "lisinopril", "lisinopril", "Zestril", ["10 mg", "20 mg", "40 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("losartan", "losartan", "losartan potassium", "Cozaar", ["25 mg", "50 mg", "100 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO QD")])
_m("amlodipine", "amlodipine", "amlodipine besylate", "Norvasc", ["5 mg", "10 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("hctz", "hydrochlorothiazide", "hydrochlorothiazide", None, ["12.5 mg", "25 mg"], "tablet",
   [("Take 1 tablet by mouth every morning", "1 tab PO QAM")])
_m("metoprolol", "metoprolol", "metoprolol succinate ER", "Toprol XL", ["25 mg", "50 mg", "100 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("metoprolol_t", "metoprolol", "metoprolol tartrate", "Lopressor", ["25 mg", "50 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily", "1 tab PO BID")])
_m("carvedilol", "carvedilol", "carvedilol", "Coreg", ["6.25 mg", "12.5 mg", "25 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily with food", "1 tab PO BID w/ food")])
_m("atorvastatin", "atorvastatin", "atorvastatin", "Lipitor", ["10 mg", "20 mg", "40 mg", "80 mg"], "tablet",
   [("Take 1 tablet by mouth at bedtime", "1 tab PO QHS")])
_m("rosuvastatin", "rosuvastatin", "rosuvastatin", "Crestor", ["5 mg", "10 mg", "20 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("simvastatin", "simvastatin", "simvastatin", "Zocor", ["20 mg", "40 mg"], "tablet",
   [("Take 1 tablet by mouth every evening", "1 tab PO QPM")])
_m("metformin", "metformin", "metformin", "Glucophage", ["500 mg", "850 mg", "1000 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily with meals", "1 tab PO BID with meals")])
_m("metformin_er", "metformin", "metformin ER", "Glucophage XR", ["500 mg", "750 mg"], "tablet",
   [("Take 2 tablets by mouth with the evening meal", "2 tabs PO with evening meal")])
_m("glipizide", "glipizide", "glipizide", "Glucotrol", ["5 mg", "10 mg"], "tablet",
   [("Take 1 tablet by mouth every morning before breakfast", "1 tab PO QAM AC")])
_m("semaglutide", "semaglutide", "semaglutide", "Ozempic", ["0.5 mg", "1 mg"], "pen injector",
   [("Inject 0.5 mg under the skin once weekly", "inject subcut once weekly")])
_m("empagliflozin", "empagliflozin", "empagliflozin", "Jardiance", ["10 mg", "25 mg"], "tablet",
   [("Take 1 tablet by mouth every morning", "1 tab PO QAM")])
_m("glargine", "insulin glargine", "insulin glargine", "Lantus", ["100 units/mL"], "pen injector",
   [("Inject 22 units under the skin at bedtime", "22 units subcut QHS")])
_m("levothyroxine", "levothyroxine", "levothyroxine", "Synthroid", ["50 mcg", "75 mcg", "88 mcg", "100 mcg"], "tablet",
   [("Take 1 tablet by mouth every morning on an empty stomach", "1 tab PO QAM on empty stomach")])
_m("omeprazole", "omeprazole", "omeprazole DR", "Prilosec", ["20 mg", "40 mg"], "capsule",
   [("Take 1 capsule by mouth daily before breakfast", "1 cap PO daily AC breakfast")])
_m("pantoprazole", "pantoprazole", "pantoprazole", "Protonix", ["40 mg"], "tablet",
   [("Take 1 tablet by mouth once daily before breakfast", "1 tab PO daily AC")])
_m("sertraline", "sertraline", "sertraline", "Zoloft", ["50 mg", "100 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("escitalopram", "escitalopram", "escitalopram", "Lexapro", ["10 mg", "20 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO QD")])
_m("bupropion", "bupropion", "bupropion XL", "Wellbutrin XL", ["150 mg", "300 mg"], "tablet",
   [("Take 1 tablet by mouth every morning", "1 tab PO QAM")])
_m("buspirone", "buspirone", "buspirone", "Buspar", ["10 mg", "15 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily", "1 tab PO BID")])
_m("apixaban", "apixaban", "apixaban", "Eliquis", ["5 mg", "2.5 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily", "1 tab PO BID")])
_m("warfarin", "warfarin", "warfarin", "Coumadin", ["5 mg", "2.5 mg"], "tablet",
   [("Take as directed by the anticoagulation clinic", "1 tab PO daily or as directed per INR")])
_m("aspirin", "aspirin", "aspirin", None, ["81 mg"], "chewable tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("clopidogrel", "clopidogrel", "clopidogrel", "Plavix", ["75 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("furosemide", "furosemide", "furosemide", "Lasix", ["20 mg", "40 mg"], "tablet",
   [("Take 1 tablet by mouth every morning", "1 tab PO QAM")])
_m("spironolactone", "spironolactone", "spironolactone", "Aldactone", ["25 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("tamsulosin", "tamsulosin", "tamsulosin", "Flomax", ["0.4 mg"], "capsule",
   [("Take 1 capsule by mouth 30 minutes after the same meal each day", "1 cap PO QHS")])
_m("finasteride", "finasteride", "finasteride", "Proscar", ["5 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("allopurinol", "allopurinol", "allopurinol", "Zyloprim", ["100 mg", "300 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("gabapentin", "gabapentin", "gabapentin", "Neurontin", ["300 mg", "100 mg"], "capsule",
   [("Take 1 capsule by mouth three times daily", "1 cap PO TID")])
_m("montelukast", "montelukast", "montelukast", "Singulair", ["10 mg"], "tablet",
   [("Take 1 tablet by mouth every evening", "1 tab PO QHS")])
_m("albuterol", "albuterol", "albuterol sulfate HFA", "ProAir HFA", ["90 mcg/actuation"], "inhaler",
   [("Inhale 2 puffs every 4 to 6 hours as needed for wheezing", "2 puffs INH q4-6h PRN wheeze")], cls="prn")
_m("fluticasone_nasal", "fluticasone", "fluticasone propionate nasal", "Flonase", ["50 mcg/spray"], "nasal spray",
   [("Use 2 sprays in each nostril once daily", "2 sprays each nostril daily")])
_m("tiotropium", "tiotropium", "tiotropium", "Spiriva HandiHaler", ["18 mcg"], "inhalation capsule",
   [("Inhale the contents of 1 capsule once daily", "1 cap INH daily")])
_m("cholecalciferol", "cholecalciferol", "cholecalciferol (vitamin D3)", None, ["1,000 units", "2,000 units", "50,000 units"],
   "tablet", [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("ferrous_sulfate", "ferrous sulfate", "ferrous sulfate", None, ["325 mg"], "tablet",
   [("Take 1 tablet by mouth once daily with orange juice", "1 tab PO daily")])
_m("cyanocobalamin", "cyanocobalamin", "cyanocobalamin (vitamin B12)", None, ["1,000 mcg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("acetaminophen", "acetaminophen", "acetaminophen", "Tylenol", ["500 mg", "650 mg"], "tablet",
   [("Take 1 to 2 tablets by mouth every 6 hours as needed for pain, max 3 g/day", "1-2 tabs PO q6h PRN pain")], cls="prn")
_m("ondansetron", "ondansetron", "ondansetron ODT", "Zofran ODT", ["4 mg"], "disintegrating tablet",
   [("Dissolve 1 tablet on the tongue every 8 hours as needed for nausea", "1 tab SL q8h PRN nausea")], cls="prn")
_m("cyclobenzaprine", "cyclobenzaprine", "cyclobenzaprine", "Flexeril", ["5 mg", "10 mg"], "tablet",
   [("Take 1 tablet by mouth at bedtime as needed for muscle spasm", "1 tab PO QHS PRN spasm")], cls="prn")
_m("sumatriptan", "sumatriptan", "sumatriptan", "Imitrex", ["50 mg", "100 mg"], "tablet",
   [("Take 1 tablet at migraine onset; may repeat once after 2 hours", "1 tab PO PRN migraine, may repeat x1 in 2h")],
   cls="prn")
_m("meloxicam", "meloxicam", "meloxicam", "Mobic", ["7.5 mg", "15 mg"], "tablet",
   [("Take 1 tablet by mouth once daily with food", "1 tab PO daily with food")])
_m("trazodone", "trazodone", "trazodone", "Desyrel", ["50 mg"], "tablet",
   [("Take 1 tablet by mouth at bedtime as needed for sleep", "1 tab PO QHS PRN insomnia")], cls="prn")
# combination products
_m("lisinopril_hctz", "lisinopril-hydrochlorothiazide", "lisinopril-hydrochlorothiazide", "Zestoretic",
   ["20-12.5 mg", "20-25 mg"], "tablet", [("Take 1 tablet by mouth once daily", "1 tab PO daily")])
_m("losartan_hctz", "losartan-hydrochlorothiazide", "losartan-HCTZ", "Hyzaar", ["50-12.5 mg", "100-25 mg"], "tablet",
   [("Take 1 tablet by mouth once daily", "1 tab PO QD")])
_m("amlodipine_benazepril", "amlodipine-benazepril", "amlodipine-benazepril", "Lotrel", ["5-20 mg", "10-20 mg"], "capsule",
   [("Take 1 capsule by mouth once daily", "1 cap PO daily")])
_m("sacubitril_valsartan", "sacubitril-valsartan", "sacubitril-valsartan", "Entresto", ["24-26 mg", "49-51 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily", "1 tab PO BID")])
_m("sitagliptin_metformin", "sitagliptin-metformin", "sitagliptin-metformin", "Janumet", ["50-1000 mg", "50-500 mg"],
   "tablet", [("Take 1 tablet by mouth twice daily with meals", "1 tab PO BID w/ meals")])
_m("budesonide_formoterol", "budesonide-formoterol", "budesonide-formoterol", "Symbicort",
   ["160-4.5 mcg/actuation", "80-4.5 mcg/actuation"], "inhaler",
   [("Inhale 2 puffs twice daily, rinse mouth after use", "2 puffs INH BID, rinse mouth")])
_m("fluticasone_salmeterol", "fluticasone-salmeterol", "fluticasone-salmeterol", "Advair Diskus",
   ["250-50 mcg/dose", "500-50 mcg/dose"], "inhalation powder", [("Inhale 1 puff twice daily", "1 puff INH BID")])
_m("ezetimibe_simvastatin", "ezetimibe-simvastatin", "ezetimibe-simvastatin", "Vytorin", ["10-20 mg", "10-40 mg"],
   "tablet", [("Take 1 tablet by mouth every evening", "1 tab PO QPM")])
# short courses (visits / discharge)
_m("amox_clav", "amoxicillin-clavulanate", "amoxicillin-clavulanate", "Augmentin", ["875-125 mg"], "tablet",
   [("Take 1 tablet by mouth twice daily for 7 days", "1 tab PO BID x 7 days")], cls="course")
_m("azithromycin", "azithromycin", "azithromycin", "Zithromax", ["250 mg"], "tablet",
   [("Take 2 tablets on day 1, then 1 tablet daily on days 2 to 5", "2 tabs PO day 1, then 1 tab daily days 2-5")],
   cls="course")
_m("cephalexin", "cephalexin", "cephalexin", "Keflex", ["500 mg"], "capsule",
   [("Take 1 capsule by mouth four times daily for 7 days", "1 cap PO QID x 7d")], cls="course")
_m("nitrofurantoin", "nitrofurantoin", "nitrofurantoin monohydrate/macrocrystals", "Macrobid", ["100 mg"], "capsule",
   [("Take 1 capsule by mouth twice daily for 5 days", "1 cap PO BID x 5 days")], cls="course")
_m("doxycycline", "doxycycline", "doxycycline hyclate", "Vibramycin", ["100 mg"], "capsule",
   [("Take 1 capsule by mouth twice daily for 10 days", "1 cap PO BID x 10 days")], cls="course")
_m("prednisone_taper", "prednisone", "prednisone", "Deltasone", ["10 mg"], "tablet",
   [("Take 4 tablets daily for 3 days, then 3 tablets daily for 3 days, then 2 tablets daily for 3 days, "
     "then 1 tablet daily for 3 days, then stop",
     "40 mg PO daily x3d, then 30 mg x3d, then 20 mg x3d, then 10 mg x3d, then stop")], cls="taper")
_m("prednisone_burst", "prednisone", "prednisone", "Deltasone", ["20 mg"], "tablet",
   [("Take 2 tablets by mouth once daily for 5 days", "40 mg PO daily x 5 days")], cls="course")
_m("benzonatate", "benzonatate", "benzonatate", "Tessalon Perles", ["100 mg"], "capsule",
   [("Take 1 capsule by mouth three times daily as needed for cough", "1 cap PO TID PRN cough")], cls="prn")

# drugs that go with diagnoses (used to make medication lists plausible)
FOR_CONDITION = {
    "I10": ["lisinopril", "losartan", "amlodipine", "hctz", "lisinopril_hctz", "losartan_hctz", "amlodipine_benazepril"],
    "E11.9": ["metformin", "metformin_er", "glipizide", "semaglutide", "empagliflozin", "sitagliptin_metformin"],
    "E11.65": ["metformin", "glargine", "semaglutide", "empagliflozin"],
    "E78.5": ["atorvastatin", "rosuvastatin", "simvastatin", "ezetimibe_simvastatin"],
    "E78.00": ["atorvastatin", "rosuvastatin"], "E78.2": ["rosuvastatin", "atorvastatin"],
    "K21.9": ["omeprazole", "pantoprazole"], "I48.91": ["apixaban", "metoprolol", "warfarin"],
    "I48.0": ["apixaban", "metoprolol_t"], "J44.9": ["tiotropium", "albuterol", "fluticasone_salmeterol"],
    "J45.909": ["albuterol", "budesonide_formoterol", "montelukast"], "J45.20": ["albuterol"],
    "N40.0": ["tamsulosin", "finasteride"], "N40.1": ["tamsulosin"], "E03.9": ["levothyroxine"],
    "M17.11": ["meloxicam", "acetaminophen"], "M17.12": ["meloxicam", "acetaminophen"], "M17.0": ["acetaminophen"],
    "F32.9": ["sertraline", "escitalopram", "bupropion"], "F33.1": ["sertraline", "bupropion"],
    "F41.1": ["buspirone", "escitalopram"], "E55.9": ["cholecalciferol"], "D50.9": ["ferrous_sulfate"],
    "I25.10": ["aspirin", "atorvastatin", "clopidogrel"], "I50.22": ["carvedilol", "sacubitril_valsartan", "furosemide",
                                                                    "spironolactone"],
    "G43.909": ["sumatriptan"], "J30.9": ["fluticasone_nasal", "montelukast"], "G47.00": ["trazodone"],
    "M10.9": ["allopurinol"], "M54.50": ["cyclobenzaprine", "acetaminophen"], "N18.31": [], "N18.32": [],
    "N18.4": ["furosemide"], "J06.9": ["benzonatate"], "N39.0": ["nitrofurantoin", "cephalexin"],
    "J02.9": ["amox_clav"], "J18.9": ["amox_clav", "azithromycin", "doxycycline"], "J44.1": ["prednisone_burst",
                                                                                        "azithromycin", "albuterol"],
    "I50.23": ["furosemide", "carvedilol"], "L03.116": ["cephalexin", "doxycycline"], "L03.115": ["cephalexin"],
    "K57.32": ["amox_clav"], "N10": ["cephalexin"], "I21.4": ["aspirin", "clopidogrel", "atorvastatin", "metoprolol"],
    "K85.90": ["ondansetron", "acetaminophen"], "N17.9": [], "E86.0": ["ondansetron"], "M25.561": ["meloxicam"],
}

ALLERGIES = ["Penicillin (hives)", "Sulfa drugs (rash)", "Codeine (nausea)", "Shellfish (swelling)", "Latex (rash)",
             "Lisinopril (cough)", "Erythromycin (GI upset)", "Morphine (itching)", "Iodinated contrast (hives)",
             "Amoxicillin (rash)", "Bee stings (anaphylaxis)", "Peanuts (hives)"]

# ---------------------------------------------------------------------------
# invented people and places
# ---------------------------------------------------------------------------
GIVEN_F = ["Adaeze", "Beatrix", "Carmen", "Delphine", "Elowen", "Fern", "Giselle", "Harriet", "Imogen", "Juniper",
           "Keziah", "Linnea", "Marisol", "Noor", "Odette", "Priya", "Rosalind", "Saoirse", "Tamsin", "Ulla",
           "Verity", "Wren", "Xiomara", "Yolanda", "Zelie", "Annika", "Bettina", "Clementine", "Dagny", "Esme",
           "Florence", "Greta", "Henrietta", "Ines", "Josefina", "Lucinda", "Mireille", "Nadia", "Orla", "Petra"]
GIVEN_M = ["Ambrose", "Bertrand", "Casimir", "Dashiell", "Emeric", "Fitzgerald", "Gideon", "Horatio", "Ignatius",
           "Jasper", "Kwame", "Leopold", "Mateo", "Niall", "Octavio", "Percival", "Quentin", "Rafferty", "Silvio",
           "Thaddeus", "Ulrich", "Vaughn", "Wendell", "Xavier", "Yusuf", "Zebulon", "Anselm", "Barnaby", "Cormac",
           "Desmond", "Elias", "Florian", "Gustav", "Hamish", "Ivo", "Jonah", "Lazlo", "Magnus", "Osric", "Rupert"]
FAMILY_NAMES = ["Abernathy", "Blackwood", "Castellane", "Dunmore", "Eversley", "Fairbanks", "Grantham", "Hollister",
                "Iverson", "Jessup", "Kingsley", "Lockhart", "Merriweather", "Northcott", "Oyelaran", "Pemberton",
                "Quimby", "Ravensworth", "Stonebridge", "Thistlewood", "Underhill", "Vandermeer", "Whitlock",
                "Yarborough", "Zimmerly", "Ashcombe", "Brightwater", "Coldwell", "Delacroix-Penn", "Elmsworth",
                "Farrowdale", "Gallowmere", "Hargreave", "Inglethorpe", "Jernigan", "Kettleby", "Lindqvist",
                "Mbeki-Hart", "Nakashima", "Okonjo", "Pellegrini", "Quaresma", "Rutherglen", "Szabo-Lind", "Tennant",
                "Ulveson", "Valcourt", "Wexford", "Achterberg", "Brannigan", "Cholmondeley", "Drummond", "Esterhazy",
                "Fennimore", "Gorski", "Haverford", "Ishikawa", "Jablonski", "Kowalczyk", "Lamontagne", "Moravec",
                "Nightingale", "O'Farrell", "Petrakis", "Rasmussen", "Sandoval", "Tregarthen", "Umbridge", "Villalobos",
                "Winterbourne", "Yelverton", "Zabrinski"]
PROV_GIVEN = ["Aurelia", "Benedict", "Cassius", "Dorothea", "Evander", "Felicity", "Gregor", "Hyacinth", "Isidore",
              "Jocasta", "Konstantin", "Lavinia", "Maximilian", "Nerissa", "Oberon", "Philippa", "Roderick", "Seraphina",
              "Tobias", "Valentina", "Winifred", "Alistair", "Bronwyn", "Cyprian", "Delia", "Emrys", "Fenella", "Linus"]
PROV_FAMILY = ["Achebe", "Bellweather", "Cavendish", "Dumont", "Ekwueme", "Fairweather", "Galloway", "Hawthorne",
               "Ishiguro", "Jorgensen", "Kavanagh", "Larkspur", "Montague", "Nwachukwu", "Ostrowski", "Pendergast",
               "Quintero", "Rosenthal", "Saltonstall", "Thornbury", "Urquhart", "Vasilakis", "Wainwright", "Yamamura",
               "Zeller", "Albrecht", "Brightman", "Corrigan", "Devereux", "Eastwood", "Fontaine", "Greenhalgh"]
CREDENTIALS = ["MD", "MD", "MD", "DO", "NP", "PA-C", "FNP-C", "MD, FACP", "APRN"]
INTL_CREDENTIALS = ["MBBS", "MD", "MBBS FRCP", "MD"]

LAB_ORGS = ["Harborview Reference Laboratory", "Crestline Diagnostic Laboratories", "Meridian Clinical Labs",
            "Northgate Pathology Services", "Silverpine Medical Laboratory", "Tallowbrook Regional Lab",
            "Bluewater Diagnostics", "Kestrel Valley Laboratory", "Ironwood Clinical Pathology", "Orchard Hill Labs"]
INTL_LAB_ORGS = ["St Brannoc's Hospital Pathology", "Westmere University Hospital - Clinical Biochemistry",
                 "Royal Fenwick Infirmary Laboratory Medicine", "Harrowgate District Hospital Pathology",
                 "Kilbride General Hospital - Department of Clinical Chemistry"]
CLINICS = ["Juniper Ridge Family Medicine", "Lakeshore Internal Medicine", "Cobblestone Primary Care",
           "Maple Hollow Health Center", "Redwood Bend Medical Group", "Willowmere Family Practice",
           "Granite Peak Internal Medicine", "Sunfield Community Clinic", "Foxglove Health Partners",
           "Brookhaven Cardiology Associates", "Thornfield Endocrine & Diabetes Center", "Eastbrook Pulmonary Clinic"]
HOSPITALS = ["Cedar Vale Regional Medical Center", "St. Aldric Memorial Hospital", "Bramblewood General Hospital",
             "Mercy Harbor Hospital", "Ashgrove University Medical Center", "Pinehurst Valley Hospital"]
INTL_HOSPITALS = ["Westmere University Hospital", "Royal Fenwick Infirmary", "Kilbride General Hospital",
                  "St Brannoc's Hospital"]
PHARMACIES = ["Corner Oak Pharmacy", "Riverside Apothecary", "Hilltop Drug"]
STREETS = ["Alder Court", "Birchfield Road", "Copperleaf Way", "Dovecote Lane", "Elmstead Avenue", "Foxhollow Drive",
           "Glenmere Street", "Heathcote Place", "Ivybridge Boulevard", "Juniper Terrace", "Kingfisher Row",
           "Larchmont Parkway", "Millpond Road", "Nettlefield Close"]
CITIES = [("Brookfield Falls", "OR"), ("Cedar Hollow", "WA"), ("Dunmore Springs", "CO"), ("Eastwick", "MN"),
          ("Fairhaven Bay", "ME"), ("Glen Arbor", "MI"), ("Harlow Point", "NC"), ("Iron Ridge", "PA"),
          ("Juniper Flats", "AZ"), ("Kingsbridge", "VT"), ("Lark Valley", "ID"), ("Millbrook", "WI")]
UK_CITIES = [("Westmere", "WM4 7QZ"), ("Fenwick", "FN2 9XR"), ("Kilbride", "KB11 3LD"), ("Brannoc", "BR7 2PW")]
