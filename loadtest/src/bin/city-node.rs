//! A city-node simulator that uses only the contract in proto/README.md ("City nodes"): it files
//! plans and agreements for each city on `city.filing.v1` and waits for every receipt on
//! `province.receipt.v1`, printing what came back and how fast.
//!
//! `city-node --brokers 127.0.0.1:9092 [--topic-prefix P] [--cities 610100,370700] [--filings 10]`
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use platform_events::{Envelope, EventMeta, Message as _, city as pb};
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let brokers = arg(&args, "--brokers", "127.0.0.1:9092");
    let prefix = arg(&args, "--topic-prefix", "");
    let cities: Vec<String> = arg(&args, "--cities", "610100").split(',').map(str::to_string).collect();
    let per_city: usize = arg(&args, "--filings", "10").parse()?;
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("enable.idempotence", "true").create()?;
    let receipts: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("city-{}-simulator-{}", cities[0], uuid::Uuid::now_v7().simple()))
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    receipts.subscribe(&[&format!("{prefix}province.receipt.v1")])?;
    let today = chrono::Utc::now().date_naive();
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    for city in &cities {
        for i in 0..per_city {
            let id = uuid::Uuid::now_v7().to_string();
            let kind = if i % 2 == 0 { pb::FilingKind::Plan } else { pb::FilingKind::Agreement };
            let filing = pb::CityFiling {
                filing_id: id.clone(),
                city: city.clone(),
                kind: kind as i32,
                subject_id: format!("{city}-{i}"),
                title: format!("{city} 授权运营文件 {i}"),
                decided_on: (today - chrono::Duration::days(i as i64 * 7)).to_string(),
                document_sha256: format!("{:064x}", i),
                submitted_at: Some(platform_events::timestamp(chrono::Utc::now())),
            };
            let env = Envelope::wrap(
                EventMeta {
                    event_type: "city.filing.submitted".into(),
                    aggregate_id: id.clone(),
                    aggregate_version: 1,
                    producer: format!("city-{city}"),
                    jurisdiction: city.clone(),
                },
                &filing,
            );
            let bytes = env.encode_to_vec();
            let topic = format!("{prefix}city.filing.v1");
            producer
                .send(FutureRecord::to(&topic).key(city).payload(&bytes), Duration::from_secs(5))
                .await
                .map_err(|(e, _)| e)?;
            sent.insert(id, Instant::now());
        }
    }
    let (mut accepted, mut rejected, mut late, mut latencies) = (0, 0, 0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted + rejected < sent.len() && Instant::now() < deadline {
        let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(5), receipts.recv()).await else { continue };
        let Ok(env) = Envelope::decode_checked(m.payload().unwrap_or_default()) else { continue };
        let Ok(r) = env.payload_as::<pb::ProvinceReceipt>() else { continue };
        let Some(at) = sent.get(&r.filing_id) else { continue };
        latencies.push(at.elapsed().as_secs_f64() * 1000.0);
        if r.status == pb::ReceiptStatus::Accepted as i32 {
            accepted += 1;
        } else {
            rejected += 1;
            println!("rejected {}: {:?}", r.filing_id, r.reasons);
        }
        late += usize::from(r.late);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p50 = latencies.get(latencies.len() / 2).copied().unwrap_or(f64::NAN);
    let p99 = latencies.get(latencies.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(f64::NAN);
    println!(
        "{} filings from {} cities: {accepted} accepted ({late} late), {rejected} rejected, {} unanswered; \
         receipt latency p50 {p50:.1} ms, p99 {p99:.1} ms; {:.1} s in all",
        sent.len(),
        cities.len(),
        sent.len() - accepted - rejected,
        started.elapsed().as_secs_f64()
    );
    if accepted + rejected < sent.len() {
        std::process::exit(1);
    }
    Ok(())
}
