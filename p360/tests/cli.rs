//! The `p360` command line, run as a user would.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use p360_queue::embedded::{Durability, EmbeddedQueue};
use p360_queue::{OutgoingMessage, Queue, QueuePolicy};
use std::process::Command;
use std::time::Duration;

fn p360(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_p360"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("P360_LOG", "error")
        .output()
        .expect("run p360");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn dlq_list_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let q = EmbeddedQueue::open(data.join("queue.db"), Durability::Normal).unwrap();
        q.declare("register", QueuePolicy::default()).await.unwrap();
        q.send(
            "register",
            &[OutgoingMessage {
                id: "evt-1".into(),
                body: "{}".into(),
            }],
        )
        .await
        .unwrap();
        let d = q
            .receive("register", 1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        q.dead_letter("register", &d[0], "permanent: body is not an envelope")
            .await
            .unwrap();
    }
    let (ok, out, err) = p360(&data, &["dlq", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("register\tevt-1\tattempts=1"), "{out}");
    assert!(
        out.contains("error=permanent: body is not an envelope"),
        "{out}"
    );
    assert!(err.contains("1 dead letter(s)"), "{err}");

    let (ok, _, err) = p360(&data, &["dlq", "replay", "--queue", "register"]);
    assert!(ok, "{err}");
    assert!(err.contains("replayed 1 message(s) onto register"), "{err}");
    let (_, out, err) = p360(&data, &["dlq", "list"]);
    assert!(
        out.is_empty() && err.contains("0 dead letter(s)"),
        "{out}{err}"
    );
}

#[test]
fn users_add_list_token_disable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = p360(
        &data,
        &[
            "users",
            "add",
            "--username",
            "jane",
            "--role",
            "patient",
            "--password",
            "long enough",
        ],
    );
    assert!(ok, "{err}");
    let patient = out.trim().split('\t').nth(3).unwrap().to_owned();
    assert!(patient.starts_with("pat-"), "{out}");
    let (ok, _, err) = p360(
        &data,
        &[
            "users",
            "add",
            "--username",
            "jane",
            "--role",
            "patient",
            "--password",
            "long enough",
        ],
    );
    assert!(!ok && err.contains("username already taken"), "{err}");
    let (ok, _, err) = p360(
        &data,
        &[
            "users",
            "add",
            "--username",
            "bob",
            "--role",
            "nurse",
            "--password",
            "long enough",
        ],
    );
    assert!(!ok && err.contains("role must be one of"), "{err}");
    let (ok, out, _) = p360(&data, &["users", "token", "--username", "jane"]);
    assert!(ok && out.trim().split('.').count() == 3, "{out}");
    let (ok, out, _) = p360(&data, &["users", "list"]);
    assert!(
        ok && out.contains("jane\tpatient") && out.contains("active"),
        "{out}"
    );
    let (ok, _, _) = p360(&data, &["users", "disable", "--username", "jane"]);
    assert!(ok);
    let (ok, _, err) = p360(&data, &["users", "token", "--username", "jane"]);
    assert!(!ok && err.contains("disabled"), "{err}");
}

#[test]
fn configuration_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("p360.toml");
    std::fs::write(&cfg, "[queue]\nkind = \"kafka\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_p360"))
        .args(["--config", cfg.to_str().unwrap(), "dlq", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid configuration") && err.contains("kafka"),
        "{err}"
    );
}
