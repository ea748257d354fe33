//! The S3 photo drop: objects created under `<prefix>/<patient-id>/` in the drop bucket are
//! ingested, like the local drop folder. The bucket sends `ObjectCreated` notifications to an
//! SQS queue (wired in `infra/`); this source consumes that queue.
//!
//! Notifications are parsed leniently (every field optional but bucket and key): AWS and
//! emulators differ in which fields they send. Keys arrive URL-encoded (`+` for space).
//! A notification whose object is gone was handled before (we delete after ingesting): ack.

use crate::service::{IngestError, IngestService};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use p360_events::{Channel, PatientId};
use p360_queue::{Delivery, Queue};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Entity,
}

#[derive(Debug, Deserialize)]
struct Entity {
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Object {
    key: String,
}

/// Object keys named by an S3 notification body, decoded. `Ok(vec![])` for S3's test event.
pub fn created_keys(body: &str) -> Result<Vec<String>, String> {
    let n: Notification = serde_json::from_str(body).map_err(|e| {
        format!(
            "not an S3 notification (line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    Ok(n.records
        .into_iter()
        .filter(|r| r.event_name.is_empty() || r.event_name.starts_with("ObjectCreated"))
        .map(|r| decode_key(&r.s3.object.key))
        .collect())
}

/// S3 URL-encodes keys in notifications, form style: `+` is a space.
fn decode_key(raw: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1])
                .zip(hex(bytes[i + 2]))
                .map(|(h, l)| (h << 4) | l),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone)]
pub struct S3Drop {
    /// The drop bucket.
    drop_store: Arc<dyn ObjectStore>,
    /// Key prefix of the drop area, e.g. `drop`.
    prefix: String,
    service: IngestService,
    queue: Arc<dyn Queue>,
    queue_name: String,
}

/// What happened to one notification's objects.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    pub accepted: usize,
    pub rejected: usize,
    pub already_gone: usize,
}

impl S3Drop {
    pub fn new(
        drop_store: Arc<dyn ObjectStore>,
        prefix: impl Into<String>,
        service: IngestService,
        queue: Arc<dyn Queue>,
        queue_name: impl Into<String>,
    ) -> Self {
        Self {
            drop_store,
            prefix: prefix.into().trim_matches('/').to_owned(),
            service,
            queue,
            queue_name: queue_name.into(),
        }
    }

    /// Handles the objects of one notification body.
    pub async fn handle_notification(&self, body: &str) -> Result<DropReport, IngestError> {
        let keys = created_keys(body).map_err(IngestError::Unavailable)?;
        let mut report = DropReport::default();
        for key in keys {
            let rest = key
                .strip_prefix(&self.prefix)
                .and_then(|r| r.strip_prefix('/'));
            let Some((folder, _)) = rest.and_then(|r| r.split_once('/')) else {
                tracing::warn!("s3 drop: object outside <prefix>/<patient-id>/; ignored");
                continue;
            };
            let path = ObjectPath::from(key.as_str());
            let bytes = match self.drop_store.get(&path).await {
                Ok(r) => r.bytes().await.map_err(|e| {
                    IngestError::Unavailable(format!("reading the dropped object: {e}"))
                })?,
                Err(object_store::Error::NotFound { .. }) => {
                    report.already_gone += 1;
                    continue;
                }
                Err(e) => {
                    return Err(IngestError::Unavailable(format!(
                        "reading the dropped object: {e}"
                    )));
                }
            };
            let outcome = match PatientId::parse(folder) {
                Ok(patient) => self
                    .service
                    .ingest(&patient, bytes.clone(), Channel::S3Drop, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| match e {
                        IngestError::Content(c) => Ok(c.to_string()),
                        other => Err(other),
                    }),
                Err(_) => Err(Ok("the folder name is not a patient id".to_owned())),
            };
            match outcome {
                Ok(()) => report.accepted += 1,
                Err(Ok(reason)) => {
                    self.reject(&key, bytes, &reason).await?;
                    report.rejected += 1;
                }
                Err(Err(e)) => return Err(e),
            }
            self.drop_store.delete(&path).await.map_err(|e| {
                IngestError::Unavailable(format!("deleting the dropped object: {e}"))
            })?;
        }
        Ok(report)
    }

    async fn reject(
        &self,
        key: &str,
        bytes: bytes::Bytes,
        reason: &str,
    ) -> Result<(), IngestError> {
        let target = format!("rejected/{key}");
        let put = |k: String, p: PutPayload| async move {
            self.drop_store
                .put(&ObjectPath::from(k.as_str()), p)
                .await
                .map_err(|e| IngestError::Unavailable(format!("moving a rejected object: {e}")))
        };
        put(
            format!("{target}.reason.txt"),
            PutPayload::from(format!("{reason}\n")),
        )
        .await?;
        put(target, PutPayload::from(bytes)).await?;
        tracing::warn!(reason, "s3 drop: object rejected");
        Ok(())
    }

    async fn process(&self, d: &Delivery) {
        let q = &*self.queue;
        let name = &self.queue_name;
        let result = match created_keys(&d.body) {
            Err(e) => {
                if let Err(qe) = q.dead_letter(name, d, &e).await {
                    tracing::warn!(error = %qe, "s3 drop: dead-lettering failed");
                }
                return;
            }
            Ok(_) => self.handle_notification(&d.body).await,
        };
        let acked = match result {
            Ok(_) => q.ack(name, d).await,
            Err(e) => q.nack(name, d, &e.to_string()).await.map(|_| ()),
        };
        if let Err(e) = acked {
            tracing::warn!(error = %e, "s3 drop: ack/nack failed; the notification will return");
        }
    }

    /// Consumes the notification queue until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self
                .queue
                .receive(
                    &self.queue_name,
                    10,
                    Duration::from_secs(120),
                    Duration::from_secs(1),
                )
                .await
            {
                Ok(batch) => {
                    for d in &batch {
                        self.process(d).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "s3 drop: receive failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aws_and_moto_shapes() {
        // moto omits userIdentity / requestParameters and encodes '/' too.
        let moto = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
          "eventTime":"2026-03-18T08:15:00.000Z","eventName":"ObjectCreated:Put",
          "s3":{"s3SchemaVersion":"1.0","configurationId":"drop","bucket":{"name":"p360-drop","arn":"arn:aws:s3:::p360-drop"},
          "object":{"key":"drop%2Fpat-1%2Fmy+lab+report.jpg","size":1024,"eTag":"x"}}}]}"#;
        assert_eq!(
            created_keys(moto).unwrap(),
            ["drop/pat-1/my lab report.jpg"]
        );
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-18T08:15:00.000Z","Bucket":"p360-drop"}"#;
        assert!(created_keys(test_event).unwrap().is_empty());
        let removed = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"object":{"key":"drop/pat-1/a.jpg"}}}]}"#;
        assert!(created_keys(removed).unwrap().is_empty());
        assert!(created_keys("nope").is_err());
        assert_eq!(decode_key("a%2"), "a%2");
        assert_eq!(decode_key("100%25"), "100%");
    }
}
