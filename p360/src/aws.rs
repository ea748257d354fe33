//! AWS clients from configuration (feature `aws`). Credentials and region come from the
//! standard AWS chain (environment, profile, instance/Lambda role); `aws.endpoint_url` points
//! every client at an AWS-compatible endpoint such as a local moto server.

use crate::config::AwsConfig;
use object_store::ObjectStore;
use std::sync::Arc;

pub async fn sdk_config(cfg: &AwsConfig) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(cfg.region.clone()));
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

pub fn s3_store(cfg: &AwsConfig, bucket: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Ok(Arc::new(builder(cfg, bucket, None).build()?))
}

/// A bucket with S3 Object Lock (the ledger checkpoints): S3 refuses uploads there unless they
/// name their checksum algorithm, so every put carries its SHA-256 and says so, as the AWS
/// SDKs' flexible checksums do.
pub fn s3_locked_store(cfg: &AwsConfig, bucket: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-amz-sdk-checksum-algorithm",
        reqwest::header::HeaderValue::from_static("SHA256"),
    );
    Ok(Arc::new(
        builder(cfg, bucket, Some(headers))
            .with_checksum_algorithm(object_store::aws::Checksum::SHA256)
            .build()?,
    ))
}

fn builder(
    cfg: &AwsConfig,
    bucket: &str,
    headers: Option<reqwest::header::HeaderMap>,
) -> object_store::aws::AmazonS3Builder {
    let mut client = object_store::ClientOptions::new();
    if let Some(h) = headers {
        client = client.with_default_headers(h);
    }
    let mut b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&cfg.region);
    if let Some(url) = &cfg.endpoint_url {
        client = client.with_allow_http(url.starts_with("http://"));
        b = b
            .with_endpoint(url)
            .with_virtual_hosted_style_request(false);
    }
    b.with_client_options(client)
}
