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
    let mut b = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(&cfg.region);
    if let Some(url) = &cfg.endpoint_url {
        b = b
            .with_endpoint(url)
            .with_allow_http(url.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    Ok(Arc::new(b.build()?))
}
