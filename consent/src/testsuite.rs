//! The conformance suite every consent store adapter passes (SQLite here; DynamoDB when it
//! comes, against moto).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::model::{AnalyticsConsent, Category, Grant, Notification, Purpose, Scope};
use crate::store::{ConsentError, ConsentStore};
use chrono::{DateTime, Duration, Utc};
use p360_events::{PatientId, UserId};
use std::sync::Arc;

fn grant(id: &str, patient: &str, grantee: &str, created: DateTime<Utc>) -> Grant {
    Grant {
        id: id.into(),
        patient: PatientId::parse(patient).unwrap(),
        grantee: UserId::parse(grantee).unwrap(),
        scope: Scope::read_all(),
        purpose: Purpose::Treatment,
        start: created,
        end: created + Duration::days(90),
        created_at: created,
        revoked_at: None,
        break_glass: false,
        reason: None,
        version: 1,
    }
}

/// Runs every check; `prefix` keeps ids of separate runs apart on a shared store.
pub async fn run(store: Arc<dyn ConsentStore>, prefix: &str) {
    let t0 = Utc::now() - Duration::hours(1);
    let p1 = format!("{prefix}pat-1");
    let p2 = format!("{prefix}pat-2");
    let g1 = grant(&format!("{prefix}g1"), &p1, "dr-a", t0);
    let g2 = grant(
        &format!("{prefix}g2"),
        &p1,
        "dr-b",
        t0 + Duration::seconds(1),
    );
    let g3 = grant(
        &format!("{prefix}g3"),
        &p2,
        "dr-a",
        t0 + Duration::seconds(2),
    );
    for g in [&g1, &g2, &g3] {
        store.create(g).await.unwrap();
    }
    // Ids are unique.
    assert!(matches!(
        store.create(&g1).await,
        Err(ConsentError::Invalid(_))
    ));
    assert_eq!(store.get(&g1.id).await.unwrap().as_ref(), Some(&g1));
    assert_eq!(store.get(&format!("{prefix}nope")).await.unwrap(), None);

    // Listings, newest first.
    let ids = |v: Vec<Grant>| v.into_iter().map(|g| g.id).collect::<Vec<_>>();
    let patient1 = PatientId::parse(&p1).unwrap();
    assert_eq!(
        ids(store.for_patient(&patient1).await.unwrap()),
        [g2.id.clone(), g1.id.clone()]
    );
    let dr_a = UserId::parse("dr-a").unwrap();
    let mine = ids(store.for_grantee(&dr_a).await.unwrap());
    assert!(mine.contains(&g1.id) && mine.contains(&g3.id) && !mine.contains(&g2.id));
    assert_eq!(
        ids(store.between(&patient1, &dr_a).await.unwrap()),
        [g1.id.as_str()]
    );

    // Conditional changes: the version must match.
    let new_end = g1.end + Duration::days(30);
    let extended = store.extend(&g1.id, 1, new_end).await.unwrap();
    assert_eq!((extended.end, extended.version), (new_end, 2));
    assert!(matches!(
        store.extend(&g1.id, 1, new_end).await,
        Err(ConsentError::Conflict { current: 2, .. })
    ));
    let narrow = Scope {
        categories: Some([Category::Labs].into()),
        ..Scope::read_all()
    };
    let narrowed = store.rescope(&g1.id, 2, &narrow).await.unwrap();
    assert_eq!((narrowed.scope.clone(), narrowed.version), (narrow, 3));
    let revoked = store.revoke(&g1.id, 3, Utc::now()).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    // A revoked grant stays revoked.
    assert!(matches!(
        store.extend(&g1.id, 4, new_end).await,
        Err(ConsentError::Conflict { .. })
    ));
    assert!(matches!(
        store.revoke(&g1.id, 4, Utc::now()).await,
        Err(ConsentError::Conflict { .. })
    ));
    assert!(matches!(
        store.extend(&format!("{prefix}nope"), 1, new_end).await,
        Err(ConsentError::NotFound(_))
    ));

    // A revoke racing an extend: exactly one wins.
    let (a, b) = tokio::join!(
        store.revoke(&g2.id, 1, Utc::now()),
        store.extend(&g2.id, 1, g2.end + Duration::days(1))
    );
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");

    // Analytics: out until the patient opts in.
    assert_eq!(
        store.analytics(&patient1).await.unwrap(),
        AnalyticsConsent::default()
    );
    let yes = AnalyticsConsent {
        population_analytics: true,
        personalized_tips: false,
    };
    store.set_analytics(&patient1, yes).await.unwrap();
    assert_eq!(store.analytics(&patient1).await.unwrap(), yes);

    // Break-glass opt-out: off until the patient says so, and back.
    assert!(!store.break_glass_opt_out(&patient1).await.unwrap());
    store
        .set_break_glass_opt_out(&patient1, true)
        .await
        .unwrap();
    assert!(store.break_glass_opt_out(&patient1).await.unwrap());
    assert!(
        !store
            .break_glass_opt_out(&PatientId::parse(&p2).unwrap())
            .await
            .unwrap(),
        "one patient's choice only"
    );
    store
        .set_break_glass_opt_out(&patient1, false)
        .await
        .unwrap();
    assert!(!store.break_glass_opt_out(&patient1).await.unwrap());

    // Notifications: newest first, stored once per id.
    for (i, at) in [t0, t0 + Duration::minutes(5)].into_iter().enumerate() {
        let n = Notification {
            id: format!("{prefix}n{i}"),
            patient: patient1.clone(),
            at,
            kind: "break_glass".into(),
            message: format!("note {i}"),
            grant_id: Some(g1.id.clone()),
        };
        store.notify(&n).await.unwrap();
        store.notify(&n).await.unwrap();
    }
    let got = store.notifications(&patient1, 10).await.unwrap();
    assert_eq!(
        got.iter().map(|n| n.message.as_str()).collect::<Vec<_>>(),
        ["note 1", "note 0"]
    );
    assert_eq!(store.notifications(&patient1, 1).await.unwrap().len(), 1);
}
