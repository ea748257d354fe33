//! The security properties of `infra/template.yaml` that no edit may lose, checked on the parsed
//! template: cfn-lint validates the schema, not these choices, and a deployed stack is too late.
//! Each regression test mutates the real template and shows the checker reports it.

use serde_norway::Value;

/// Seven years, the ledger's record-retention horizon (2557 days counts the leap days).
const MIN_RETENTION_DAYS: u64 = 2557;
const MIN_RETENTION_YEARS: u64 = 7;

/// Standard attributes users may edit about themselves: p360 never reads them for access.
/// Not `*_verified` (that would skip verification), never a `custom:` attribute.
const HARMLESS_WRITABLE: &[&str] = &[
    "address",
    "birthdate",
    "email",
    "family_name",
    "gender",
    "given_name",
    "locale",
    "middle_name",
    "name",
    "nickname",
    "phone_number",
    "picture",
    "profile",
    "website",
    "zoneinfo",
];

fn template_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn parse(text: &str) -> Value {
    // Short-form intrinsics (`!Ref`, `!Sub`) parse as tagged values.
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("infra/template.yaml: {e}"))
}

/// Every regressed property, one line each naming the resource; empty when all hold.
fn findings(t: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_user_pools(t, &mut out);
    check_app_clients(t, &mut out);
    check_checkpoint_bucket(t, &mut out);
    out
}

fn resources_of<'a>(t: &'a Value, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
    t["Resources"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(move |(_, r)| r["Type"].as_str() == Some(ty))
        .map(|(id, r)| (id.as_str().unwrap_or("?"), &r["Properties"]))
}

// Literal values only: a `!Ref` or `!If` where a flag belongs can't be verified here.
fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn is_false(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !*b,
        Value::String(s) => s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// The logical id a `!Ref` (or `{Ref: …}`) names.
fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) => m.get("Ref")?.as_str(),
        _ => None,
    }
}

/// A literal number, or the default of the parameter it `!Ref`s.
fn number(t: &Value, v: &Value) -> Option<u64> {
    let literal = |v: &Value| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    literal(v).or_else(|| literal(&t["Parameters"][ref_target(v)?]["Default"]))
}

fn check_user_pools(t: &Value, out: &mut Vec<String>) {
    let mut pools = 0;
    let mut patient_id_defined = false;
    for (id, p) in resources_of(t, "AWS::Cognito::UserPool") {
        pools += 1;
        if !is_true(&p["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]) {
            out.push(format!(
                "{id}: self sign-up is allowed (AdminCreateUserConfig.AllowAdminCreateUserOnly \
                 must be true: the payor creates its members' accounts)"
            ));
        }
        for attr in p["Schema"].as_sequence().into_iter().flatten() {
            if attr["Name"].as_str() == Some("patient_id") {
                patient_id_defined = true;
                // Cognito's default for Mutable is true.
                if !is_false(&attr["Mutable"]) {
                    out.push(format!(
                        "{id}: custom:patient_id is mutable (its Schema entry needs Mutable: \
                         false; the admin sets it once at onboarding)"
                    ));
                }
            }
        }
    }
    if pools == 0 {
        out.push("no AWS::Cognito::UserPool in the template".into());
    }
    if !patient_id_defined {
        out.push("no user pool defines the patient_id custom attribute".into());
    }
}

fn check_app_clients(t: &Value, out: &mut Vec<String>) {
    let mut clients = 0;
    for (id, c) in resources_of(t, "AWS::Cognito::UserPoolClient") {
        clients += 1;
        match &c["WriteAttributes"] {
            Value::Sequence(attrs) if !attrs.is_empty() => {
                for a in attrs {
                    match a {
                        Value::String(s) if s.starts_with("custom:") => out.push(format!(
                            "{id}: WriteAttributes lets users write {s}; p360 trusts custom: \
                             attributes (custom:patient_id picks the record a token opens)"
                        )),
                        Value::String(s) if HARMLESS_WRITABLE.contains(&s.as_str()) => {
                            if s == "email" {
                                check_email_update_verified(t, id, c, out);
                            }
                        }
                        Value::String(s) => out.push(format!(
                            "{id}: WriteAttributes lets users write {s}, not one of the harmless \
                             standard attributes ({})",
                            HARMLESS_WRITABLE.join(", ")
                        )),
                        _ => out.push(format!(
                            "{id}: WriteAttributes has an entry that is not a literal attribute \
                             name, so it can't be checked"
                        )),
                    }
                }
            }
            Value::Null => out.push(format!(
                "{id}: WriteAttributes is absent, which makes every standard attribute writable"
            )),
            Value::Sequence(_) => out.push(format!(
                "{id}: WriteAttributes is empty, which Cognito treats as absent (all writable)"
            )),
            _ => out.push(format!(
                "{id}: WriteAttributes is not a literal list, so it can't be checked"
            )),
        }
        if !matches!(&c["ReadAttributes"], Value::Sequence(a) if !a.is_empty()) {
            out.push(format!(
                "{id}: ReadAttributes must be an explicit, non-empty list"
            ));
        }
    }
    if clients == 0 {
        out.push("no AWS::Cognito::UserPoolClient in the template".into());
    }
}

/// A writable email (the sign-in name) must change only once the new address is verified.
fn check_email_update_verified(t: &Value, id: &str, client: &Value, out: &mut Vec<String>) {
    let verified = ref_target(&client["UserPoolId"])
        .map(|pool| {
            &t["Resources"][pool]["Properties"]["UserAttributeUpdateSettings"]
                ["AttributesRequireVerificationBeforeUpdate"]
        })
        .and_then(Value::as_sequence)
        .is_some_and(|attrs| attrs.iter().any(|a| a.as_str() == Some("email")));
    if !verified {
        out.push(format!(
            "{id}: users may write email, but its user pool lacks UserAttributeUpdateSettings.\
             AttributesRequireVerificationBeforeUpdate: [email]"
        ));
    }
}

fn check_checkpoint_bucket(t: &Value, out: &mut Vec<String>) {
    let output = t["Outputs"]
        .as_mapping()
        .into_iter()
        .flatten()
        .find(|(_, o)| {
            o["Description"]
                .as_str()
                .is_some_and(|d| d.contains("consent.checkpoint_bucket"))
        });
    let Some((name, o)) = output else {
        out.push("no Output names the checkpoint bucket (config consent.checkpoint_bucket)".into());
        return;
    };
    let name = name.as_str().unwrap_or("?");
    let Some(id) = ref_target(&o["Value"]) else {
        out.push(format!(
            "Output {name}: Value must be !Ref of the checkpoint bucket"
        ));
        return;
    };
    let bucket = &t["Resources"][id];
    if bucket["Type"].as_str() != Some("AWS::S3::Bucket") {
        out.push(format!("Output {name}: {id} is not an AWS::S3::Bucket"));
        return;
    }
    let p = &bucket["Properties"];
    if !is_true(&p["ObjectLockEnabled"]) {
        out.push(format!(
            "{id}: Object Lock is off (ObjectLockEnabled must be true)"
        ));
    }
    let lock = &p["ObjectLockConfiguration"];
    if lock["ObjectLockEnabled"].as_str() != Some("Enabled") {
        out.push(format!(
            "{id}: ObjectLockConfiguration.ObjectLockEnabled must be Enabled"
        ));
    }
    let retention = &lock["Rule"]["DefaultRetention"];
    if retention["Mode"].as_str() != Some("COMPLIANCE") {
        out.push(format!(
            "{id}: default retention mode must be COMPLIANCE (GOVERNANCE can be bypassed)"
        ));
    }
    match (
        number(t, &retention["Days"]),
        number(t, &retention["Years"]),
    ) {
        (Some(d), None) if d >= MIN_RETENTION_DAYS => {}
        (None, Some(y)) if y >= MIN_RETENTION_YEARS => {}
        (None, None) => out.push(format!(
            "{id}: no default retention period (DefaultRetention.Days or Years)"
        )),
        _ => out.push(format!(
            "{id}: default retention is shorter than {MIN_RETENTION_YEARS} years \
             ({MIN_RETENTION_DAYS} days)"
        )),
    }
    if p["VersioningConfiguration"]["Status"].as_str() != Some("Enabled") {
        out.push(format!(
            "{id}: versioning is off (Object Lock requires VersioningConfiguration.Status: Enabled)"
        ));
    }
    let block = &p["PublicAccessBlockConfiguration"];
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        if !is_true(&block[flag]) {
            out.push(format!(
                "{id}: public access not blocked (PublicAccessBlockConfiguration.{flag})"
            ));
        }
    }
    let kms = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|r| {
            r["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
                .as_str()
                .is_some_and(|a| a.starts_with("aws:kms"))
        });
    if !kms {
        out.push(format!(
            "{id}: not encrypted with KMS (SSEAlgorithm aws:kms)"
        ));
    }
}

// --- mutations of the real template -------------------------------------------------------

/// The findings for the real template after `edit`.
fn findings_after(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut t = parse(&template_text());
    edit(&mut t);
    findings(&t)
}

/// The properties of the first resource of type `ty`.
fn props<'a>(t: &'a mut Value, ty: &str) -> &'a mut Value {
    let r = t["Resources"]
        .as_mapping_mut()
        .expect("Resources")
        .values_mut()
        .find(|r| r["Type"].as_str() == Some(ty))
        .unwrap_or_else(|| panic!("no {ty}"));
    &mut r["Properties"]
}

fn checkpoint_bucket(t: &mut Value) -> &mut Value {
    let id = ref_target(&t["Outputs"]["LedgerCheckpointBucketName"]["Value"])
        .expect("LedgerCheckpointBucketName output")
        .to_owned();
    &mut t["Resources"][id.as_str()]["Properties"]
}

/// The patient_id entry of the user pool's Schema.
fn patient_id_attr(t: &mut Value) -> &mut Value {
    let schema = props(t, "AWS::Cognito::UserPool")["Schema"]
        .as_sequence_mut()
        .expect("Schema");
    schema
        .iter_mut()
        .find(|a| a["Name"].as_str() == Some("patient_id"))
        .expect("patient_id in Schema")
}

fn checkpoint_retention(t: &mut Value) -> &mut Value {
    &mut checkpoint_bucket(t)["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
}

fn remove(v: &mut Value, key: &str) {
    v.as_mapping_mut()
        .expect("a mapping")
        .remove(key)
        .unwrap_or_else(|| panic!("no {key} to remove"));
}

#[track_caller]
fn assert_reports(found: &[String], fragment: &str) {
    assert!(
        found.iter().any(|f| f.contains(fragment)),
        "expected a finding containing {fragment:?}, got {found:#?}"
    );
}

#[test]
fn template_keeps_its_security_properties() {
    let found = findings(&parse(&template_text()));
    assert!(
        found.is_empty(),
        "infra/template.yaml regressed:\n{}",
        found.join("\n")
    );
}

#[test]
fn self_sign_up_is_reported() {
    // On the text, as an editor would flip it.
    let text = template_text();
    assert_eq!(text.matches("AllowAdminCreateUserOnly: true").count(), 1);
    let flipped = text.replace(
        "AllowAdminCreateUserOnly: true",
        "AllowAdminCreateUserOnly: false",
    );
    assert_reports(&findings(&parse(&flipped)), "self sign-up is allowed");

    let found =
        findings_after(|t| remove(props(t, "AWS::Cognito::UserPool"), "AdminCreateUserConfig"));
    assert_reports(&found, "self sign-up is allowed");
}

#[test]
fn mutable_patient_id_is_reported() {
    let found = findings_after(|t| patient_id_attr(t)["Mutable"] = Value::Bool(true));
    assert_reports(&found, "custom:patient_id is mutable");
    // Absent means mutable.
    let found = findings_after(|t| remove(patient_id_attr(t), "Mutable"));
    assert_reports(&found, "custom:patient_id is mutable");
    let found = findings_after(|t| remove(props(t, "AWS::Cognito::UserPool"), "Schema"));
    assert_reports(&found, "no user pool defines the patient_id");
}

#[test]
fn writable_custom_or_verification_attributes_are_reported() {
    for attr in ["custom:patient_id", "custom:role", "email_verified"] {
        let found = findings_after(|t| {
            props(t, "AWS::Cognito::UserPoolClient")["WriteAttributes"]
                .as_sequence_mut()
                .expect("WriteAttributes")
                .push(attr.into());
        });
        assert_reports(&found, &format!("WriteAttributes lets users write {attr}"));
    }
}

#[test]
fn absent_or_empty_write_attributes_are_reported() {
    let found =
        findings_after(|t| remove(props(t, "AWS::Cognito::UserPoolClient"), "WriteAttributes"));
    assert_reports(&found, "WriteAttributes is absent");
    let found = findings_after(|t| {
        props(t, "AWS::Cognito::UserPoolClient")["WriteAttributes"] = Value::Sequence(vec![]);
    });
    assert_reports(&found, "WriteAttributes is empty");
    let found =
        findings_after(|t| remove(props(t, "AWS::Cognito::UserPoolClient"), "ReadAttributes"));
    assert_reports(&found, "ReadAttributes must be an explicit");
}

#[test]
fn unverified_email_change_is_reported() {
    let found = findings_after(|t| {
        remove(
            props(t, "AWS::Cognito::UserPool"),
            "UserAttributeUpdateSettings",
        );
    });
    assert_reports(&found, "AttributesRequireVerificationBeforeUpdate");
}

#[test]
fn checkpoint_bucket_without_object_lock_is_reported() {
    let found = findings_after(|t| checkpoint_bucket(t)["ObjectLockEnabled"] = Value::Bool(false));
    assert_reports(&found, "Object Lock is off");
    let found = findings_after(|t| remove(checkpoint_bucket(t), "ObjectLockConfiguration"));
    assert_reports(
        &found,
        "ObjectLockConfiguration.ObjectLockEnabled must be Enabled",
    );
    assert_reports(&found, "no default retention period");
    let found = findings_after(|t| {
        checkpoint_bucket(t)["VersioningConfiguration"]["Status"] = "Suspended".into();
    });
    assert_reports(&found, "versioning is off");
}

#[test]
fn checkpoint_retention_regressions_are_reported() {
    let found = findings_after(|t| checkpoint_retention(t)["Mode"] = "GOVERNANCE".into());
    assert_reports(&found, "must be COMPLIANCE");
    let found = findings_after(|t| remove(checkpoint_retention(t), "Days"));
    assert_reports(&found, "no default retention period");
    // Through the parameter the retention refers to.
    let found = findings_after(|t| {
        t["Parameters"]["LedgerCheckpointRetentionDays"]["Default"] = 30.into();
    });
    assert_reports(&found, "shorter than 7 years");
    // Years are an equivalent spelling.
    let found = findings_after(|t| {
        let r = checkpoint_retention(t);
        remove(r, "Days");
        r["Years"] = 7.into();
    });
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn checkpoint_bucket_exposure_is_reported() {
    let found = findings_after(|t| {
        checkpoint_bucket(t)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] =
            Value::Bool(false);
    });
    assert_reports(&found, "PublicAccessBlockConfiguration.BlockPublicPolicy");
    let found = findings_after(|t| remove(checkpoint_bucket(t), "BucketEncryption"));
    assert_reports(&found, "not encrypted with KMS");
    let found = findings_after(|t| remove(&mut t["Outputs"], "LedgerCheckpointBucketName"));
    assert_reports(&found, "no Output names the checkpoint bucket");
}
