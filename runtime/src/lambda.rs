//! The Lambda runner (feature `lambda`): the same [`Stage`] as one AWS Lambda function fed by
//! its SQS queue.
//!
//! Records of a batch are handled concurrently. A record whose handling fails is reported in
//! `batchItemFailures` (the function must have `ReportBatchItemFailures` on its event source
//! mapping, see `infra/`), so SQS redelivers only that record and the others are deleted.
//! A permanent failure is moved to the stage's dead-letter queue at once with its error when
//! the runner has the queue; otherwise it is reported as failed and the queue's redrive policy
//! moves it after its last attempt.

use crate::{Stage, StageError, envelopes};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{LambdaEvent, service_fn};
use p360_events::Envelope;
use p360_queue::{Delivery, Publisher, Queue, Receipt};
use std::sync::Arc;

/// Handles one SQS batch; returns the records to retry.
pub async fn handle_batch(
    stage: &dyn Stage,
    publisher: &dyn Publisher,
    queue: Option<&dyn Queue>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let results = futures::future::join_all(
        event
            .records
            .into_iter()
            .map(|record| handle_record(stage, publisher, queue, record)),
    )
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = results
        .into_iter()
        .flatten()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// Returns the SQS message id if the record must be retried.
async fn handle_record(
    stage: &dyn Stage,
    publisher: &dyn Publisher,
    queue: Option<&dyn Queue>,
    record: SqsMessage,
) -> Option<String> {
    let message_id = record.message_id.clone().unwrap_or_default();
    let body = record.body.as_deref().unwrap_or_default();
    let result = async {
        let env = Envelope::from_json(body).map_err(|e| StageError::Permanent(e.to_string()))?;
        let outputs = envelopes(stage.name(), &env, stage.handle(&env).await?);
        publisher
            .publish(&outputs)
            .await
            .map_err(|e| StageError::Transient(format!("publishing outputs: {e}")))
    }
    .await;
    match result {
        Ok(()) => None,
        Err(e) if e.is_permanent() => {
            tracing::error!(stage = stage.name(), message_id, error = %e, "permanent failure");
            let Some(queue) = queue else {
                return Some(message_id);
            };
            let delivery = Delivery {
                id: message_id.clone(),
                body: body.to_owned(),
                receipt: Receipt(record.receipt_handle.clone().unwrap_or_default()),
                attempt: record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1),
            };
            match queue
                .dead_letter(stage.name(), &delivery, &e.to_string())
                .await
            {
                Ok(()) => None,
                Err(qe) => {
                    tracing::warn!(error = %qe, "dead-lettering failed; leaving it to the redrive policy");
                    Some(message_id)
                }
            }
        }
        Err(e) => {
            tracing::warn!(stage = stage.name(), message_id, error = %e, "handling failed; SQS will retry");
            Some(message_id)
        }
    }
}

/// Runs `stage` as the Lambda function's handler until the runtime stops.
pub async fn run(
    stage: Arc<dyn Stage>,
    publisher: Arc<dyn Publisher>,
    queue: Option<Arc<dyn Queue>>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let stage = stage.clone();
        let publisher = publisher.clone();
        let queue = queue.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(
                handle_batch(&*stage, &*publisher, queue.as_deref(), event.payload).await,
            )
        }
    }))
    .await
}
