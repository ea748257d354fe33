#!/usr/bin/env python3
"""Generates payor feed batches with exact truth, harder on identity than the shared sample.

    python3 scripts/feedgen/feedgen.py OUT --members 300 --seed 1 [--profile dev|holdout|bench]
        [--lines-per-member N]

Writes OUT/batch/{members.csv, claims.csv, pharmacy.csv, labs.hl7, hie/Patient.ndjson,
hie/Condition.ndjson, hie/Observation.ndjson} and OUT/truth/{links.json, facts.json} in the
formats of testdata/feeds/README.md, so the reference scorer (testdata/feeds/score.py) scores
a run on it unchanged.

What makes it hard (planted, and named in links.json `variants` / `hard_negative`):
  * records without a member id: nicknames, one-letter typos in given and family names,
    day/month swapped and one-digit birth-date typos, middle name dropped or an initial,
    maiden names (the roster has the married name), given and family name swapped,
    an old address, another phone or none, diacritics added or dropped, suffix dropped,
    one part of a hyphenated family name;
  * look-alikes: twins (same birth date, family name, address), father and son with one
    name (Jr/Sr, both members), relatives at one address who are not members, unrelated
    people sharing a common given + family name (other birth date and address), and
    members who re-enrolled under a new id (records carry the previous one).

Profiles differ in the mix (holdout uses other rates and a different name pool slice, and is
never looked at while tuning). The generator is ours; names are common US names.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random

FIRST_M = ["James", "Robert", "John", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
           "Christopher", "Daniel", "Matthew", "Anthony", "Donald", "Steven", "Andrew", "Joshua", "Kenneth", "Kevin",
           "Brian", "George", "Edward", "Ronald", "Timothy", "Jason", "Jeffrey", "Ryan", "Jacob", "Gary",
           "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel",
           "Gregory", "Frank", "Alexander", "Raymond", "Patrick", "Jack", "Dennis", "Jerry", "Tyler", "Aaron",
           "Jose", "Luis", "Carlos", "Juan", "Miguel", "Andre", "Tomas", "Ivan", "Omar", "Hiroshi"]
FIRST_F = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
           "Nancy", "Lisa", "Margaret", "Betty", "Sandra", "Ashley", "Dorothy", "Kimberly", "Emily", "Donna",
           "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Rebecca", "Laura", "Sharon", "Cynthia",
           "Kathleen", "Amy", "Shirley", "Angela", "Helen", "Anna", "Brenda", "Pamela", "Nicole", "Samantha",
           "Katherine", "Christine", "Debra", "Rachel", "Catherine", "Carolyn", "Janet", "Ruth", "Maria", "Heather",
           "Sofia", "Lucia", "Ines", "Renee", "Zoe", "Chloe", "Noemi", "Aiko", "Priya", "Fatima"]
NICK = {"James": "Jim", "Robert": "Bob", "John": "Jack", "Michael": "Mike", "William": "Bill", "David": "Dave",
        "Richard": "Rick", "Joseph": "Joe", "Thomas": "Tom", "Charles": "Chuck", "Christopher": "Chris",
        "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony", "Donald": "Don", "Steven": "Steve",
        "Andrew": "Andy", "Joshua": "Josh", "Kenneth": "Ken", "Edward": "Ed", "Ronald": "Ron", "Timothy": "Tim",
        "Jeffrey": "Jeff", "Nicholas": "Nick", "Jonathan": "Jon", "Stephen": "Steve", "Larry": "Lawrence",
        "Benjamin": "Ben", "Samuel": "Sam", "Gregory": "Greg", "Alexander": "Alex", "Patrick": "Pat",
        "Elizabeth": "Liz", "Patricia": "Patty", "Jennifer": "Jenny", "Barbara": "Barb", "Susan": "Sue",
        "Margaret": "Peggy", "Kimberly": "Kim", "Deborah": "Debbie", "Stephanie": "Steph", "Rebecca": "Becky",
        "Cynthia": "Cindy", "Kathleen": "Kathy", "Pamela": "Pam", "Katherine": "Kate", "Catherine": "Cathy",
        "Samantha": "Sam", "Christine": "Chris", "Nicole": "Nikki", "Dorothy": "Dot", "Sandra": "Sandy"}
ACCENT = {"Jose": "José", "Tomas": "Tomás", "Andre": "André", "Ines": "Inés", "Renee": "Renée", "Zoe": "Zoë",
          "Chloe": "Chloé", "Noemi": "Noémi", "Sofia": "Sofía", "Lucia": "Lucía", "Maria": "María",
          "Garcia": "García", "Rodriguez": "Rodríguez", "Martinez": "Martínez", "Hernandez": "Hernández",
          "Lopez": "López", "Gonzalez": "González", "Perez": "Pérez", "Sanchez": "Sánchez", "Muller": "Müller"}
# Family names with a Zipf-like weight: a few very common, many rare.
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
        "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
        "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
        "O'Brien", "Muller", "Kowalski", "Oyelaran", "Fitzgerald", "Abernathy", "Castellanos", "Delacroix",
        "Haverford", "Ivanova", "Jablonski", "Kensington", "Lindqvist", "Montgomery", "Nakamura", "Okonkwo",
        "Pemberton", "Quintero", "Rasmussen", "Sorensen", "Thibodeaux", "Underwood", "Vasquez", "Whitfield",
        "Yamamoto", "Zielinski", "Ashworth", "Blackwood", "Caldwell", "Donovan", "Ellsworth", "Fairbanks"]
STREETS = ["Oak", "Maple", "Cedar", "Pine", "Elm", "Willow", "Birch", "Walnut", "Chestnut", "Hickory", "Aspen",
           "Meadowlark", "Heron", "Juniper", "Magnolia", "Sycamore", "Laurel", "Spruce", "Poplar", "Cypress"]
KINDS = [("St", "Street"), ("Ave", "Avenue"), ("Rd", "Road"), ("Dr", "Drive"), ("Ln", "Lane"), ("Ct", "Court"),
         ("Pl", "Place")]
CITIES = [("Columbus", "OH", "432"), ("Dayton", "OH", "454"), ("Akron", "OH", "443"), ("Toledo", "OH", "436"),
          ("Indianapolis", "IN", "462"), ("Fort Wayne", "IN", "468"), ("Lexington", "KY", "405"),
          ("Louisville", "KY", "402"), ("Pittsburgh", "PA", "152"), ("Erie", "PA", "165")]
AREAS = ["614", "937", "330", "419", "317", "260", "859", "502", "412", "814"]
CONDITIONS = ["E11.9", "I10", "E78.5", "J45.909", "E66.9", "M54.5", "K21.9", "E03.9", "N18.3", "G47.33"]
MEDS = [("6809", "METFORMIN HCL 500 MG TABLET"), ("29046", "LISINOPRIL 10 MG TABLET"),
        ("83367", "ATORVASTATIN 20 MG TABLET"), ("17767", "AMLODIPINE 5 MG TABLET"),
        ("10582", "LEVOTHYROXINE 50 MCG TABLET"), ("7646", "OMEPRAZOLE 20 MG CAPSULE")]
NPIS = ["1245319599", "1003000126", "1114025228", "1225034323", "1336043443", "1447052556"]
START = dt.date(2022, 7, 1)
DAYS = 1095

PROFILES = {
    # share of records without a member id per feed, extra variant rate, hard-negative rates
    "dev": dict(no_id=0.25, variant=0.5, twins=0.04, father_son=0.04, relatives=0.06, common=0.05,
                reenrolled=0.08, name_slice=(0, None)),
    "holdout": dict(no_id=0.35, variant=0.65, twins=0.06, father_son=0.05, relatives=0.08, common=0.08,
                    reenrolled=0.12, name_slice=(5, None)),
    "bench": dict(no_id=0.3, variant=0.5, twins=0.03, father_son=0.03, relatives=0.05, common=0.05,
                  reenrolled=0.05, name_slice=(0, None)),
}


def luhn_npi(base9: str) -> str:
    s = 24
    for i, d in enumerate(reversed(base9)):
        v = int(d)
        if i % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        s += v
    return base9 + str((10 - s % 10) % 10)


class Gen:
    def __init__(self, args):
        self.r = random.Random(args.seed)
        self.p = PROFILES[args.profile]
        a, b = self.p["name_slice"]
        self.first_m, self.first_f = FIRST_M[a:b], FIRST_F[a:b]
        self.people = []
        self.member_ids = set()
        self.npis = [luhn_npi(f"1{self.r.randrange(10**8):08d}") for _ in range(40)]

    def weighted_last(self):
        i = min(int(self.r.paretovariate(1.1)) - 1, len(LAST) - 1)
        return LAST[i] if self.r.random() < 0.7 else self.r.choice(LAST)

    def member_id(self):
        while True:
            m = f"M{self.r.randrange(10**9):09d}"
            if m not in self.member_ids:
                self.member_ids.add(m)
                return m

    def address(self):
        city, state, z3 = self.r.choice(CITIES)
        k = self.r.choice(KINDS)
        return dict(street=f"{self.r.randrange(100, 9999)} {self.r.choice(STREETS)} {k[0]}", long_kind=k[1],
                    city=city, state=state, zip=f"{z3}{self.r.randrange(10, 99)}")

    def phone(self):
        return f"{self.r.choice(AREAS)}-555-01{self.r.randrange(100):02d}"

    def birth(self, lo=1940, hi=2015):
        return dt.date(self.r.randrange(lo, hi), self.r.randrange(1, 13), self.r.randrange(1, 29))

    def person(self, sex=None, last=None, home=None, birth=None, member=True, first=None, kind=None):
        sex = sex or self.r.choice("MF")
        first = first or self.r.choice(self.first_m if sex == "M" else self.first_f)
        p = dict(key=f"P{len(self.people):07d}", sex=sex, first=first,
                 middle=self.r.choice(self.first_m if sex == "M" else self.first_f) if self.r.random() < 0.6 else "",
                 last=last or self.weighted_last(), suffix="", birth=birth or self.birth(),
                 home=home or self.address(), phone=self.phone(), email="",
                 member_id=self.member_id() if member else None, previous=None, maiden=None,
                 hard=kind, detail=None, confusers=[])
        if self.r.random() < 0.6:
            p["email"] = f"{p['first'].lower()}.{p['last'].lower().replace(chr(39), '')}{self.r.randrange(99)}@example.com"
        if member and self.r.random() < self.p["reenrolled"]:
            p["previous"] = self.member_id()
        if sex == "F" and self.r.random() < 0.15:
            p["maiden"] = self.weighted_last()
        if self.r.random() < 0.05:
            p["last"] = f"{p['last']}-{self.weighted_last()}"
        self.people.append(p)
        return p

    def build(self, n_members):
        while sum(1 for p in self.people if p["member_id"]) < n_members:
            u = self.r.random()
            pr = self.p
            if u < pr["twins"]:
                a = self.person(kind="twins")
                b = self.person(sex=self.r.choice("MF"), last=a["last"], home=a["home"], birth=a["birth"],
                                member=self.r.random() < 0.7, kind="twins")
                b["phone"] = a["phone"]
                self.pair(a, b, "both_members" if b["member_id"] else "one_member")
            elif u < pr["twins"] + pr["father_son"]:
                a = self.person(sex="M", kind="father_son")
                b = self.person(sex="M", last=a["last"], home=a["home"], first=a["first"],
                                birth=a["birth"].replace(year=a["birth"].year + 25) if a["birth"].year < 1990
                                else a["birth"].replace(year=a["birth"].year - 25), kind="father_son")
                a["suffix"], b["suffix"] = ("Sr", "Jr") if a["birth"] < b["birth"] else ("Jr", "Sr")
                b["middle"], b["phone"] = a["middle"], a["phone"]
                self.pair(a, b, "both_members")
            elif u < pr["twins"] + pr["father_son"] + pr["relatives"]:
                a = self.person(kind="lookalike_nonmember")
                for _ in range(self.r.randrange(1, 3)):
                    b = self.person(last=a["last"], home=a["home"], member=False, kind="lookalike_nonmember")
                    b["phone"] = a["phone"]
                    self.pair(a, b, "family")
            elif u < pr["twins"] + pr["father_son"] + pr["relatives"] + pr["common"]:
                a = self.person(kind="common_name")
                a["last"] = self.r.choice(LAST[:8])
                b = self.person(sex=a["sex"], first=a["first"], last=a["last"], member=self.r.random() < 0.5,
                                kind="common_name")
                self.pair(a, b, "both_members" if b["member_id"] else "one_member")
            else:
                self.person()

    def pair(self, a, b, detail):
        for x, y in ((a, b), (b, a)):
            x["detail"] = detail
            if y["member_id"]:
                x["confusers"].append(y["member_id"])


def typo(r, s):
    if len(s) < 4:
        return s
    i = r.randrange(1, len(s) - 1)
    op = r.randrange(4)
    letters = "abcdefghijklmnopqrstuvwxyz"
    if op == 0:
        return s[:i] + r.choice(letters) + s[i + 1:]
    if op == 1:
        return s[:i] + s[i + 1:]
    if op == 2:
        return s[:i] + r.choice(letters) + s[i:]
    return s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]


def variant_view(g: Gen, p, with_id: bool):
    """The person as one record shows them, and the variants applied."""
    r = g.r
    v = dict(first=p["first"], middle=p["middle"], last=p["last"], suffix=p["suffix"], birth=p["birth"],
             sex=p["sex"], street=p["home"]["street"], city=p["home"]["city"], zip=p["home"]["zip"],
             phone=p["phone"], email=p["email"], other_last=[])
    applied = []
    rate = g.p["variant"] * (1.0 if not with_id else 0.3)
    choices = ["nickname", "typo_first", "typo_last", "dob_swap", "dob_typo", "missing_middle", "middle_initial",
               "maiden_name", "name_swap", "old_address", "different_phone", "missing_phone", "diacritics",
               "suffix_dropped", "hyphen_part"]
    while r.random() < rate and len(applied) < 3:
        k = r.choice(choices)
        if k in applied:
            continue
        if k == "nickname" and v["first"] in NICK:
            v["first"] = NICK[v["first"]]
        elif k == "typo_first" and len(v["first"]) >= 5:
            v["first"] = typo(r, v["first"])
        elif k == "typo_last" and len(v["last"]) >= 5:
            v["last"] = typo(r, v["last"])
        elif k == "dob_swap" and v["birth"].day <= 12 and v["birth"].day != v["birth"].month:
            v["birth"] = v["birth"].replace(month=v["birth"].day, day=v["birth"].month)
        elif k == "dob_typo":
            d = v["birth"]  # one digit of the day typed wrong
            v["birth"] = d.replace(day=d.day + 10 if d.day <= 18 else d.day - 10)
        elif k == "missing_middle" and v["middle"]:
            v["middle"] = ""
        elif k == "middle_initial" and v["middle"]:
            v["middle"] = v["middle"][0]
        elif k == "maiden_name" and p["maiden"]:
            v["other_last"] = [v["last"]]
            v["last"] = p["maiden"]
        elif k == "name_swap":
            v["first"], v["last"] = v["last"], v["first"]
        elif k == "old_address":
            a = g.address()
            v.update(street=a["street"], city=a["city"], zip=a["zip"])
        elif k == "different_phone":
            v["phone"] = g.phone()
        elif k == "missing_phone":
            v["phone"] = ""
        elif k == "diacritics" and (v["first"] in ACCENT or v["last"] in ACCENT):
            v["first"] = ACCENT.get(v["first"], v["first"])
            v["last"] = ACCENT.get(v["last"], v["last"])
        elif k == "suffix_dropped" and v["suffix"]:
            v["suffix"] = ""
        elif k == "hyphen_part" and "-" in v["last"]:
            v["last"] = r.choice(v["last"].split("-"))
        else:
            continue
        applied.append(k)
    if r.random() < 0.3:
        for short, long in KINDS:
            if v["street"].endswith(" " + short):
                v["street"] = v["street"][: -len(short)] + long
    return v, applied


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="dev", choices=sorted(PROFILES))
    ap.add_argument("--lines-per-member", type=int, default=6)
    args = ap.parse_args()
    g = Gen(args)
    g.build(args.members)
    r = g.r
    os.makedirs(os.path.join(args.out, "batch", "hie"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "truth"), exist_ok=True)
    b = lambda *p: os.path.join(args.out, "batch", *p)
    links, facts = [], {}
    members = [p for p in g.people if p["member_id"]]
    with open(b("members.csv"), "w", encoding="utf-8", newline="") as f:
        f.write("member_id,first_name,middle_name,last_name,suffix,birth_date,sex,address_line,city,state,zip,"
                "phone,email,plan_id,coverage_start,coverage_end,previous_member_id\n")
        for p in members:
            h = p["home"]
            f.write(f"{p['member_id']},{p['first']},{p['middle']},{p['last']},{p['suffix']},{p['birth']},{p['sex']},"
                    f"{h['street']},{h['city']},{h['state']},{h['zip']},{p['phone']},{p['email']},PPO-200,2019-01-01,,"
                    f"{p['previous'] or ''}\n")
            facts[p["member_id"]] = {"sensitive": False, "facts": {}}

    def fact(p, key, body, source):
        if not p["member_id"]:
            return
        fs = facts[p["member_id"]]["facts"]
        if key in fs:
            fs[key]["sources"].append(source)
            if body.get("date") < fs[key]["date"] and body["type"] in ("condition", "medication"):
                fs[key]["date"] = body["date"]
        else:
            fs[key] = dict(body, sources=[source], sensitive=False)

    def link(p, source, record, with_id, variants):
        e = {"source": source, "record": record, "member_id": p["member_id"],
             "id_kind": ("previous" if with_id == "previous" else "current") if with_id else "none",
             "person": p["key"]}
        if variants:
            e["variants"] = variants
        if p["hard"]:
            e["hard_negative"] = p["hard"]
            e["hard_negative_detail"] = p["detail"]
            e["confuser_member_ids"] = p["confusers"]
        links.append(e)

    def carried(p, share_no_id):
        if not p["member_id"] or r.random() < share_no_id:
            return None, None
        if p["previous"] and r.random() < 0.5:
            return p["previous"], "previous"
        return p["member_id"], "current"

    day = lambda: START + dt.timedelta(days=r.randrange(DAYS))
    claims = open(b("claims.csv"), "w", encoding="utf-8", newline="")
    claims.write("claim_id,line_number,claim_type,member_id,patient_first_name,patient_last_name,patient_birth_date,"
                 "patient_sex,service_from,service_to,place_of_service,bill_type,billing_npi,rendering_npi,"
                 + ",".join(f"diagnosis_{i}" for i in range(1, 13))
                 + ",procedure_code,procedure_modifier,revenue_code,units,charge_amount,paid_amount,claim_status,"
                   "original_claim_id,received_date\n")
    pharm = open(b("pharmacy.csv"), "w", encoding="utf-8", newline="")
    pharm.write("claim_id,member_id,patient_first_name,patient_last_name,patient_birth_date,patient_sex,fill_date,"
                "ndc,rxnorm_ingredient,drug_name,quantity,days_supply,refill_number,prescriber_npi,pharmacy_npi,"
                "claim_status,original_claim_id\n")
    hie_pat = open(b("hie", "Patient.ndjson"), "w", encoding="utf-8")
    hie_cond = open(b("hie", "Condition.ndjson"), "w", encoding="utf-8")
    hie_obs = open(b("hie", "Observation.ndjson"), "w", encoding="utf-8")
    labs = open(b("labs.hl7"), "w", encoding="utf-8", newline="")
    seq = [0]

    def nid(prefix):
        seq[0] += 1
        return f"{prefix}{seq[0]:011d}"

    for p in g.people:
        cond = r.choice(CONDITIONS)
        med = r.choice(MEDS)
        npi = r.choice(g.npis)
        n_lines = max(1, int(r.gauss(args.lines_per_member, 2))) if p["member_id"] else 0
        for _ in range(n_lines):
            cid = nid("C")
            mid, kind = carried(p, g.p["no_id"] * 0.3)
            v, applied = variant_view(g, p, bool(mid))
            d = day()
            diag = cond.replace(".", "")
            claims.write(f"{cid},1,professional,{mid or ''},{v['first'].upper()},{v['last'].upper()},{v['birth']},"
                         f"{v['sex']},{d},{d},11,,{npi},{npi},{diag}" + "," * 11
                         + f",99213,,,1,120.00,80.00,paid,,{d}\n")
            link(p, "claims.csv", f"{cid}:1", kind, applied + ["upper_case"])
            if p["member_id"]:
                fact(p, ("condition", cond), dict(type="condition", system="http://hl7.org/fhir/sid/icd-10-cm",
                                                  code=cond, date=str(d)), f"claims.csv#{cid}")
                fact(p, ("encounter", str(d), npi), dict(type="encounter",
                                                         system="http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                         code="AMB", date=str(d), provider_npi=npi), f"claims.csv#{cid}")
        for _ in range(n_lines // 2):
            rid = nid("RX")
            mid, kind = carried(p, g.p["no_id"] * 0.3)
            v, applied = variant_view(g, p, bool(mid))
            d = day()
            ndc = f"5999{int(med[0]) % 10**7:07d}"
            pharm.write(f"{rid},{mid or ''},{v['first'].upper()},{v['last'].upper()},{v['birth']},{v['sex']},{d},"
                        f"{ndc},{med[0]},\"{med[1]}\",30,30,0,{npi},{NPIS[0]},paid,\n")
            link(p, "pharmacy.csv", rid, kind, applied + ["upper_case"])
            fact(p, ("medication", med[0]), dict(type="medication",
                                                 system="http://www.nlm.nih.gov/research/umls/rxnorm",
                                                 code=med[0], date=str(d)), f"pharmacy.csv#{rid}")
        # HIE: no member ids, ever; members and non-members alike.
        for _ in range(1 if r.random() < 0.8 else 2):
            if r.random() < (0.5 if p["member_id"] else 0.9):
                hid = f"h{nid('')}"
                v, applied = variant_view(g, p, False)
                name = {"use": "official", "family": v["last"], "given": [x for x in (v["first"], v["middle"]) if x]}
                if v["suffix"]:
                    name["suffix"] = [v["suffix"]]
                names = [name] + [{"use": "maiden", "family": o} for o in v["other_last"]]
                tele = ([{"system": "phone", "value": v["phone"], "use": "home"}] if v["phone"] else []) + (
                    [{"system": "email", "value": v["email"]}] if v["email"] else [])
                res = {"resourceType": "Patient", "id": hid,
                       "identifier": [{"system": "https://hie.example/mrn", "value": f"H{r.randrange(10**8):08d}"}],
                       "name": names, "telecom": tele, "gender": {"M": "male", "F": "female"}[v["sex"]],
                       "birthDate": str(v["birth"]),
                       "address": [{"use": "home", "line": [v["street"]], "city": v["city"], "state": "OH",
                                    "postalCode": v["zip"]}]}
                hie_pat.write(json.dumps(res) + "\n")
                link(p, "hie/Patient.ndjson", hid, None, applied)
                onset = START - dt.timedelta(days=r.randrange(1, 2000))
                cid = f"c{nid('')}"
                hie_cond.write(json.dumps({"resourceType": "Condition", "id": cid,
                                           "verificationStatus": {"coding": [{"code": "confirmed"}]},
                                           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                                "code": cond}]},
                                           "subject": {"reference": f"Patient/{hid}"},
                                           "onsetDateTime": str(onset)}) + "\n")
                fact(p, ("condition", cond), dict(type="condition", system="http://hl7.org/fhir/sid/icd-10-cm",
                                                  code=cond, date=str(onset)), f"hie/Condition.ndjson#{cid}")
                d = day()
                val = round(r.uniform(5.0, 10.0), 1)
                oid = f"o{nid('')}"
                hie_obs.write(json.dumps({"resourceType": "Observation", "id": oid, "status": "final",
                                          "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                                          "subject": {"reference": f"Patient/{hid}"},
                                          "effectiveDateTime": f"{d}T09:30:00-05:00",
                                          "valueQuantity": {"value": val, "unit": "%",
                                                            "system": "http://unitsofmeasure.org", "code": "%"}})
                              + "\n")
                fact(p, ("observation", "4548-4", str(d)), dict(type="observation", system="http://loinc.org",
                                                                code="4548-4", date=str(d), value=val, unit="%"),
                     f"hie/Observation.ndjson#{oid}")
        if r.random() < 0.5:
            mid, kind = carried(p, 0.4)
            v, applied = variant_view(g, p, bool(mid))
            ctl = nid("RL")
            d = day()
            pid3 = (f"{mid}^^^PAYOR^MB~" if mid else "") + f"L{r.randrange(10**8):08d}^^^SYNREFLAB^PI"
            phone = v["phone"].replace("-", "")
            seg = [f"MSH|^~\\&|SYNTHLAB LIS|SYNTHETIC REFERENCE LAB^99D0000001^CLIA|P360|SYNTHETIC PAYOR|"
                   f"{d:%Y%m%d}060000-0500||ORU^R01^ORU_R01|{ctl}|P|2.5.1|||NE|NE||UNICODE UTF-8",
                   f"PID|1||{pid3}||{v['last'].upper()}^{v['first'].upper()}^{v['middle'].upper()}^"
                   f"{v['suffix'].upper()}^^^L||{v['birth']:%Y%m%d}|{v['sex']}|||{v['street'].upper()}^^"
                   f"{v['city'].upper()}^OH^{v['zip']}^USA^H||" + (f"^PRN^PH^^1^{phone[:3]}^{phone[3:]}" if phone else ""),
                   f"OBR|1|ORD1|{ctl}-1|A1C^HEMOGLOBIN A1C^L|||{d:%Y%m%d}0800-0500|||||||||{npi}^DOC^A^^^^^^NPI"
                   "||||||||F",
                   f"OBX|1|NM|2345-7^Glucose^LN||{r.randrange(70, 200)}|mg/dL^mg/dL^UCUM|70-99|N|||F|||"
                   f"{d:%Y%m%d}0800-0500|99D0000001"]
            labs.write("\r".join(seg) + "\r\n")
            link(p, "labs.hl7", ctl, kind, applied + ["upper_case"])
            if p["member_id"]:
                val = float(seg[3].split("|")[5])
                fact(p, ("observation", "2345-7", str(d)), dict(type="observation", system="http://loinc.org",
                                                                code="2345-7", date=str(d), value=val, unit="mg/dL"),
                     f"labs.hl7#{ctl}")
    for f in (claims, pharm, hie_pat, hie_cond, hie_obs, labs):
        f.close()
    # links.json: records of the same person-record key appear once.
    json.dump({"schema": "p360-feeds-links/1", "as_of": "2025-06-30", "records": links},
              open(os.path.join(args.out, "truth", "links.json"), "w"), indent=0)
    out_facts = {}
    n = 0
    for m, e in facts.items():
        lst = []
        for body in e["facts"].values():
            n += 1
            lst.append(dict(body, id=f"F{n:07d}"))
        out_facts[m] = {"sensitive": False, "facts": lst}
    json.dump({"schema": "p360-feeds-facts/1", "as_of": "2025-06-30", "members": out_facts},
              open(os.path.join(args.out, "truth", "facts.json"), "w"), indent=0)
    print(f"{len(members)} members, {len(g.people) - len(members)} non-members, {len(links)} person-records, {n} facts")


if __name__ == "__main__":
    main()
