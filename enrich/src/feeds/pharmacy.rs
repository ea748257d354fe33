//! `pharmacy.csv`: pharmacy claims (NCPDP-like), one row per fill. Every row is a
//! person-record; a valid fill states a medication (its ingredient) on the fill date.

use super::csvfile::{Row, birth_date, claim_status, read_rows};
use super::{Draft, Item, PersonRecord, Statement, Subject};
use crate::person::{Person, Sex, given, parse_day};
use crate::report::FileReport;
use std::io::Read;

const REQUIRED: &[&str] = &[
    "claim_id",
    "member_id",
    "patient_first_name",
    "patient_last_name",
    "patient_birth_date",
    "patient_sex",
    "fill_date",
    "ndc",
    "rxnorm_ingredient",
    "drug_name",
    "claim_status",
    "original_claim_id",
];

pub fn read(input: impl Read, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    read_rows(input, REQUIRED, report, &mut |row, report| {
        fill(row, report, sink)
    });
}

fn fill(row: &Row<'_>, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    let key = row.get("claim_id");
    if key.is_empty() {
        report.line(row.line, "claim_id missing");
        return;
    }
    let Some(paid) = claim_status(row, key, key, false, report, sink) else {
        return;
    };
    let birth = birth_date(row, key, report);
    sink(Item::Person(PersonRecord {
        key: key.to_string(),
        member_id: row.opt("member_id").map(str::to_string),
        person: Person {
            first: given(row.get("patient_first_name")),
            last: given(row.get("patient_last_name")),
            birth,
            sex: Sex::parse(row.get("patient_sex")),
            ..Person::default()
        },
    }));
    let ndc: String = row.get("ndc").chars().filter(|c| *c != '-').collect();
    let ndc = (!ndc.is_empty()).then_some(ndc);
    if let Some(n) = &ndc
        && (n.len() != 11 || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        report.record(key, "ndc is not an 11-digit NDC");
        return;
    }
    let ingredient = row.opt("rxnorm_ingredient").map(str::to_string);
    if let Some(i) = &ingredient {
        if !i.bytes().all(|b| b.is_ascii_digit()) {
            report.record(key, "rxnorm_ingredient is not an RxCUI");
            return;
        }
        if let Some(n) = &ndc {
            sink(Item::NdcIngredient {
                ndc: n.clone(),
                rxcui: i.clone(),
            });
        }
    }
    if !paid {
        return;
    }
    let Some(date) = parse_day(row.get("fill_date")) else {
        report.record(key, "fill_date is not a date: the fill states no facts");
        return;
    };
    sink(Item::Statement(Statement {
        subject: Subject::Record(key.to_string()),
        record: key.to_string(),
        claim: Some(key.to_string()),
        draft: Draft::Medication {
            ingredient,
            rxnorm: Vec::new(),
            ndc,
            name: row.opt("drug_name").map(str::to_string),
            date,
            fill: true,
        },
    }));
}
