//! The shipped ICD-10-CM table is the whole FY2026 code set, 7th-character codes included, with
//! CMS's billable flags: a code that takes a 7th character is billable only with it. Fails if
//! `scripts/gen-icd10cm.py` or its output regresses.

use p360_extract::clinical;
use p360_extract::layout::{BBox, Engine, Layout, Line, Page, Word};
use p360_extract::terminology::icd10cm::table;

fn billable(code: &str) -> Option<bool> {
    table().get(code).map(|c| c.2)
}

#[test]
fn whole_code_set_with_seventh_characters() {
    let t = table();
    let n = t.iter().filter(|c| c.2).count();
    // FY2026 (April 1, 2026): 98,186 codes, 74,719 billable.
    assert!(n >= 70_000, "{n} billable codes");
    assert!(t.len() >= 95_000, "{} codes", t.len());

    let (code, desc, b) = t.get("S72.001A").expect("S72.001A");
    assert_eq!(code, "S72.001A");
    assert!(b);
    assert!(desc.contains("initial encounter"), "{desc}");
    assert!(desc.starts_with("Fracture of unspecified part of neck of right femur, "));
    assert_eq!(billable("S72.001"), Some(false), "takes a 7th character");
    assert_eq!(
        billable("s72001a"),
        Some(true),
        "looked up without dot, any case"
    );

    // Padded with the placeholder X to 6 characters before the 7th.
    assert_eq!(billable("T78.2XXA"), Some(true));
    assert_eq!(billable("T78.2"), Some(false));
    assert_eq!(billable("T81.40XA"), Some(true));
    // T81.4XXA was deleted in FY2024 (T81.4 split into T81.40–T81.49).
    assert_eq!(billable("T81.4"), Some(false));
    assert_eq!(billable("T81.4XXA"), None);
    // Digits as 7th characters (fetus), and a nested definition overriding its category's.
    assert_eq!(billable("O36.5930"), Some(true));
    assert_eq!(billable("O36.593"), Some(false));
    assert_eq!(
        billable("S42.271A"),
        Some(true),
        "torus fracture: A, D, G, K, P, S"
    );
    assert_eq!(billable("S42.271B"), None);
    // S06's note: D and S do not apply when the 6th character is 7 or 8.
    assert_eq!(billable("S06.1X7A"), Some(true));
    assert_eq!(billable("S06.1X7D"), None);

    assert_eq!(billable("E11.9"), Some(true));
    assert_eq!(billable("E11"), Some(false));
    assert_eq!(billable("A00.0"), Some(true));
    assert_eq!(billable("I10"), Some(true));
}

#[test]
fn printed_codes_are_repaired_towards_real_billable_codes() {
    let t = table();
    let r = |s: &str| t.resolve_printed(s).map(|c| (c.0, c.2));
    assert_eq!(r("S72.001A"), Some(("S72.001A", true)));
    assert_eq!(r("S72.OO1A"), Some(("S72.001A", true)));
    assert_eq!(
        r("S72.OO1D"),
        Some(("S72.001D", true)),
        "D is a 7th character here"
    );
    assert_eq!(r("S72.0015"), Some(("S72.001S", true)), "5 read for S");
    assert_eq!(r("T78.2XXA"), Some(("T78.2XXA", true)));
    assert_eq!(r("O36.593O"), Some(("O36.5930", true)));
    assert_eq!(r("I1O"), Some(("I10", true)));
    assert_eq!(r("E1l.9"), Some(("E11.9", true)));
    // A printed parent stays what was printed.
    assert_eq!(r("S72.001"), Some(("S72.001", false)));
}

fn line(text: &str, y: u32) -> Line {
    Line::new(
        text.split_whitespace()
            .enumerate()
            .map(|(i, t)| Word {
                text: t.into(),
                bbox: BBox {
                    x: 10 + 100 * i as u32,
                    y,
                    width: 90,
                    height: 20,
                },
                confidence: 0.95,
            })
            .collect(),
    )
}

#[test]
fn diagnosis_lines_keep_seventh_character_codes() {
    let layout = Layout {
        failed_pages: Vec::new(),
        engine: Engine {
            name: "test".into(),
            version: "0".into(),
        },
        pages: vec![Page {
            number: 1,
            width: 1000,
            height: 1000,
            deskew_degrees: 0.0,
            quarter_turns: 0,
            normalization: None,
            lines: vec![
                line("Discharge Diagnoses", 60),
                line(
                    "1. S72.001A Fracture of unspecified part of neck of right femur, initial encounter for closed fracture",
                    100,
                ),
                line("2. T78.2XXA - Anaphylactic shock", 140),
                line(
                    "3. S93.4O2A Sprain of unspecified ligament of left ankle",
                    180,
                ),
            ],
        }],
    };
    let got: Vec<(String, bool)> = clinical::extract(&layout)
        .conditions
        .into_iter()
        .map(|c| (c.icd10cm, c.code_printed))
        .collect();
    let want = ["S72.001A", "T78.2XXA", "S93.402A"];
    assert_eq!(
        got,
        want.map(|c| (c.to_string(), true)).to_vec(),
        "printed codes, the third repaired"
    );
    for c in want {
        assert_eq!(billable(c), Some(true), "{c}");
    }
}
