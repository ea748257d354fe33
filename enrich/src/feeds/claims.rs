//! `claims.csv`: medical claim lines (837-like). Every line is a person-record; a claim that is
//! not void states its diagnoses (conditions) and, per line, a visit (encounter), a vaccine
//! (immunization) or a procedure.

use super::csvfile::{Row, birth_date, claim_status, read_rows};
use super::{
    Draft, Item, LineKind, PersonRecord, Statement, Subject, class_from_pos, dotted_icd10,
    line_kind, valid_cpt,
};
use crate::person::{Person, Sex, given, parse_day};
use crate::report::FileReport;
use std::io::Read;

const REQUIRED: &[&str] = &[
    "claim_id",
    "line_number",
    "member_id",
    "patient_first_name",
    "patient_last_name",
    "patient_birth_date",
    "patient_sex",
    "service_from",
    "place_of_service",
    "billing_npi",
    "rendering_npi",
    "diagnosis_1",
    "procedure_code",
    "claim_status",
    "original_claim_id",
];

pub fn read(input: impl Read, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    read_rows(input, REQUIRED, report, &mut |row, report| {
        line(row, report, sink)
    });
}

fn line(row: &Row<'_>, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    let claim = row.get("claim_id");
    let line_no = row.get("line_number");
    if claim.is_empty() || line_no.parse::<u32>().is_err() {
        report.line(row.line, "claim_id or line_number missing or not a number");
        return;
    }
    let key = format!("{claim}:{line_no}");
    let Some(paid) = claim_status(row, claim, &key, true, report, sink) else {
        return;
    };
    let birth = birth_date(row, &key, report);
    sink(Item::Person(PersonRecord {
        key: key.clone(),
        member_id: row.opt("member_id").map(str::to_string),
        person: Person {
            first: given(row.get("patient_first_name")),
            middle: given(row.get("patient_middle_name")),
            last: given(row.get("patient_last_name")),
            birth,
            sex: Sex::parse(row.get("patient_sex")),
            ..Person::default()
        },
    }));
    if !paid {
        return;
    }
    let Some(date) = parse_day(row.get("service_from")) else {
        report.record(&key, "service_from is not a date: the line states no facts");
        return;
    };
    let stmt = |draft| {
        Item::Statement(Statement {
            subject: Subject::Record(key.clone()),
            record: claim.to_string(),
            claim: Some(claim.to_string()),
            draft,
        })
    };
    for n in 1..=12 {
        let col = format!("diagnosis_{n}");
        let Some(raw) = row.opt(&col) else { continue };
        match dotted_icd10(raw) {
            Some(code) => sink(stmt(Draft::Condition {
                code,
                display: None,
                date,
            })),
            None => report.record(&key, format!("{col} is not an ICD-10-CM code")),
        }
    }
    let cpt = row.get("procedure_code").to_ascii_uppercase();
    if cpt.is_empty() {
        return;
    }
    if !valid_cpt(&cpt) {
        report.record(&key, "procedure_code is not a CPT/HCPCS code");
        return;
    }
    let npi = row
        .opt("rendering_npi")
        .or(row.opt("billing_npi"))
        .map(str::to_string);
    sink(stmt(match line_kind(&cpt) {
        LineKind::Visit => Draft::Encounter {
            class: class_from_pos(row.get("place_of_service")).to_string(),
            date,
            npi,
            kind: Some(cpt),
        },
        LineKind::Vaccine(cvx) => Draft::Immunization {
            cvx: cvx.to_string(),
            date,
        },
        LineKind::Procedure => Draft::Procedure { cpt, date },
    }));
}
