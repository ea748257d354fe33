//! `p360 serve --demo`: a demo patient, provider and payor analyst, and sample documents
//! (synthetic, from `testdata/documents/`) dropped into the demo patient's drop folder, so a
//! newcomer sees documents flow through the pipeline at once.

use crate::System;
use anyhow::Context;
use p360_identity::Role;
use p360_identity::users::{Directory, NewUser, User};
use std::path::Path;

/// Sample documents compiled into the binary, so `--demo` works from any directory.
pub const SAMPLES: [(&str, &[u8]); 4] = [
    (
        "lab-report.png",
        include_bytes!("../../testdata/documents/doc_002.png"),
    ),
    (
        "lab-report-photo.jpg",
        include_bytes!("../../testdata/documents/doc_001.jpg"),
    ),
    (
        "visit-summary.png",
        include_bytes!("../../testdata/documents/doc_014.png"),
    ),
    (
        "medication-list.png",
        include_bytes!("../../testdata/documents/doc_022.png"),
    ),
];

/// A seeded demo account and the password to log in with.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub user: User,
    pub password: String,
}

fn random_password() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// Creates the demo accounts if absent (passwords kept in `<data>/demo-credentials.txt`, mode
/// 0600), and drops the sample documents for the demo patient.
pub fn seed(system: &System) -> anyhow::Result<Vec<DemoAccount>> {
    let dir = system
        .directory
        .as_ref()
        .context("--demo needs the built-in identity mode")?;
    let creds_path = system.config.data_dir.join("demo-credentials.txt");
    let saved = std::fs::read_to_string(&creds_path).unwrap_or_default();
    let mut accounts = Vec::new();
    let mut lines = Vec::new();
    for (username, role) in [
        ("demo-patient", Role::Patient),
        ("demo-provider", Role::Provider),
        ("demo-analyst", Role::PayorAnalyst),
    ] {
        let account = ensure(dir, &saved, username, role)?;
        lines.push(format!("{username} {}", account.password));
        accounts.push(account);
    }
    write_private(&creds_path, &(lines.join("\n") + "\n"))?;

    if let Some(patient) = accounts[0].user.patient_id.as_ref() {
        let folder = system.config.drop_path().join(patient.as_str());
        std::fs::create_dir_all(&folder)?;
        for (name, bytes) in SAMPLES {
            std::fs::write(folder.join(name), bytes)?;
        }
    }
    Ok(accounts)
}

fn ensure(dir: &Directory, saved: &str, username: &str, role: Role) -> anyhow::Result<DemoAccount> {
    if let Some(user) = dir.by_username(username)? {
        let password = saved
            .lines()
            .find_map(|l| l.strip_prefix(username)?.strip_prefix(' '))
            .map(str::to_owned)
            .context("demo account exists but its password is not in demo-credentials.txt")?;
        return Ok(DemoAccount { user, password });
    }
    let password = random_password();
    let user = dir.add(NewUser {
        username,
        password: &password,
        role,
        patient_id: None,
    })?;
    Ok(DemoAccount { user, password })
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}
