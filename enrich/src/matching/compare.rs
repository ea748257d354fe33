//! Comparison levels (Fellegi–Sunter "gamma" vectors): for each field, how well two people
//! agree, from exact down to disagreement, or no level when either side does not give it.

use super::prepare::Prepared;
use strsim::{damerau_levenshtein, jaro_winkler};

/// One letter typed wrong, left out, added or two swapped (names of four letters or more).
fn one_edit(a: &str, b: &str) -> bool {
    a.len().min(b.len()) >= 4 && damerau_levenshtein(a, b) == 1
}

pub const FIRST: usize = 0;
pub const LAST: usize = 1;
pub const MIDDLE: usize = 2;
pub const SUFFIX: usize = 3;
pub const BIRTH: usize = 4;
pub const SEX: usize = 5;
pub const STREET: usize = 6;
pub const ZIP: usize = 7;
pub const PHONE: usize = 8;
pub const EMAIL: usize = 9;
pub const FIELDS: usize = 10;

/// Number of levels per field; the last level of each is "disagrees".
pub const LEVELS: [usize; FIELDS] = [5, 5, 3, 2, 4, 2, 3, 2, 2, 2];

pub const NAMES: [&str; FIELDS] = [
    "first_name",
    "last_name",
    "middle_name",
    "suffix",
    "birth_date",
    "sex",
    "street",
    "zip",
    "phone",
    "email",
];

/// Level descriptions, for the review queue's evidence.
pub fn level_name(field: usize, level: u8) -> &'static str {
    match (field, level) {
        (_, NULL) => "not given",
        (FIRST, 0) | (LAST, 0) | (MIDDLE, 0) => "exact",
        (FIRST, 1) => "nickname",
        (LAST, 1) => "one part or former name",
        (FIRST | LAST, 2) => "one letter differs or close spelling",
        (FIRST | LAST, 3) => "sounds alike or initial",
        (MIDDLE, 1) => "initial agrees",
        (BIRTH, 0) => "exact",
        (BIRTH, 1) => "day and month swapped",
        (BIRTH, 2) => "one digit differs",
        (STREET, 0) => "exact",
        (STREET, 1) => "same number, similar street",
        (SUFFIX | SEX | ZIP | PHONE | EMAIL, 0) => "agrees",
        _ => "disagrees",
    }
}

/// No level: the field is missing on one side.
pub const NULL: u8 = u8::MAX;

pub type Gamma = [u8; FIELDS];

fn given_name(a: &Prepared, b: &Prepared, a_first: &str, a_code: &str) -> u8 {
    let (b_first, b_code) = (b.first.as_str(), b.first_code.as_str());
    if a_first.is_empty() || b_first.is_empty() {
        return NULL;
    }
    if a_first == b_first {
        return 0;
    }
    let groups_a = if a_first == a.first {
        &a.first_groups[..]
    } else {
        &[]
    };
    let groups_b = &b.first_groups[..];
    if groups_a.iter().any(|g| groups_b.contains(g)) {
        return 1;
    }
    let jw = jaro_winkler(a_first, b_first);
    if jw >= 0.92 || one_edit(a_first, b_first) {
        return 2;
    }
    let initial = (a_first.len() == 1 || b_first.len() == 1)
        && a_first.as_bytes()[0] == b_first.as_bytes()[0];
    if jw >= 0.80 || initial || (!a_code.is_empty() && a_code == b_code) {
        return 3;
    }
    4
}

fn family_name(a_last: &str, a_code: &str, a_alts: &[String], b: &Prepared) -> u8 {
    if a_last.is_empty() || b.last.is_empty() {
        return NULL;
    }
    if a_last == b.last {
        return 0;
    }
    let parts_meet = a_alts
        .iter()
        .any(|x| x == &b.last || b.last_alts.contains(x))
        || b.last_alts.iter().any(|x| x == a_last);
    if parts_meet {
        return 1;
    }
    let jw = jaro_winkler(a_last, &b.last);
    if jw >= 0.92 || one_edit(a_last, &b.last) {
        return 2;
    }
    if jw >= 0.80 || (!a_code.is_empty() && a_code == b.last_code) {
        return 3;
    }
    4
}

fn birth(a: &Prepared, b: &Prepared) -> u8 {
    let (Some(x), Some(y)) = (a.birth, b.birth) else {
        return NULL;
    };
    if x == y {
        return 0;
    }
    if a.birth_swapped() == Some(y) {
        return 1;
    }
    let (dx, dy) = (
        x.format("%Y%m%d").to_string(),
        y.format("%Y%m%d").to_string(),
    );
    let diff: Vec<usize> = dx
        .bytes()
        .zip(dy.bytes())
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| i)
        .collect();
    let transposed = diff.len() == 2
        && diff[1] == diff[0] + 1
        && dx.as_bytes()[diff[0]] == dy.as_bytes()[diff[1]]
        && dx.as_bytes()[diff[1]] == dy.as_bytes()[diff[0]];
    if diff.len() == 1 || transposed {
        return 2;
    }
    3
}

fn same<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> u8 {
    match (a, b) {
        (Some(x), Some(y)) => u8::from(x != y),
        _ => NULL,
    }
}

fn street(a: &Prepared, b: &Prepared) -> u8 {
    let (Some(x), Some(y)) = (&a.street, &b.street) else {
        return NULL;
    };
    if x == y {
        return 0;
    }
    if a.house.is_some() && a.house == b.house && jaro_winkler(x, y) >= 0.85 {
        return 1;
    }
    2
}

fn middle(a: &Prepared, b: &Prepared) -> u8 {
    if a.middle.is_empty() || b.middle.is_empty() {
        return NULL;
    }
    if a.middle == b.middle {
        return 0;
    }
    let one_initial = a.middle.len() == 1 || b.middle.len() == 1;
    if one_initial && a.middle.as_bytes()[0] == b.middle.as_bytes()[0] {
        return 1;
    }
    2
}

/// Compares a record (`a`) with a member (`b`). Names are also compared with the record's
/// given and family names swapped (`GARCIA JOSE`), and the better reading is kept; the bool
/// says whether it was the swapped one.
pub fn compare(a: &Prepared, b: &Prepared) -> (Gamma, bool) {
    let straight = (
        given_name(a, b, &a.first, &a.first_code),
        family_name(&a.last, &a.last_code, &a.last_alts, b),
    );
    let rank = |(f, l): (u8, u8)| u16::from(f.min(5)) + u16::from(l.min(5));
    // The swapped reading is only worth computing when the straight one is poor.
    let swapped = if rank(straight) >= 4 {
        (
            given_name(a, b, &a.last, &a.last_code),
            family_name(&a.first, &a.first_code, &[], b),
        )
    } else {
        (NULL, NULL)
    };
    let use_swap = swapped.0 <= 1 && swapped.1 == 0 && rank(swapped) < rank(straight);
    let (f, l) = if use_swap { swapped } else { straight };
    let mut g = [NULL; FIELDS];
    g[FIRST] = f;
    g[LAST] = l;
    g[MIDDLE] = middle(a, b);
    g[SUFFIX] = same(&a.suffix, &b.suffix);
    g[BIRTH] = birth(a, b);
    g[SEX] = same(&a.sex, &b.sex);
    g[STREET] = street(a, b);
    g[ZIP] = same(&a.zip, &b.zip);
    g[PHONE] = same(&a.phone, &b.phone);
    g[EMAIL] = same(&a.email, &b.email);
    (g, use_swap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::person::{Person, Sex};
    use chrono::NaiveDate;

    fn p(first: &str, last: &str, birth: (i32, u32, u32)) -> Prepared {
        Prepared::new(&Person {
            first: Some(first.into()),
            last: Some(last.into()),
            birth: NaiveDate::from_ymd_opt(birth.0, birth.1, birth.2),
            sex: Some(Sex::Male),
            ..Person::default()
        })
    }

    #[test]
    fn levels_follow_the_kind_of_difference() {
        let m = p("Robert", "Smith", (1970, 3, 4));
        assert_eq!(
            compare(&p("ROBERT", "SMITH", (1970, 3, 4)), &m).0[..2],
            [0, 0]
        );
        let g = compare(&p("Bob", "Smyth", (1970, 4, 3)), &m).0;
        assert_eq!((g[FIRST], g[LAST], g[BIRTH]), (1, 2, 1));
        assert_eq!(compare(&p("Robert", "Smith", (1970, 3, 7)), &m).0[BIRTH], 2);
        assert_eq!(compare(&p("Robert", "Smith", (1907, 3, 4)), &m).0[BIRTH], 2);
        assert_eq!(compare(&p("Robert", "Smith", (1975, 8, 4)), &m).0[BIRTH], 3);
        assert_eq!(compare(&p("Mary", "Smith", (1970, 3, 4)), &m).0[FIRST], 4);
        let (g, swapped) = compare(&p("SMITH", "ROBERT", (1970, 3, 4)), &m);
        assert!(swapped);
        assert_eq!(g[..2], [0, 0]);
        let hyphen = p("Ana", "Garcia-Lopez", (1980, 1, 2));
        assert_eq!(
            compare(&p("Ana", "Lopez", (1980, 1, 2)), &hyphen).0[LAST],
            1
        );
    }

    #[test]
    fn suffix_in_the_family_name_is_a_suffix() {
        let jr = p("George", "BENNETT JR", (1998, 7, 28));
        assert_eq!(jr.last, "bennett");
        assert_eq!(jr.suffix.as_deref(), Some("jr"));
    }
}
