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

/// The demo patient's payor history: a roster line, two office visits for type 2 diabetes and
/// high blood pressure, metformin fills that stopped, lisinopril fills that go on, and an
/// HIE's labs and vitals (three HbA1c results rising, three blood pressures above range, one
/// eGFR). Dates are relative to `today`, so the care gaps and tips are current whenever the
/// demo runs. Synthetic: no real person.
pub fn record_files(patient: &str, today: chrono::NaiveDate) -> Vec<(&'static str, String)> {
    let d = |days: i64| (today - chrono::Duration::days(days)).to_string();
    let birth = "1966-05-14";
    let members = format!(
        "member_id,first_name,middle_name,last_name,suffix,birth_date,sex,address_line,city,state,zip,phone,email,plan_id,coverage_start,coverage_end,previous_member_id\n\
         {patient},Dana,,Demo,,{birth},F,12 Sample St,Columbus,OH,43004,614-555-0100,dana.demo@example.org,HMO-GOLD,2021-01-01,,\n"
    );
    let mut claims = String::from(
        "claim_id,line_number,claim_type,member_id,patient_first_name,patient_last_name,patient_birth_date,patient_sex,service_from,service_to,place_of_service,bill_type,billing_npi,rendering_npi,diagnosis_1,diagnosis_2,diagnosis_3,diagnosis_4,diagnosis_5,diagnosis_6,diagnosis_7,diagnosis_8,diagnosis_9,diagnosis_10,diagnosis_11,diagnosis_12,procedure_code,procedure_modifier,revenue_code,units,charge_amount,paid_amount,claim_status,original_claim_id,received_date\n",
    );
    for (n, ago) in [(1, 200), (2, 20)] {
        claims.push_str(&format!(
            "CDEMO{n:04},1,professional,{patient},Dana,Demo,{birth},F,{day},{day},11,,2666514759,1056529807,E119,I10,,,,,,,,,,,99214,,,1,204.50,151.01,paid,,{day}\n",
            day = d(ago)
        ));
    }
    let mut pharmacy = String::from(
        "claim_id,member_id,patient_first_name,patient_last_name,patient_birth_date,patient_sex,fill_date,ndc,rxnorm_ingredient,drug_name,quantity,days_supply,refill_number,prescriber_npi,pharmacy_npi,claim_status,original_claim_id\n",
    );
    for (i, ago) in [160, 130, 100].iter().enumerate() {
        pharmacy.push_str(&format!(
            "RXDEMOM{i},{patient},Dana,Demo,{birth},F,{},59990010301,6809,METFORMIN HCL ER 500 MG TABLET,30,30,{i},1596087191,2849287042,paid,\n",
            d(*ago)
        ));
    }
    for (i, ago) in [85, 55, 25].iter().enumerate() {
        pharmacy.push_str(&format!(
            "RXDEMOL{i},{patient},Dana,Demo,{birth},F,{},59990030101,29046,LISINOPRIL 10 MG TABLET,30,30,{i},1243383241,2451684239,paid,\n",
            d(*ago)
        ));
    }
    let hie_patient = serde_json::json!({
        "resourceType": "Patient", "id": "demo-hie-1",
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]},
                        "system": "https://payor.example/member-id", "value": patient}],
        "name": [{"family": "Demo", "given": ["Dana"]}], "gender": "female", "birthDate": birth,
    });
    let obs = |id: &str,
               ago: i64,
               code: &str,
               display: &str,
               category: &str,
               value: f64,
               unit: &str| {
        serde_json::json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {"reference": "Patient/demo-hie-1"},
            "effectiveDateTime": format!("{}T09:30:00-05:00", d(ago)),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
        })
        .to_string()
    };
    let a1c = "Hemoglobin A1c/Hemoglobin.total in Blood";
    let mut observations = vec![
        obs("demo-a1c-1", 330, "4548-4", a1c, "laboratory", 7.2, "%"),
        obs("demo-a1c-2", 180, "4548-4", a1c, "laboratory", 7.9, "%"),
        obs("demo-a1c-3", 15, "4548-4", a1c, "laboratory", 8.6, "%"),
        obs(
            "demo-egfr",
            15,
            "33914-3",
            "Glomerular filtration rate/1.73 sq M.predicted",
            "laboratory",
            78.0,
            "mL/min/{1.73_m2}",
        ),
    ];
    for (i, (ago, sys, dia)) in [(90, 146.0, 92.0), (45, 150.0, 94.0), (10, 148.0, 91.0)]
        .into_iter()
        .enumerate()
    {
        observations.push(obs(
            &format!("demo-sbp-{i}"),
            ago,
            "8480-6",
            "Systolic blood pressure",
            "vital-signs",
            sys,
            "mm[Hg]",
        ));
        observations.push(obs(
            &format!("demo-dbp-{i}"),
            ago,
            "8462-4",
            "Diastolic blood pressure",
            "vital-signs",
            dia,
            "mm[Hg]",
        ));
    }
    vec![
        ("members.csv", members),
        ("claims.csv", claims),
        ("pharmacy.csv", pharmacy),
        ("hie/Patient.ndjson", format!("{hie_patient}\n")),
        ("hie/Observation.ndjson", observations.join("\n") + "\n"),
    ]
}

/// Opts the demo patient in to tips and population analytics (as the patient would in the
/// app) and submits their payor history as a feed batch, which the pipeline enriches into
/// the record; the insights stage then computes their care gaps and tips.
pub async fn seed_record(system: &System, patient: &p360_events::PatientId) -> anyhow::Result<()> {
    let consent = p360_consent::AnalyticsConsent {
        population_analytics: true,
        personalized_tips: true,
    };
    system
        .state
        .consent
        .store()
        .set_analytics(patient, consent)
        .await?;
    let id = p360_events::EventId::random();
    system
        .publisher
        .publish(&[p360_events::Envelope::new(
            id,
            "/p360/demo",
            p360_events::Event::AnalyticsConsentChanged(p360_events::AnalyticsConsentChanged {
                patient_id: patient.clone(),
                population_analytics: true,
                personalized_tips: true,
                changed_at: system.clock.now(),
                change_id: id.0.to_string(),
            }),
        )])
        .await?;
    let today = system.clock.now().date_naive();
    let dir = system
        .config
        .data_dir
        .join("work/demo-feed")
        .join(today.to_string());
    for (name, text) in record_files(patient.as_str(), today) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    let batch = format!("demo-{}", today.format("%Y%m%d"));
    p360_enrich::intake::submit(&*system.objects, &dir, &batch, "demo-payor").await?;
    Ok(())
}
