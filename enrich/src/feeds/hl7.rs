//! HL7 v2.5.1 ORU^R01 lab results (ER7 encoding).
//!
//! Written here rather than taken from a crate: the feed needs only ER7 splitting (segments,
//! fields, repetitions, components, the escape sequences of MSH-2) plus a handful of fields,
//! and it must treat each message as its own record: a damaged message is one line in the
//! report, not a failed file, and a Latin-1 message declared in MSH-18 must still decode.
//! The maintained crates we looked at (`rust-hl7`, self-described as experimental; `hl7v2`
//! with conformance profiles) parse whole messages into trees and stop at the first error.
//!
//! One person-record per message (key MSH-10); one lab observation per final OBX.

use super::{Draft, Item, PersonRecord, Statement, Subject};
use crate::person::{Person, Sex, given, parse_day};
use crate::report::FileReport;
use std::io::{BufRead, BufReader, Read};

/// The longest message read; longer ones are reported and skipped.
const MAX_MESSAGE: usize = 4 << 20;

pub fn read(input: impl Read, report: &mut FileReport<'_>, sink: &mut dyn FnMut(Item)) {
    let mut rdr = BufReader::with_capacity(256 * 1024, input);
    let mut line = 0u64;
    let mut buf = Vec::new();
    // Segments of the message being gathered, and the line its MSH was on.
    let mut msg: Vec<Vec<u8>> = Vec::new();
    let mut msg_line = 0u64;
    let mut size = 0usize;
    loop {
        buf.clear();
        match rdr.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => line += 1,
            Err(_) => {
                report.line(line + 1, "the file could not be read past this line");
                break;
            }
        }
        for seg in buf.split(|&b| b == b'\r' || b == b'\n') {
            let seg = seg.strip_prefix(b"\x0b").unwrap_or(seg); // MLLP start block
            let seg = seg.strip_suffix(b"\x1c").unwrap_or(seg); // MLLP end block
            if seg.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if seg.starts_with(b"MSH") {
                if !msg.is_empty() {
                    message(&msg, msg_line, report, sink);
                }
                msg.clear();
                size = 0;
                msg_line = line;
            } else if msg.is_empty() {
                report.line(line, "segment outside a message (no MSH before it)");
                continue;
            }
            size += seg.len();
            if size > MAX_MESSAGE {
                if msg.first().is_none_or(|m| !m.is_empty()) {
                    report.line(msg_line, "message longer than 4 MiB: skipped");
                }
                // An empty MSH marks a message being skipped.
                msg.clear();
                msg.push(Vec::new());
                continue;
            }
            msg.push(seg.to_vec());
        }
    }
    if !msg.is_empty() {
        message(&msg, msg_line, report, sink);
    }
}

/// The delimiters a message declares in MSH-1 and MSH-2.
#[derive(Clone, Copy)]
struct Delims {
    field: char,
    component: char,
    repetition: char,
    escape: char,
    sub: char,
}

struct Segment<'a> {
    name: &'a str,
    fields: Vec<&'a str>,
}

impl<'a> Segment<'a> {
    /// Field `n` as the standard numbers it (MSH-1 is the separator itself).
    fn field(&self, n: usize) -> &'a str {
        let i = if self.name == "MSH" {
            n.wrapping_sub(1)
        } else {
            n
        };
        self.fields.get(i).copied().unwrap_or("")
    }
}

fn comp(d: Delims, field: &str, n: usize) -> &str {
    field.split(d.component).nth(n - 1).unwrap_or("").trim()
}

fn reps(d: Delims, field: &str) -> impl Iterator<Item = &str> {
    field.split(d.repetition).filter(|r| !r.is_empty())
}

/// Undoes the escape sequences `\F\ \S\ \T\ \R\ \E\` (others are dropped with their text).
fn unescape(d: Delims, s: &str) -> String {
    if !s.contains(d.escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.split(d.escape);
    out.push_str(it.next().unwrap_or(""));
    let mut inside = true;
    for part in it {
        if inside {
            match part {
                "F" => out.push(d.field),
                "S" => out.push(d.component),
                "T" => out.push(d.sub),
                "R" => out.push(d.repetition),
                "E" => out.push(d.escape),
                _ => {}
            }
        } else {
            out.push_str(part);
        }
        inside = !inside;
    }
    out
}

fn message(
    segments: &[Vec<u8>],
    line: u64,
    report: &mut FileReport<'_>,
    sink: &mut dyn FnMut(Item),
) {
    report.counted();
    let msh = &segments[0];
    if msh.is_empty() {
        return; // an over-long message, already reported
    }
    // MSH-18 names the character set; UTF-8 unless it says Latin-1.
    let latin1 = String::from_utf8_lossy(msh).contains("8859/1");
    let decode = |b: &[u8]| -> Option<String> {
        match std::str::from_utf8(b) {
            Ok(s) => Some(s.to_string()),
            Err(_) if latin1 => Some(b.iter().map(|&c| c as char).collect()),
            Err(_) => None,
        }
    };
    let mut texts = Vec::with_capacity(segments.len());
    for s in segments {
        match decode(s) {
            Some(t) => texts.push(t),
            None => {
                report.line(
                    line,
                    "message is not UTF-8 text and MSH-18 declares no other (wrong encoding)",
                );
                return;
            }
        }
    }
    let head = &texts[0];
    let mut chars = head.chars().skip(3);
    let (Some(field), Some(component), Some(repetition), Some(escape), Some(sub)) = (
        chars.next(),
        chars.next(),
        chars.next(),
        chars.next(),
        chars.next(),
    ) else {
        report.line(line, "unparsable MSH segment (no delimiters)");
        return;
    };
    let d = Delims {
        field,
        component,
        repetition,
        escape,
        sub,
    };
    let mut segs = Vec::with_capacity(texts.len());
    for t in &texts {
        let fields: Vec<&str> = t.split(d.field).collect();
        let name = fields[0].trim();
        if name.len() != 3 || !name.bytes().all(|b| b.is_ascii_alphanumeric()) || fields.len() < 2 {
            report.line(line, "unparsable segment (no segment name and fields)");
            continue;
        }
        segs.push(Segment { name, fields });
    }
    let Some(msh) = segs.first().filter(|s| s.name == "MSH") else {
        report.line(line, "unparsable MSH segment: message not applied");
        return;
    };
    let key = msh.field(10).trim();
    if key.is_empty() {
        report.line(line, "message without a control id (MSH-10): not applied");
        return;
    }
    let kind = msh.field(9);
    if comp(d, kind, 1) != "ORU" || comp(d, kind, 2) != "R01" {
        report.record(key, "not an ORU^R01 message (not applied)");
        return;
    }
    let Some(pid) = segs.iter().find(|s| s.name == "PID") else {
        report.record(key, "message without a PID segment: not applied");
        return;
    };
    sink(Item::Person(person(d, pid, key, report)));
    let mut obr_time = "";
    for s in &segs {
        match s.name {
            "OBR" => obr_time = s.field(7),
            "OBX" => {
                if let Some(draft) = obx(d, s, obr_time, key, report) {
                    sink(Item::Statement(Statement {
                        subject: Subject::Record(key.to_string()),
                        record: key.to_string(),
                        claim: None,
                        draft,
                    }));
                }
            }
            _ => {}
        }
    }
}

fn person(d: Delims, pid: &Segment<'_>, key: &str, report: &mut FileReport<'_>) -> PersonRecord {
    let member_id = reps(d, pid.field(3))
        .find(|r| comp(d, r, 4).eq_ignore_ascii_case("PAYOR"))
        .map(|r| unescape(d, comp(d, r, 1)))
        .filter(|s| !s.is_empty());
    let mut person = Person::default();
    let names: Vec<&str> = reps(d, pid.field(5)).collect();
    let legal = names.iter().position(|n| comp(d, n, 7) == "L").unwrap_or(0);
    for (i, n) in names.iter().enumerate() {
        let family = given(&unescape(d, comp(d, n, 1)));
        if i == legal {
            person.last = family;
            person.first = given(&unescape(d, comp(d, n, 2)));
            person.middle = given(&unescape(d, comp(d, n, 3)));
            person.suffix = given(comp(d, n, 4));
        } else if let Some(f) = family {
            person.other_last.push(f);
        }
    }
    let birth = pid.field(7).trim();
    person.birth = parse_day(birth);
    if !birth.is_empty() && person.birth.is_none() {
        report.record(key, "PID-7 is not a date");
    }
    person.sex = Sex::parse(pid.field(8));
    if let Some(a) = reps(d, pid.field(11)).next() {
        person.street = given(&unescape(d, comp(d, a, 1)));
        person.city = given(comp(d, a, 3));
        person.zip = given(comp(d, a, 5));
    }
    for t in reps(d, pid.field(13)) {
        if comp(d, t, 3).eq_ignore_ascii_case("Internet") || comp(d, t, 2) == "NET" {
            person.email = given(&unescape(d, comp(d, t, 4)));
        } else if person.phone.is_none() {
            let number = format!("{}{}", comp(d, t, 6), comp(d, t, 7));
            person.phone = given(&number).or_else(|| given(comp(d, t, 1)));
        }
    }
    PersonRecord {
        key: key.to_string(),
        member_id,
        person,
    }
}

fn obx(
    d: Delims,
    s: &Segment<'_>,
    obr_time: &str,
    key: &str,
    report: &mut FileReport<'_>,
) -> Option<Draft> {
    let status = s.field(11).trim();
    if !matches!(status, "F" | "C") {
        return None;
    }
    let id = s.field(3);
    let loinc = if comp(d, id, 3) == "LN" {
        comp(d, id, 1)
    } else if comp(d, id, 6) == "LN" {
        comp(d, id, 4)
    } else {
        ""
    };
    if !p360_model::CodeSystem::Loinc.check_code(loinc) {
        report.record(key, "OBX-3 carries no valid LOINC code: result not applied");
        return None;
    }
    let display = given(comp(d, id, if comp(d, id, 3) == "LN" { 2 } else { 5 }));
    let raw = s.field(5);
    let (value, comparator) = match s.field(2).trim() {
        "SN" => {
            let cmp = comp(d, raw, 1);
            if !comp(d, raw, 3).is_empty() {
                report.record(key, "OBX-5 is a range or ratio, not one value: not applied");
                return None;
            }
            (
                comp(d, raw, 2).parse::<f64>().ok(),
                (!cmp.is_empty() && cmp != "=").then(|| cmp.to_string()),
            )
        }
        "NM" | "ST" | "TX" | "" => {
            let t = raw.trim();
            let (cmp, rest) = ["<=", ">=", "<", ">"]
                .iter()
                .find_map(|c| t.strip_prefix(c).map(|r| (Some(c.to_string()), r)))
                .unwrap_or((None, t));
            (rest.trim().parse::<f64>().ok(), cmp)
        }
        _ => return None, // coded or text results: not a quantity
    };
    let Some(value) = value.filter(|v| v.is_finite()) else {
        report.record(key, "OBX-5 is not a number: result not applied");
        return None;
    };
    let Some(date) = parse_day(s.field(14)).or_else(|| parse_day(obr_time)) else {
        report.record(
            key,
            "OBX without a collection time (OBX-14, OBR-7): not applied",
        );
        return None;
    };
    Some(Draft::Observation {
        loinc: loinc.to_string(),
        display,
        value,
        comparator,
        unit: given(comp(d, s.field(6), 1)),
        date,
    })
}
