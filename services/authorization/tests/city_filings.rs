//! City nodes file through city.filing.v1 and read receipts on province.receipt.v1 (SX-19, SX-21).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{SHAANXI, XIAN, start};
use platform_auth::Role;
use platform_events::{Envelope, EventMeta, Message as _, city as pb, topics};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn filing(id: &str, city: &str, kind: pb::FilingKind, decided_on: chrono::NaiveDate) -> pb::CityFiling {
    pb::CityFiling {
        filing_id: id.into(),
        city: city.into(),
        kind: kind as i32,
        subject_id: "XA-PLAN-2026-01".into(),
        title: "西安市公共数据资源授权运营实施方案".into(),
        decided_on: decided_on.to_string(),
        document_sha256: "ab".repeat(32),
        submitted_at: None,
    }
}

/// What a city node sends: the envelope names the producing city.
async fn send(producer: &FutureProducer, topic: &str, as_city: &str, f: &pb::CityFiling) {
    let env = Envelope::wrap(
        EventMeta {
            event_type: "city.filing.submitted".into(),
            aggregate_id: f.filing_id.clone(),
            aggregate_version: 1,
            producer: format!("city-{as_city}"),
            jurisdiction: as_city.into(),
        },
        f,
    );
    let bytes = env.encode_to_vec();
    producer.send(FutureRecord::to(topic).key(as_city).payload(&bytes), Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filings_are_checked_against_the_city_deadlines_and_answered_once_sx_19_sx_21() {
    let p = start().await;
    let producer: FutureProducer = platform_messaging::client_config(&p.auth_settings.kafka).create().unwrap();
    let topic = p.auth_settings.kafka.topic(topics::CITY_FILING);
    let today = platform_calendar::today_in_china();
    let ten_days_ago = today - chrono::Duration::days(10);
    let two_months_ago = today.checked_sub_months(chrono::Months::new(2)).unwrap();
    let ids: Vec<String> = (0..4).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    send(&producer, &topic, XIAN, &filing(&ids[0], XIAN, pb::FilingKind::Plan, ten_days_ago)).await;
    send(&producer, &topic, XIAN, &filing(&ids[1], XIAN, pb::FilingKind::Agreement, two_months_ago)).await;
    // Weifang's node filing in Xi'an's name.
    send(&producer, &topic, "370700", &filing(&ids[2], XIAN, pb::FilingKind::Plan, ten_days_ago)).await;
    // The province is not a city.
    send(&producer, &topic, SHAANXI, &filing(&ids[3], SHAANXI, pb::FilingKind::Plan, ten_days_ago)).await;
    // The first filing again (a resend): answered once.
    send(&producer, &topic, XIAN, &filing(&ids[0], XIAN, pb::FilingKind::Plan, ten_days_ago)).await;

    use rdkafka::Message as _;
    let reader = platform_testkit::topic_reader(&p.auth_settings, topics::PROVINCE_RECEIPT);
    let mut receipts = std::collections::HashMap::new();
    while receipts.len() < 4 {
        let m = tokio::time::timeout(Duration::from_secs(30), reader.recv()).await.expect("receipts").unwrap();
        let r: pb::ProvinceReceipt = Envelope::decode_checked(m.payload().unwrap()).unwrap().payload_as().unwrap();
        assert!(receipts.insert(r.filing_id.clone(), r).is_none(), "one receipt per filing");
    }
    let plan = &receipts[&ids[0]];
    assert_eq!((plan.status, plan.late, plan.rule.as_str()), (pb::ReceiptStatus::Accepted as i32, false, "SX-19"));
    assert_eq!(plan.due_date, platform_calendar::add_months(ten_days_ago, 1).to_string());
    let agreement = &receipts[&ids[1]];
    assert_eq!(
        (agreement.status, agreement.late, agreement.rule.as_str()),
        (pb::ReceiptStatus::Accepted as i32, true, "SX-21")
    );
    let forged = &receipts[&ids[2]];
    assert_eq!(forged.status, pb::ReceiptStatus::Rejected as i32);
    assert!(forged.reasons[0].contains("not the producer's own jurisdiction"), "{:?}", forged.reasons);
    let province = &receipts[&ids[3]];
    assert!(province.reasons.iter().any(|r| r.contains("not a city")), "{:?}", province.reasons);
    // No second receipt for the resend.
    assert!(tokio::time::timeout(Duration::from_secs(2), reader.recv()).await.is_err());

    let r = p.auth_as(Role::DataAdmin, SHAANXI, "GET", "/city-filings", None).await;
    let rows = r.body.as_array().unwrap();
    assert_eq!(rows.len(), 3, "the Xi'an filings, under Shaanxi: {}", r.body);
    assert!(rows.iter().any(|f| f["late"] == true && f["kind"] == "agreement"));
    let r = p.auth_as(Role::Operator, SHAANXI, "GET", "/city-filings", None).await;
    assert_eq!(r.status, 403);
}
