//! Cognito user-pool tokens verified by the JWKS verifier, against moto's Cognito (it signs
//! RS256 tokens and serves the pool's JWKS), started by `scripts/moto.sh` and named by
//! `P360_TEST_AWS_ENDPOINT`. The pool, groups and users are set up with plain AWS JSON 1.1
//! calls (moto does not check signatures); what is under test is the verifier.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use p360_events::Role;
use p360_identity::verify::{JwksSource, Verifier, VerifierConfig};
use serde_json::{Value, json};
use std::time::Duration;

struct Cognito {
    endpoint: String,
    http: reqwest::Client,
}

impl Cognito {
    async fn call(&self, op: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/", self.endpoint))
            .header(
                "x-amz-target",
                format!("AWSCognitoIdentityProviderService.{op}"),
            )
            .header("content-type", "application/x-amz-json-1.1")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{op}: {}", r.text().await.unwrap());
        r.json().await.unwrap()
    }

    /// A user in `group` with a password; returns the IdToken and AccessToken.
    async fn user(
        &self,
        pool: &str,
        client: &str,
        name: &str,
        group: &str,
        attrs: Value,
    ) -> (String, String) {
        self.call(
            "AdminCreateUser",
            json!({"UserPoolId": pool, "Username": name, "TemporaryPassword": "Temp-Passw0rd!",
                   "MessageAction": "SUPPRESS", "UserAttributes": attrs}),
        )
        .await;
        self.call(
            "AdminSetUserPassword",
            json!({"UserPoolId": pool, "Username": name, "Password": "Real-Passw0rd!", "Permanent": true}),
        )
        .await;
        self.call(
            "AdminAddUserToGroup",
            json!({"UserPoolId": pool, "Username": name, "GroupName": group}),
        )
        .await;
        let r = self
            .call(
                "AdminInitiateAuth",
                json!({"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                       "AuthParameters": {"USERNAME": name, "PASSWORD": "Real-Passw0rd!"}}),
            )
            .await;
        let a = &r["AuthenticationResult"];
        (
            a["IdToken"].as_str().unwrap().to_owned(),
            a["AccessToken"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test]
#[ignore = "needs a moto server: P360_TEST_AWS_ENDPOINT (scripts/test.sh starts one)"]
async fn cognito_tokens_verify_by_jwks_with_issuer_audience_and_algorithm_pinned() {
    let endpoint = std::env::var("P360_TEST_AWS_ENDPOINT")
        .expect("P360_TEST_AWS_ENDPOINT must name a moto server (scripts/moto.sh start prints it)");
    let cognito = Cognito {
        endpoint: endpoint.clone(),
        http: reqwest::Client::new(),
    };
    let pool = cognito
        .call(
            "CreateUserPool",
            json!({"PoolName": "p360-test", "Schema": [
                {"Name": "patient_id", "AttributeDataType": "String", "Mutable": false}]}),
        )
        .await["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = cognito
        .call(
            "CreateUserPoolClient",
            json!({"UserPoolId": pool, "ClientName": "app",
                   "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
        )
        .await["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_owned();
    for group in ["patient", "provider"] {
        cognito
            .call(
                "CreateGroup",
                json!({"UserPoolId": pool, "GroupName": group}),
            )
            .await;
    }
    let (_, dr_access) = cognito
        .user(&pool, &client, "dr", "provider", json!([]))
        .await;
    let (jane_id, jane_access) = cognito
        .user(
            &pool,
            &client,
            "jane",
            "patient",
            json!([{"Name": "custom:patient_id", "Value": "pat-0123456789abcdef"}]),
        )
        .await;

    // Configured as for AWS: the issuer of the pool (moto names it as AWS does), its client
    // as the audience, RS256 only, the keys from the pool's JWKS URL.
    let config = |issuer: String, audience: &str, algorithms: Vec<Algorithm>| VerifierConfig {
        issuer,
        audience: audience.to_owned(),
        algorithms,
        jwks: JwksSource::Url(format!("{endpoint}/{pool}/.well-known/jwks.json")),
        leeway: Duration::from_secs(30),
    };
    let issuer = format!("https://cognito-idp.us-east-1.amazonaws.com/{pool}");
    let verifier = Verifier::new(config(issuer.clone(), &client, vec![Algorithm::RS256]));

    // An access token (audience in `client_id`) of a provider in the `provider` group.
    let dr = verifier.verify(&dr_access).await.unwrap();
    assert_eq!(dr.role, Role::Provider);
    assert_eq!(dr.patient_id, None);
    // A patient's ID token (audience in `aud`) carries the patient id attribute.
    let jane = verifier.verify(&jane_id).await.unwrap();
    assert_eq!(jane.role, Role::Patient);
    assert_eq!(jane.patient_id.unwrap().as_str(), "pat-0123456789abcdef");
    // Cognito access tokens carry no custom attributes: a patient comes with an ID token (or a
    // pre-token-generation trigger), and the refusal says why.
    let err = verifier.verify(&jane_access).await.unwrap_err();
    assert!(err.to_string().contains("patient id"), "{err}");

    // Pinned: another issuer, another audience, or ES256 only → refused.
    for wrong in [
        Verifier::new(config(
            format!("{issuer}-other"),
            &client,
            vec![Algorithm::RS256],
        )),
        Verifier::new(config(
            issuer.clone(),
            "another-client",
            vec![Algorithm::RS256],
        )),
        Verifier::new(config(issuer.clone(), &client, vec![Algorithm::ES256])),
    ] {
        assert!(wrong.verify(&dr_access).await.is_err());
    }
    // A token whose claims were altered (an admin group added) fails the signature.
    let parts: Vec<&str> = dr_access.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["cognito:groups"] = json!(["admin"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    assert!(verifier.verify(&forged).await.is_err());
}
