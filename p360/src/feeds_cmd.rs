//! `p360 feeds`: publish a payor batch, read its report, work its review queue and undo links.
//! Decisions are written to the object store with who and when; the running server publishes
//! their events (the decision outbox), so these commands work beside `p360 serve`.

#![allow(clippy::print_stdout)] // a command-line tool prints its answers

use anyhow::bail;
use clap::Subcommand;
use object_store::ObjectStore;
use p360_enrich::decisions::{self, Action};
use p360_events::BatchId;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum FeedsCommand {
    /// Publish a folder of feed files as batch `--batch-id` under `feeds/<batch-id>/`, the
    /// manifest (each file's SHA-256) last; the server announces and enriches it. The same
    /// folder again changes nothing; the same id with other content is refused.
    Submit {
        dir: PathBuf,
        #[arg(long)]
        batch_id: String,
        #[arg(long, default_value = "payor")]
        source_system: String,
    },
    /// Print a batch's report (counts, bad records by file and line) once it is resolved.
    Report { batch_id: String },
    /// List a batch's review queue: each held record–member pair with the comparison of every
    /// field, where it stands and its decisions (JSON lines).
    Review { batch_id: String },
    /// Accept a held identity (its facts join the candidate's record) or reject it.
    Decide {
        batch_id: String,
        /// The identity number of the review queue.
        identity: u32,
        /// `accept` or `reject`.
        decision: String,
        /// Who decides (recorded with the decision).
        #[arg(long)]
        by: String,
    },
    /// Undo a link: the identity's source records leave the member's facts (a fact with no
    /// other source is removed).
    Unlink {
        batch_id: String,
        /// The identity number (as in `_links.ndjson` and the review queue).
        #[arg(long, conflicts_with_all = ["source", "record"])]
        identity: Option<u32>,
        /// Or a person-record: its feed file (as in `links.ndjson`)…
        #[arg(long, requires = "record")]
        source: Option<String>,
        /// …and its record key.
        #[arg(long, requires = "source")]
        record: Option<String>,
        /// Who decides (recorded with the decision).
        #[arg(long)]
        by: String,
    },
}

fn batch(id: &str) -> anyhow::Result<BatchId> {
    BatchId::parse(id).map_err(|_| {
        anyhow::anyhow!("batch id {id:?} is not usable (letters, digits, . _ : - only)")
    })
}

pub async fn run(command: FeedsCommand, objects: &dyn ObjectStore) -> anyhow::Result<()> {
    match command {
        FeedsCommand::Submit {
            dir,
            batch_id,
            source_system,
        } => {
            let (manifest, new) =
                p360_enrich::intake::submit(objects, &dir, &batch_id, &source_system).await?;
            if new {
                println!(
                    "batch {batch_id}: {} files submitted; the server announces it within seconds",
                    manifest.files.len()
                );
            } else {
                println!(
                    "batch {batch_id} was already submitted with this content: nothing changed"
                );
            }
        }
        FeedsCommand::Report { batch_id } => {
            let key = object_store::path::Path::from(format!(
                "{}/{}/{}",
                p360_enrich::intake::PREFIX,
                batch(&batch_id)?,
                p360_enrich::intake::REPORT
            ));
            match object_store::ObjectStoreExt::get(objects, &key).await {
                Ok(r) => println!("{}", String::from_utf8_lossy(&r.bytes().await?)),
                Err(object_store::Error::NotFound { .. }) => {
                    bail!("batch {batch_id} has no report yet (not submitted, or still running)")
                }
                Err(e) => return Err(e.into()),
            }
        }
        FeedsCommand::Review { batch_id } => {
            for item in decisions::queue(objects, &batch(&batch_id)?).await? {
                println!("{item}");
            }
        }
        FeedsCommand::Decide {
            batch_id,
            identity,
            decision,
            by,
        } => {
            let action = match Action::parse(&decision) {
                Some(a @ (Action::Accept | Action::Reject)) => a,
                _ => bail!("decision: accept or reject (to undo a link: p360 feeds unlink)"),
            };
            decide(objects, &batch(&batch_id)?, identity, action, &by).await?;
        }
        FeedsCommand::Unlink {
            batch_id,
            identity,
            source,
            record,
            by,
        } => {
            let b = batch(&batch_id)?;
            let identity = match (identity, source, record) {
                (Some(i), _, _) => i,
                (None, Some(s), Some(r)) => decisions::identity_of(objects, &b, &s, &r).await?,
                _ => bail!("name the identity (--identity) or the record (--source and --record)"),
            };
            decide(objects, &b, identity, Action::Unlink, &by).await?;
        }
    }
    Ok(())
}

async fn decide(
    objects: &dyn ObjectStore,
    batch: &BatchId,
    identity: u32,
    action: Action,
    by: &str,
) -> anyhow::Result<()> {
    let (d, event) =
        decisions::decide(objects, batch, identity, action, by, chrono::Utc::now()).await?;
    println!("{}", serde_json::to_string(&d)?);
    if event.is_some() {
        println!("recorded; the server applies it within seconds");
    } else {
        println!("recorded; nothing changes in the record");
    }
    Ok(())
}
