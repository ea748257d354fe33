//! Amazon DynamoDB adapter of the consent store (feature `aws`).
//!
//! One table, key `pk` (string):
//! - `GRANT#<id>`: a grant, its JSON in `body`, with `patient`, `grantee`, `created_at`, `version`
//!   and `revoked_at` (when revoked) as attributes for indexes and conditions, and `ttl` (epoch
//!   seconds: the end plus a retention, so patients still see expired grants for a while; reads
//!   decide on the end themselves, since TTL deletion is lazy);
//! - `NOTE#<id>`: a notification; `ANALYTICS#<patient>`: analytics consent; `PREFS#<patient>`:
//!   the patient's break-glass opt-out.
//!
//! Two global secondary indexes: `by_patient` (`patient`, `created_at`) and `by_grantee`
//! (`grantee`, `created_at`). Extend, rescope and revoke are conditional writes on
//! `version = :seen AND attribute_not_exists(revoked_at)`, so of two racing changes exactly
//! one wins and the other gets `Conflict`.

use crate::model::{AnalyticsConsent, Grant, Notification, Scope};
use crate::store::{ConsentError, ConsentStore, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{DateTime, Duration, Utc};
use p360_events::{PatientId, UserId};
use std::collections::HashMap;

const BY_PATIENT: &str = "by_patient";
const BY_GRANTEE: &str = "by_grantee";

pub struct DynamoConsentStore {
    client: Client,
    table: String,
    /// How long an ended grant is kept before DynamoDB's TTL may delete it.
    retention: Duration,
}

fn unavailable<E: std::error::Error + 'static>(op: &str, e: E) -> ConsentError {
    ConsentError::Unavailable(format!("dynamodb {op}: {}", DisplayErrorContext(e)))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn decode<T: serde::de::DeserializeOwned>(item: &HashMap<String, AttributeValue>) -> Result<T> {
    let body = text(item, "body")
        .ok_or_else(|| ConsentError::Unavailable("an item without a body".into()))?;
    serde_json::from_str(body)
        .map_err(|e| ConsentError::Unavailable(format!("an item is unreadable: {e}")))
}

/// Fixed-width instants sort as strings.
fn sortable(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| ConsentError::Unavailable(format!("encoding: {e}")))
}

impl DynamoConsentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: Duration::days(365),
        }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(conf), table)
    }

    /// Creates the table, its indexes and TTL if it does not exist (tests and first runs; in
    /// production the CloudFormation stack creates it).
    pub async fn ensure_table(&self) -> Result<()> {
        let exists = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        if exists.is_ok() {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| unavailable("schema", e))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| unavailable("schema", e))
        };
        let index = |name: &str, hash: &str| -> Result<GlobalSecondaryIndex> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key("created_at", KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| unavailable("schema", e))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("patient")?)
            .attribute_definitions(attr("grantee")?)
            .attribute_definitions(attr("created_at")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .global_secondary_indexes(index(BY_PATIENT, "patient")?)
            .global_secondary_indexes(index(BY_GRANTEE, "grantee")?)
            .send()
            .await
            .map_err(|e| unavailable("CreateTable", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("ttl")
                    .enabled(true)
                    .build()
                    .map_err(|e| unavailable("schema", e))?,
            )
            .send()
            .await
            .map_err(|e| unavailable("UpdateTimeToLive", e))?;
        Ok(())
    }

    fn grant_item(&self, g: &Grant) -> Result<HashMap<String, AttributeValue>> {
        let mut item = HashMap::from([
            ("pk".to_owned(), s(format!("GRANT#{}", g.id))),
            ("kind".to_owned(), s("grant")),
            ("patient".to_owned(), s(g.patient.as_str())),
            ("grantee".to_owned(), s(g.grantee.as_str())),
            // Sortable and unique enough: instant, then id.
            (
                "created_at".to_owned(),
                s(format!("{}#{}", sortable(g.created_at), g.id)),
            ),
            ("version".to_owned(), n(g.version)),
            ("ttl".to_owned(), n((g.end + self.retention).timestamp())),
            ("body".to_owned(), s(encode(g)?)),
        ]);
        if let Some(r) = g.revoked_at {
            item.insert("revoked_at".into(), s(r.to_rfc3339()));
        }
        Ok(item)
    }

    /// One item by key, read consistently (a revocation is seen at once).
    async fn item(&self, pk: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?
            .item)
    }

    /// All items of one index key, newest first, following pages.
    async fn query(
        &self,
        index: &str,
        attr: &str,
        value: &str,
        kind: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :v")
                .filter_expression("#kind = :kind")
                .expression_attribute_names("#k", attr)
                .expression_attribute_names("#kind", "kind")
                .expression_attribute_values(":v", s(value))
                .expression_attribute_values(":kind", s(kind))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    /// Read, change and write back under the version condition.
    async fn update(
        &self,
        id: &str,
        version: u64,
        change: impl FnOnce(&mut Grant),
    ) -> Result<Grant> {
        let mut grant = self
            .get(id)
            .await?
            .ok_or_else(|| ConsentError::NotFound(id.to_owned()))?;
        if grant.version != version || grant.revoked_at.is_some() {
            return Err(ConsentError::Conflict {
                id: id.to_owned(),
                current: grant.version,
            });
        }
        change(&mut grant);
        grant.version += 1;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.grant_item(&grant)?))
            .condition_expression("version = :seen AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":seen", n(version))
            .send()
            .await;
        match put {
            Ok(_) => Ok(grant),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(ConsentError::Conflict {
                    id: id.to_owned(),
                    current: version,
                })
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }
}

#[async_trait]
impl ConsentStore for DynamoConsentStore {
    async fn create(&self, grant: &Grant) -> Result<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.grant_item(grant)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(ConsentError::Invalid(format!(
                    "grant {} already exists",
                    grant.id
                )))
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<Grant>> {
        self.item(&format!("GRANT#{id}"))
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn for_patient(&self, patient: &PatientId) -> Result<Vec<Grant>> {
        self.query(BY_PATIENT, "patient", patient.as_str(), "grant")
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn for_grantee(&self, grantee: &UserId) -> Result<Vec<Grant>> {
        self.query(BY_GRANTEE, "grantee", grantee.as_str(), "grant")
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn between(&self, patient: &PatientId, grantee: &UserId) -> Result<Vec<Grant>> {
        // Index reads are eventually consistent: a grant is re-read from its item, so a
        // revocation is seen at once even if the index lags.
        let mut out = Vec::new();
        for item in self
            .query(BY_GRANTEE, "grantee", grantee.as_str(), "grant")
            .await?
        {
            if text(&item, "patient") != Some(patient.as_str()) {
                continue;
            }
            let g: Grant = decode(&item)?;
            if let Some(fresh) = self.get(&g.id).await? {
                out.push(fresh);
            }
        }
        Ok(out)
    }

    async fn extend(&self, id: &str, version: u64, end: DateTime<Utc>) -> Result<Grant> {
        self.update(id, version, |g| g.end = end).await
    }

    async fn rescope(&self, id: &str, version: u64, scope: &Scope) -> Result<Grant> {
        let scope = scope.clone();
        self.update(id, version, move |g| g.scope = scope).await
    }

    async fn revoke(&self, id: &str, version: u64, at: DateTime<Utc>) -> Result<Grant> {
        self.update(id, version, |g| g.revoked_at = Some(at)).await
    }

    async fn analytics(&self, patient: &PatientId) -> Result<AnalyticsConsent> {
        Ok(match self.item(&format!("ANALYTICS#{patient}")).await? {
            Some(item) => decode(&item)?,
            None => AnalyticsConsent::default(),
        })
    }

    async fn set_analytics(&self, patient: &PatientId, consent: AnalyticsConsent) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ANALYTICS#{patient}")))
            .item("kind", s("analytics"))
            .item("body", s(encode(&consent)?))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn break_glass_opt_out(&self, patient: &PatientId) -> Result<bool> {
        Ok(match self.item(&format!("PREFS#{patient}")).await? {
            Some(item) => item
                .get("break_glass_opt_out")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
            None => false,
        })
    }

    async fn set_break_glass_opt_out(&self, patient: &PatientId, opt_out: bool) -> Result<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("PREFS#{patient}")))
            .item("kind", s("prefs"))
            .item("break_glass_opt_out", AttributeValue::Bool(opt_out))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn notify(&self, note: &Notification) -> Result<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("NOTE#{}", note.id)))
            .item("kind", s("note"))
            .item("patient", s(note.patient.as_str()))
            .item(
                "created_at",
                s(format!("{}#{}", sortable(note.at), note.id)),
            )
            .item("body", s(encode(note)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            // Already stored: notifying twice is one notification.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }

    async fn notifications(&self, patient: &PatientId, limit: usize) -> Result<Vec<Notification>> {
        let mut items = self
            .query(BY_PATIENT, "patient", patient.as_str(), "note")
            .await?;
        items.truncate(limit);
        items.iter().map(decode).collect()
    }
}
