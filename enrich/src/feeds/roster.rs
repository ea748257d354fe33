//! `members.csv`: the eligibility roster (834-like). Authoritative for who is a member and for
//! the current member id; a member who re-enrolled keeps the earlier id as `previous_member_id`.

use super::csvfile::read_rows;
use crate::person::{Person, Sex, given, parse_day};
use crate::report::FileReport;
use std::io::Read;

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub member_id: String,
    /// Earlier ids (`;`- or `|`-separated in the column when there are several).
    pub previous_ids: Vec<String>,
    pub person: Person,
    pub plan_id: Option<String>,
    /// US state of the address (the dashboards' region).
    pub state: Option<String>,
    pub coverage_start: Option<chrono::NaiveDate>,
    pub coverage_end: Option<chrono::NaiveDate>,
}

const REQUIRED: &[&str] = &["member_id", "first_name", "last_name", "birth_date", "sex"];

pub fn read(input: impl Read, report: &mut FileReport<'_>) -> Vec<Member> {
    let mut out = Vec::new();
    read_rows(input, REQUIRED, report, &mut |row, report| {
        let id = row.get("member_id");
        if id.is_empty() {
            report.line(row.line, "member_id missing");
            return;
        }
        let birth = parse_day(row.get("birth_date"));
        if birth.is_none() {
            report.record(id, "birth_date is not a date");
        }
        out.push(Member {
            member_id: id.to_string(),
            previous_ids: row
                .get("previous_member_id")
                .split([';', '|', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            person: Person {
                first: given(row.get("first_name")),
                middle: given(row.get("middle_name")),
                last: given(row.get("last_name")),
                suffix: given(row.get("suffix")),
                other_last: Vec::new(),
                birth,
                sex: Sex::parse(row.get("sex")),
                street: given(row.get("address_line")),
                city: given(row.get("city")),
                zip: given(row.get("zip")),
                phone: given(row.get("phone")),
                email: given(row.get("email")),
            },
            plan_id: row.opt("plan_id").map(str::to_string),
            state: row
                .opt("state")
                .map(|s| s.trim().to_ascii_uppercase())
                .filter(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())),
            coverage_start: row.opt("coverage_start").and_then(parse_day),
            coverage_end: row.opt("coverage_end").and_then(parse_day),
        });
    });
    out
}
