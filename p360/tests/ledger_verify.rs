//! `p360 ledger verify`, run as an operator would, on ledgers tampered with as someone with
//! access to the database file could: an edited, a deleted, a reordered, a re-attributed and a
//! truncated ledger each fail with exit code 1 and a message that says what and where.
#![allow(clippy::unwrap_used)]

use p360::Config;
use p360_consent::ledger::Access;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::Command;

fn p360(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_p360"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("P360_LOG", "error")
        .output()
        .expect("run p360");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn access(patient: &str, actor: &str) -> Access {
    Access {
        at: chrono::Utc::now(),
        patient: p360_events::PatientId::parse(patient).unwrap(),
        actor: actor.into(),
        role: "provider".into(),
        action: "read".into(),
        resource_types: vec!["Observation".into()],
        resource_ids: vec!["f-1".into()],
        resource_count: 1,
        grant_id: Some("grant-1".into()),
        purpose: Some("treatment".into()),
        outcome: "permit".into(),
        rule: "grant".into(),
        break_glass: false,
    }
}

/// A data directory whose ledger has six entries (three patients' accesses), checkpointed at
/// its head through the command; the triggers that make it append-only are dropped, as
/// someone with the file would.
async fn ledger_dir() -> (tempfile::TempDir, PathBuf, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    {
        let (_, ledger) = p360::system::build_consent(&config).await.unwrap();
        for (i, patient) in ["pat-a", "pat-b", "pat-a", "pat-c", "pat-a", "pat-b"]
            .into_iter()
            .enumerate()
        {
            ledger.append(access(patient, &format!("dr-{i}"))).unwrap();
        }
    }
    let (code, out, err) = p360(&data, &["ledger", "checkpoint"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("checkpoint at entry 6"), "{out}");
    let conn = Connection::open(data.join("ledger.db")).unwrap();
    conn.execute_batch("DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;")
        .unwrap();
    (dir, data, conn)
}

/// Runs `verify` and expects failure with `message` on stderr.
fn fails_with(data: &Path, message: &str) {
    let (code, out, err) = p360(data, &["ledger", "verify"]);
    assert_eq!(code, 1, "verify must fail: {out}{err}");
    assert!(err.contains(message), "expected «{message}» in: {err}");
    assert!(out.is_empty(), "{out}");
}

#[tokio::test]
async fn an_intact_ledger_verifies_up_to_its_checkpoint() {
    let (_dir, data, _conn) = ledger_dir().await;
    let (code, out, err) = p360(&data, &["ledger", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ledger verified: 6 entries"), "{out}");
    assert!(out.contains("complete up to checkpoint"), "{out}");
}

#[tokio::test]
async fn an_edited_entry_is_found() {
    let (_dir, data, conn) = ledger_dir().await;
    conn.execute(
        "UPDATE ledger SET body = replace(body, 'dr-2', 'dr-9') WHERE seq = 3",
        [],
    )
    .unwrap();
    fails_with(
        &data,
        "ledger broken at entry 3: its content does not match its hash",
    );
}

#[tokio::test]
async fn a_deleted_entry_is_found() {
    let (_dir, data, conn) = ledger_dir().await;
    conn.execute("DELETE FROM ledger WHERE seq = 3", [])
        .unwrap();
    fails_with(
        &data,
        "ledger broken at entry 3: entries 3 to 3 are missing",
    );
}

#[tokio::test]
async fn reordered_entries_are_found() {
    let (_dir, data, conn) = ledger_dir().await;
    conn.execute_batch(
        "UPDATE ledger SET seq = -1 WHERE seq = 2;
         UPDATE ledger SET seq = 2 WHERE seq = 3;
         UPDATE ledger SET seq = 3 WHERE seq = -1;",
    )
    .unwrap();
    fails_with(
        &data,
        "ledger broken at entry 2: it does not chain to the entry before it",
    );
}

#[tokio::test]
async fn a_re_attributed_entry_is_found() {
    let (_dir, data, conn) = ledger_dir().await;
    // Moved to another patient's view (the column the patient's ledger is read by), so that
    // pat-c would never see it.
    conn.execute("UPDATE ledger SET patient = 'pat-z' WHERE seq = 4", [])
        .unwrap();
    fails_with(
        &data,
        "ledger broken at entry 4: its patient column differs from the hashed entry",
    );
}

#[tokio::test]
async fn a_truncated_ledger_is_found_against_its_checkpoint() {
    let (_dir, data, conn) = ledger_dir().await;
    // The newest two entries cut: what is left is a valid chain; only the checkpoint knows.
    conn.execute("DELETE FROM ledger WHERE seq >= 5", [])
        .unwrap();
    fails_with(
        &data,
        "ledger truncated: it ends at entry 4, but checkpoint ledger/checkpoints/00000000000000000006.json",
    );
    fails_with(&data, "entries 5 to 6 were removed");
}
