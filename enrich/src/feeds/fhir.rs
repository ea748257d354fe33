//! FHIR R4 NDJSON, one resource per line: bulk exports (an HIE, HealthLake), CARIN Blue Button
//! ExplanationOfBenefit and the Patients they reference. Lines are read with a length cap so
//! one runaway line cannot take the memory; each is parsed on its own, so one bad line costs
//! only itself.

use super::{
    Draft, Item, LineKind, PersonRecord, Statement, Subject, class_from_pos, dotted_icd10,
    line_kind, valid_cpt,
};
use crate::person::{Person, Sex, given, parse_day};
use crate::report::FileReport;
use chrono::NaiveDate;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};

pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const LOINC: &str = "http://loinc.org";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const HCPCS: &str = "https://bluebutton.cms.gov/resources/codesystem/hcpcs";
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
pub const NPI: &str = "http://hl7.org/fhir/sid/us-npi";

/// Longest line read; a longer one is reported and skipped.
const MAX_LINE: usize = 8 << 20;

/// Resource types that carry nothing p360 resolves into facts; read and passed over quietly.
const PASSED_OVER: &[&str] = &[
    "Coverage",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Provenance",
    "Device",
    "Claim",
    "ClaimResponse",
    "DocumentReference",
    "DiagnosticReport",
    "Group",
    "RelatedPerson",
    "CareTeam",
    "CarePlan",
    "Goal",
    "ServiceRequest",
    "Specimen",
    "Media",
    "Binary",
];

/// "No known allergy" statements: not allergies.
const NO_KNOWN_ALLERGY: &[&str] = &["716186003", "409137002", "428607008", "429625007"];

pub fn read(input: impl Read, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    let mut rdr = BufReader::with_capacity(256 * 1024, input);
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        match read_capped(&mut rdr, &mut buf) {
            Ok(None) => break,
            Ok(Some(false)) => {
                report.counted();
                report.line(line, "line longer than 8 MiB: skipped");
                continue;
            }
            Ok(Some(true)) => {}
            Err(_) => {
                report.line(line, "the file could not be read past this line");
                break;
            }
        }
        let text = trim_ascii(&buf);
        if text.is_empty() {
            continue;
        }
        report.counted();
        let Ok(text) = std::str::from_utf8(text) else {
            report.line(line, "not UTF-8 text (wrong encoding)");
            continue;
        };
        let r: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                report.line(line, "not a JSON object");
                continue;
            }
            Err(e) if e.is_eof() => {
                report.line(line, "JSON ends early (truncated line)");
                continue;
            }
            Err(_) => {
                report.line(line, "not valid JSON (malformed NDJSON line)");
                continue;
            }
        };
        resource(&r, line, report, sink);
    }
}

/// Reads one line into `buf` (without its newline). `Ok(None)` at the end, `Ok(Some(false))`
/// when the line was longer than [`MAX_LINE`] (the rest of it is skipped).
fn read_capped(rdr: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    let mut any = false;
    let mut fits = true;
    loop {
        let chunk = rdr.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let nl = memchr(chunk);
        let part = &chunk[..nl.unwrap_or(chunk.len())];
        if fits && buf.len() + part.len() <= MAX_LINE {
            buf.extend_from_slice(part);
        } else {
            fits = false;
            buf.clear();
        }
        let consumed = nl.map_or(chunk.len(), |i| i + 1);
        rdr.consume(consumed);
        if nl.is_some() {
            return Ok(Some(fits));
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e]
}

fn resource(r: &Value, line: u64, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    let kind = r["resourceType"].as_str().unwrap_or_default();
    let Some(id) = r["id"].as_str().filter(|s| !s.is_empty()) else {
        report.line(line, "resource without an id");
        return;
    };
    let mut ctx = Ctx { id, report, sink };
    match kind {
        "Patient" => patient(r, &mut ctx),
        "ExplanationOfBenefit" => eob(r, &mut ctx),
        "Condition" => condition(r, &mut ctx),
        "Observation" => observation(r, &mut ctx),
        "MedicationRequest" | "MedicationStatement" => medication(r, kind, &mut ctx),
        "Encounter" => encounter(r, &mut ctx),
        "Procedure" => procedure(r, &mut ctx),
        "Immunization" => immunization(r, &mut ctx),
        "AllergyIntolerance" => allergy(r, &mut ctx),
        "" => ctx
            .report
            .line(line, "not a FHIR resource (no resourceType)"),
        k if PASSED_OVER.contains(&k) => {}
        _ => ctx
            .report
            .line(line, "unsupported resource type (not applied)"),
    }
}

struct Ctx<'a, 'r> {
    id: &'a str,
    report: &'a mut FileReport<'r>,
    sink: &'a mut dyn FnMut(Item),
}

impl Ctx<'_, '_> {
    fn problem(&mut self, reason: &str) {
        self.report.record(self.id, reason);
    }

    fn state(&mut self, subject: &Value, claim: Option<&str>, draft: Draft) {
        let Some(patient) = reference_id(subject, "Patient") else {
            self.problem("no Patient reference: the resource is not applied");
            return;
        };
        (self.sink)(Item::Statement(Statement {
            subject: Subject::Patient(patient),
            record: self.id.to_string(),
            claim: claim.map(str::to_string),
            draft,
        }));
    }
}

/// `Patient/abc` (or a full URL ending so) → `abc`.
fn reference_id(v: &Value, kind: &str) -> Option<String> {
    let r = v["reference"].as_str()?;
    let tail = r.rsplit_once(&format!("{kind}/")).map(|(_, t)| t)?;
    let id = tail.split('/').next().unwrap_or_default();
    (!id.is_empty()).then(|| id.to_string())
}

fn codings(v: &Value) -> impl Iterator<Item = (&str, &str)> {
    v["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?.trim())))
}

fn code_in<'a>(v: &'a Value, systems: &[&str]) -> Option<&'a str> {
    codings(v)
        .find(|(s, _)| systems.contains(s))
        .map(|(_, c)| c)
}

fn display_of(v: &Value, system: &str) -> Option<String> {
    v["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["system"].as_str() == Some(system))
        .and_then(|c| c["display"].as_str())
        .or(v["text"].as_str())
        .map(str::to_string)
}

fn status_code(v: &Value) -> Option<&str> {
    code_in(v, &[]).or_else(|| v["coding"][0]["code"].as_str())
}

/// A status that says the resource is not a fact.
fn ignored(status: Option<&str>) -> bool {
    matches!(
        status,
        Some("entered-in-error" | "refuted" | "cancelled" | "not-done")
    )
}

fn day(v: &Value) -> Option<NaiveDate> {
    v.as_str().and_then(parse_day)
}

fn npi_of(v: &Value) -> Option<String> {
    if v["identifier"]["system"].as_str() == Some(NPI) {
        return v["identifier"]["value"].as_str().map(str::to_string);
    }
    let r = v["reference"].as_str()?;
    let (_, npi) = r.split_once(&format!("identifier={NPI}|"))?;
    Some(npi.to_string())
}

/// The value of the first identifier whose system ends with `system_suffix` or whose type is
/// `type_code` (payors name their systems differently; the v2-0203 type is standard).
fn identifier<'a>(r: &'a Value, system_suffix: &str, type_code: &str) -> Option<&'a str> {
    r["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| {
            i["system"]
                .as_str()
                .is_some_and(|s| s.ends_with(system_suffix))
                || codings(&i["type"]).any(|(_, c)| c == type_code)
        })
        .and_then(|i| i["value"].as_str())
}

fn patient(r: &Value, ctx: &mut Ctx<'_, '_>) {
    let member_id = identifier(r, "/member-id", "MB").map(str::to_string);
    let names: Vec<&Value> = r["name"].as_array().into_iter().flatten().collect();
    let current = names
        .iter()
        .find(|n| matches!(n["use"].as_str(), Some("official" | "usual")))
        .or(names.first())
        .copied();
    let mut person = Person::default();
    if let Some(n) = current {
        let givens: Vec<&str> = n["given"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        person.first = givens.first().and_then(|g| given(g));
        person.middle = givens.get(1).and_then(|g| given(g));
        person.last = n["family"].as_str().and_then(given);
        person.suffix = n["suffix"][0].as_str().and_then(given);
    }
    for n in &names {
        if current.is_some_and(|c| std::ptr::eq(c, *n)) {
            continue;
        }
        if let Some(f) = n["family"].as_str().and_then(given) {
            person.other_last.push(f);
        }
    }
    person.birth = day(&r["birthDate"]);
    if r["birthDate"].is_string() && person.birth.is_none() {
        ctx.problem("birthDate is not a date");
    }
    person.sex = r["gender"].as_str().and_then(Sex::parse);
    let addresses: Vec<&Value> = r["address"].as_array().into_iter().flatten().collect();
    let home = addresses
        .iter()
        .find(|a| a["use"].as_str() != Some("old") && a["period"]["end"].is_null())
        .or(addresses.first());
    if let Some(a) = home {
        person.street = a["line"][0].as_str().and_then(given);
        person.city = a["city"].as_str().and_then(given);
        person.zip = a["postalCode"].as_str().and_then(given);
    }
    for t in r["telecom"].as_array().into_iter().flatten() {
        let value = t["value"].as_str().and_then(given);
        match t["system"].as_str() {
            Some("phone") if person.phone.is_none() => person.phone = value,
            Some("email") if person.email.is_none() => person.email = value,
            _ => {}
        }
    }
    (ctx.sink)(Item::Person(PersonRecord {
        key: ctx.id.to_string(),
        member_id,
        person,
    }));
}

fn eob(r: &Value, ctx: &mut Ctx<'_, '_>) {
    let claim = identifier(r, "claim-id", "uc")
        .unwrap_or(ctx.id)
        .to_string();
    // A replacement names the claim it replaces: that one is void.
    for rel in r["related"].as_array().into_iter().flatten() {
        if let Some(v) = rel["claim"]["identifier"]["value"]
            .as_str()
            .map(str::to_string)
            .or_else(|| reference_id(&rel["claim"], "Claim"))
        {
            (ctx.sink)(Item::Void(v));
        }
    }
    let valid = r["status"].as_str() == Some("active")
        && matches!(r["outcome"].as_str(), Some("complete" | "partial"));
    if !valid {
        (ctx.sink)(Item::Void(claim));
        return;
    }
    let start = day(&r["billablePeriod"]["start"]);
    let subject = r["patient"].clone();
    if let Some(date) = start {
        for d in r["diagnosis"].as_array().into_iter().flatten() {
            let cc = &d["diagnosisCodeableConcept"];
            match code_in(cc, &[ICD10CM]).map(dotted_icd10) {
                Some(Some(code)) => ctx.state(
                    &subject,
                    Some(&claim),
                    Draft::Condition {
                        code,
                        display: display_of(cc, ICD10CM),
                        date,
                    },
                ),
                Some(None) => ctx.problem("diagnosis is not an ICD-10-CM code"),
                None => {}
            }
        }
    } else {
        ctx.problem("billablePeriod.start is not a date: diagnoses not applied");
    }
    let care_team: Vec<&Value> = r["careTeam"].as_array().into_iter().flatten().collect();
    let rendering = care_team
        .iter()
        .find(|c| codings(&c["role"]).any(|(_, code)| matches!(code, "performing" | "rendering")))
        .and_then(|c| npi_of(&c["provider"]));
    let billing = npi_of(&r["provider"]);
    for item in r["item"].as_array().into_iter().flatten() {
        let Some(cpt) = code_in(&item["productOrService"], &[CPT, HCPCS]) else {
            continue;
        };
        let cpt = cpt.to_ascii_uppercase();
        if !valid_cpt(&cpt) {
            ctx.problem("item productOrService is not a CPT/HCPCS code");
            continue;
        }
        let Some(date) = day(&item["servicedDate"])
            .or_else(|| day(&item["servicedPeriod"]["start"]))
            .or(start)
        else {
            ctx.problem("item without a service date: not applied");
            continue;
        };
        let pos = codings(&item["locationCodeableConcept"])
            .next()
            .map_or("", |(_, c)| c);
        let draft = match line_kind(&cpt) {
            LineKind::Visit => Draft::Encounter {
                class: class_from_pos(pos).to_string(),
                date,
                npi: rendering.clone().or(billing.clone()),
                kind: Some(cpt),
            },
            LineKind::Vaccine(cvx) => Draft::Immunization {
                cvx: cvx.to_string(),
                date,
            },
            LineKind::Procedure => Draft::Procedure { cpt, date },
        };
        ctx.state(&subject, Some(&claim), draft);
    }
}

fn condition(r: &Value, ctx: &mut Ctx<'_, '_>) {
    if ignored(status_code(&r["verificationStatus"])) {
        return;
    }
    let code = match code_in(&r["code"], &[ICD10CM]) {
        None => {
            ctx.problem("Condition without an ICD-10-CM code (not applied)");
            return;
        }
        Some(raw) => match dotted_icd10(raw) {
            Some(c) => c,
            None => {
                ctx.problem("Condition code is not an ICD-10-CM code");
                return;
            }
        },
    };
    let Some(date) = day(&r["onsetDateTime"])
        .or_else(|| day(&r["onsetPeriod"]["start"]))
        .or_else(|| day(&r["recordedDate"]))
    else {
        ctx.problem("Condition without an onset or recorded date (not applied)");
        return;
    };
    ctx.state(
        &r["subject"],
        None,
        Draft::Condition {
            display: display_of(&r["code"], ICD10CM),
            code,
            date,
        },
    );
}

/// A numeric value: `valueQuantity`, or a `valueString` such as `<20`.
fn quantity(v: &Value, string: &Value) -> Option<(f64, Option<String>, Option<String>)> {
    if let Some(n) = v["value"].as_f64() {
        let unit = v["code"]
            .as_str()
            .or(v["unit"].as_str())
            .map(str::to_string);
        let cmp = v["comparator"].as_str().map(str::to_string);
        return Some((n, cmp, unit));
    }
    let s = string.as_str()?.trim();
    let (cmp, rest) = ["<=", ">=", "<", ">"]
        .iter()
        .find_map(|c| s.strip_prefix(c).map(|r| (Some(c.to_string()), r)))
        .unwrap_or((None, s));
    rest.trim().parse::<f64>().ok().map(|n| (n, cmp, None))
}

fn observation(r: &Value, ctx: &mut Ctx<'_, '_>) {
    if ignored(r["status"].as_str()) {
        return;
    }
    let Some(date) = day(&r["effectiveDateTime"])
        .or_else(|| day(&r["effectivePeriod"]["start"]))
        .or_else(|| day(&r["issued"]))
    else {
        ctx.problem("Observation without an effective date (not applied)");
        return;
    };
    if let Some((value, comparator, unit)) = quantity(&r["valueQuantity"], &r["valueString"]) {
        match code_in(&r["code"], &[LOINC]) {
            Some(loinc) if p360_model::CodeSystem::Loinc.check_code(loinc) => {
                ctx.state(
                    &r["subject"],
                    None,
                    Draft::Observation {
                        loinc: loinc.to_string(),
                        display: display_of(&r["code"], LOINC),
                        value,
                        comparator,
                        unit,
                        date,
                    },
                );
            }
            Some(_) => ctx.problem("Observation code is not a valid LOINC code"),
            None => ctx.problem("Observation without a LOINC code (not applied)"),
        }
    }
    for c in r["component"].as_array().into_iter().flatten() {
        let Some((value, comparator, unit)) = quantity(&c["valueQuantity"], &c["valueString"])
        else {
            continue;
        };
        let Some(loinc) =
            code_in(&c["code"], &[LOINC]).filter(|l| p360_model::CodeSystem::Loinc.check_code(l))
        else {
            ctx.problem("Observation component without a valid LOINC code");
            continue;
        };
        ctx.state(
            &r["subject"],
            None,
            Draft::Observation {
                loinc: loinc.to_string(),
                display: display_of(&c["code"], LOINC),
                value,
                comparator,
                unit,
                date,
            },
        );
    }
}

fn medication(r: &Value, kind: &str, ctx: &mut Ctx<'_, '_>) {
    if ignored(r["status"].as_str()) {
        return;
    }
    let concept = &r["medicationCodeableConcept"];
    let rxnorm: Vec<String> = codings(concept)
        .filter(|(s, _)| *s == RXNORM)
        .map(|(_, c)| c.to_string())
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()) && !c.is_empty())
        .collect();
    let ndc = code_in(concept, &[NDC]).map(|n| n.replace('-', ""));
    let name = concept["text"]
        .as_str()
        .or(concept["coding"][0]["display"].as_str())
        .map(str::to_string);
    if rxnorm.is_empty() && ndc.is_none() && name.is_none() {
        ctx.problem("medication without an RxNorm code, NDC or name (not applied)");
        return;
    }
    let date = if kind == "MedicationRequest" {
        day(&r["authoredOn"])
    } else {
        day(&r["effectiveDateTime"])
            .or_else(|| day(&r["effectivePeriod"]["start"]))
            .or_else(|| day(&r["dateAsserted"]))
    };
    let Some(date) = date else {
        ctx.problem("medication without a date (not applied)");
        return;
    };
    ctx.state(
        &r["subject"],
        None,
        Draft::Medication {
            ingredient: None,
            rxnorm,
            ndc,
            name,
            date,
            fill: false,
        },
    );
}

fn encounter(r: &Value, ctx: &mut Ctx<'_, '_>) {
    if r["status"].as_str() != Some("finished") {
        return;
    }
    let Some(date) = day(&r["period"]["start"]) else {
        ctx.problem("Encounter without period.start (not applied)");
        return;
    };
    let class = r["class"]["code"].as_str().unwrap_or("AMB").to_string();
    let npi = r["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|p| npi_of(&p["individual"]));
    let kind = r["type"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|t| code_in(t, &[CPT]))
        .map(str::to_string);
    ctx.state(
        &r["subject"],
        None,
        Draft::Encounter {
            class,
            date,
            npi,
            kind,
        },
    );
}

fn procedure(r: &Value, ctx: &mut Ctx<'_, '_>) {
    if ignored(r["status"].as_str()) {
        return;
    }
    let Some(cpt) = code_in(&r["code"], &[CPT, HCPCS]).map(str::to_ascii_uppercase) else {
        ctx.problem("Procedure without a CPT/HCPCS code (not applied)");
        return;
    };
    if !valid_cpt(&cpt) {
        ctx.problem("Procedure code is not a CPT/HCPCS code");
        return;
    }
    let Some(date) = day(&r["performedDateTime"]).or_else(|| day(&r["performedPeriod"]["start"]))
    else {
        ctx.problem("Procedure without a performed date (not applied)");
        return;
    };
    ctx.state(&r["subject"], None, Draft::Procedure { cpt, date });
}

fn immunization(r: &Value, ctx: &mut Ctx<'_, '_>) {
    if r["status"].as_str() != Some("completed") {
        return;
    }
    let Some(cvx) = code_in(&r["vaccineCode"], &[CVX]) else {
        ctx.problem("Immunization without a CVX code (not applied)");
        return;
    };
    if !p360_model::CodeSystem::Cvx.check_code(cvx) {
        ctx.problem("Immunization vaccineCode is not a CVX code");
        return;
    }
    let Some(date) = day(&r["occurrenceDateTime"]) else {
        ctx.problem("Immunization without an occurrence date (not applied)");
        return;
    };
    ctx.state(
        &r["patient"],
        None,
        Draft::Immunization {
            cvx: cvx.to_string(),
            date,
        },
    );
}

fn allergy(r: &Value, ctx: &mut Ctx<'_, '_>) {
    let verification = status_code(&r["verificationStatus"]);
    if ignored(verification) || verification == Some("unconfirmed") {
        return;
    }
    let Some((system, code)) = codings(&r["code"]).next() else {
        ctx.problem("AllergyIntolerance without a coded substance (not applied)");
        return;
    };
    if NO_KNOWN_ALLERGY.contains(&code) {
        return;
    }
    ctx.state(
        &r["patient"],
        None,
        Draft::Allergy {
            system: system.to_string(),
            code: code.to_string(),
            display: display_of(&r["code"], system),
            date: day(&r["recordedDate"]).or_else(|| day(&r["onsetDateTime"])),
        },
    );
}
