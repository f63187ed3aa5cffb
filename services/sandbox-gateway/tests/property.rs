//! Property: for random datasets and random allowed queries, no returned group holds fewer rows
//! than the grant's minimum (WF-26), and no sensitive value leaves unmasked (ZJK-21).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use platform_events::authorization::GrantChange;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Person {
    district: String,
    age: i64,
    income: i64,
    id_card: String,
    phone: String,
    name: String,
}

/// A predicate both as SQL and as Rust.
struct Pred {
    sql: String,
    holds: Box<dyn Fn(&Person) -> bool>,
}

fn predicate(rng: &mut StdRng, districts: usize) -> Pred {
    match rng.random_range(0..4) {
        0 => {
            let v = rng.random_range(18..80);
            Pred { sql: format!("age > {v}"), holds: Box::new(move |p| p.age > v) }
        }
        1 => {
            let v = rng.random_range(2000..9000);
            Pred { sql: format!("income < {v}"), holds: Box::new(move |p| p.income < v) }
        }
        2 => {
            let d = format!("区{}", rng.random_range(0..districts));
            let sql = format!("district = '{d}'");
            Pred { sql, holds: Box::new(move |p| p.district == d) }
        }
        _ => {
            let d = format!("区{}", rng.random_range(0..districts));
            let sql = format!("district <> '{d}'");
            Pred { sql, holds: Box::new(move |p| p.district != d) }
        }
    }
}

const AGGREGATES: &[&str] =
    &["count(DISTINCT id_card)", "count(phone)", "avg(age)", "sum(income)", "min(age)", "max(income)", "count(name)"];

#[tokio::test]
async fn no_small_group_and_no_raw_sensitive_value_ever_leaves() {
    let p = start().await;
    let id = p.resource("XA-MZ-0001", "conditional", person_fields()).await;
    let mut checked_rows = 0usize;
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(0x5eed + seed);
        let districts = rng.random_range(1..15);
        let n = rng.random_range(20..400);
        let people: Vec<Person> = (0..n)
            .map(|i| Person {
                // Skewed: low districts are crowded, high ones sparse.
                district: format!("区{}", (rng.random_range(0..districts * districts) as f64).sqrt() as usize),
                age: rng.random_range(18..90),
                income: rng.random_range(1000..10000),
                id_card: format!("6101{:02}19{:02}0101{:04}", rng.random_range(0..99), rng.random_range(40..99), i),
                phone: format!("13{:09}", rng.random_range(0..999_999_999u64)),
                name: format!("{}{}", ["王", "李", "张", "刘"][rng.random_range(0..4)], i),
            })
            .collect();
        let mut csv = String::from("district,age,income,id_card,phone,name\n");
        for q in &people {
            csv.push_str(&format!("{},{},{},{},{},{}\n", q.district, q.age, q.income, q.id_card, q.phone, q.name));
        }
        assert_eq!(p.load(&id, "csv", csv).await.status, 201);
        let k = [3u32, 5, 10][rng.random_range(0..3)];
        let g = grant(&[&id], k);
        p.grant_event(&g, GrantChange::Granted, 1).await;

        for _ in 0..25 {
            let grouped = rng.random_bool(0.7);
            let preds: Vec<Pred> = (0..rng.random_range(0..3)).map(|_| predicate(&mut rng, districts)).collect();
            let agg = AGGREGATES[rng.random_range(0..AGGREGATES.len())];
            let where_sql = if preds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", preds.iter().map(|p| p.sql.as_str()).collect::<Vec<_>>().join(" AND "))
            };
            let sql = if grouped {
                format!("SELECT district, {agg} FROM xa_mz_0001{where_sql} GROUP BY district")
            } else {
                format!("SELECT {agg} FROM xa_mz_0001{where_sql}")
            };
            let r = p.query(&g, &sql).await;
            assert_eq!(r.status, 200, "{sql}: {}", r.body);
            for row in r.body["rows"].as_array().unwrap() {
                checked_rows += 1;
                let size = people
                    .iter()
                    .filter(|q| preds.iter().all(|pr| (pr.holds)(q)))
                    .filter(|q| !grouped || row[0].as_str() == Some(q.district.as_str()))
                    .count();
                assert!(size >= k as usize, "{sql}: a group of {size} < {k} was returned: {row}");
                let text = row.to_string();
                for q in &people {
                    assert!(
                        !text.contains(&q.id_card)
                            && !text.contains(&q.phone)
                            && !text.contains(&format!("\"{}\"", q.name)),
                        "{sql}: a raw sensitive value left: {row}"
                    );
                }
            }
        }
    }
    assert!(checked_rows > 20, "the property saw too few rows ({checked_rows}) to mean anything");
}
