//! `LAKE.md` (the data dictionary) and `infra/lake-tables.yaml` (the Glue tables) are generated
//! from the lake's table definitions; this fails when either disagrees with the code.
//! `P360_BLESS=1 cargo test -p p360-sink --test lake_schema` rewrites them.
#![allow(clippy::unwrap_used)]

use p360_sink::lake::tables::{Table, glue_template, markdown};

fn check(path: &str, want: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    if std::env::var_os("P360_BLESS").is_some() {
        std::fs::write(&path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is out of date with sink/src/lake/tables.rs: rerun with P360_BLESS=1",
        path.display()
    );
}

#[test]
fn data_dictionary_is_current() {
    check("LAKE.md", &markdown());
}

#[test]
fn glue_tables_are_current() {
    check("infra/lake-tables.yaml", &glue_template());
}

#[test]
fn every_table_and_column_is_documented_and_every_table_has_a_change_id() {
    for t in Table::ALL {
        assert!(!t.description().is_empty(), "{}", t.name());
        let names: Vec<&str> = t.columns().iter().map(|c| c.0).collect();
        assert!(names.contains(&"change_id"), "{} lacks change_id", t.name());
        assert!(
            names.contains(&"patient_key"),
            "{} lacks patient_key",
            t.name()
        );
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{} repeats a column", t.name());
        for (name, _, what) in t.columns() {
            assert!(what.len() > 3, "{}.{name} is undocumented", t.name());
        }
    }
}
