//! One-statement writes (`AtomicWrite`) against a real PostgreSQL: all or nothing, the guard
//! refuses a row changed since it was read, and the statement is prepared once per connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::{ExpressionMethods as _, QueryDsl as _, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use platform_events::{Envelope, EventMeta, catalog};
use platform_messaging::{AtomicWrite, Committed};
use platform_store::Xmin;
use platform_testkit as kit;

static MIGRATIONS: &[diesel_migrations::EmbeddedMigrations] = &[platform_messaging::MIGRATIONS];

diesel::table! {
    accounts (id) {
        id -> Integer,
        balance -> Integer,
    }
}

diesel::table! {
    ledger (id) {
        id -> Integer,
        account_id -> Integer,
        amount -> Integer,
    }
}

async fn setup() -> platform_store::PooledConn {
    let db = kit::database("atomic", MIGRATIONS).await;
    let pool = platform_store::pool(&kit::settings(&db, &[]).database).unwrap();
    let mut c = platform_store::conn(&pool).await.unwrap();
    for sql in [
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)",
        "CREATE TABLE ledger (id INT PRIMARY KEY, account_id INT NOT NULL REFERENCES accounts, amount INT NOT NULL)",
        "INSERT INTO accounts VALUES (1, 100)",
    ] {
        diesel::sql_query(sql).execute(&mut *c).await.unwrap();
    }
    c
}

fn envelope(n: i32) -> Envelope {
    let payload = catalog::ObjectionEvent { objection_id: format!("o-{n}"), ..Default::default() };
    Envelope::wrap(
        EventMeta {
            event_type: "test.changed".into(),
            aggregate_id: "1".into(),
            aggregate_version: n as u64,
            producer: "test".into(),
            jurisdiction: "610000".into(),
        },
        &payload,
    )
}

async fn read(c: &mut AsyncPgConnection) -> (i32, i64) {
    accounts::table.find(1).select((accounts::balance, Xmin)).first(c).await.unwrap()
}

/// Withdraws `amount` from account 1 as read with `xmin`, with a ledger row and an event.
fn withdrawal(balance: i32, xmin: i64, ledger_id: i32, amount: i32) -> AtomicWrite {
    let mut w = AtomicWrite::guarded(
        diesel::update(accounts::table.find(1).filter(Xmin.eq(xmin)))
            .set(accounts::balance.eq(balance - amount))
            .returning(Xmin),
    );
    w.write(diesel::insert_into(ledger::table).values((
        ledger::id.eq(ledger_id),
        ledger::account_id.eq(1),
        ledger::amount.eq(-amount),
    )));
    w.publish("test.topic", &envelope(ledger_id)).unwrap();
    w
}

fn done(c: Committed) -> bool {
    matches!(c, Committed::Done { .. })
}

async fn counts(c: &mut AsyncPgConnection) -> (i32, i64, i64) {
    let balance = accounts::table.find(1).select(accounts::balance).first(c).await.unwrap();
    let ledger = ledger::table.count().get_result(c).await.unwrap();
    let outbox: i64 =
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM outbox").get_result(c).await.unwrap();
    (balance, ledger, outbox)
}

#[tokio::test]
async fn a_guarded_write_commits_the_row_its_history_and_its_event_together() {
    let mut c = setup().await;
    let (balance, xmin) = read(&mut c).await;
    let Committed::Done { version: Some(written) } = withdrawal(balance, xmin, 1, 30).commit(&mut c).await.unwrap()
    else {
        panic!("the guarded write did not commit with a version");
    };
    assert_eq!(counts(&mut c).await, (70, 1, 1));
    // The row has a new xmin, and the commit reported it: a change starting from the row as
    // written (without reading it) is guarded correctly.
    let (balance, xmin2) = read(&mut c).await;
    assert_ne!(xmin, xmin2);
    assert_eq!(written, xmin2);
    assert!(done(withdrawal(balance, written, 2, 20).commit(&mut c).await.unwrap()));
    assert_eq!(counts(&mut c).await, (50, 2, 2));
}

#[tokio::test]
async fn a_row_changed_after_it_was_read_writes_nothing_neither_the_change_nor_its_event() {
    let mut c = setup().await;
    let (balance, xmin) = read(&mut c).await;
    // Someone else changes the account in between.
    diesel::update(accounts::table.find(1)).set(accounts::balance.eq(90)).execute(&mut c).await.unwrap();
    assert_eq!(withdrawal(balance, xmin, 1, 30).commit(&mut c).await.unwrap(), Committed::Stale);
    assert_eq!(counts(&mut c).await, (90, 0, 0));
    // Deciding again on the new state succeeds.
    let (balance, xmin) = read(&mut c).await;
    assert!(done(withdrawal(balance, xmin, 1, 30).commit(&mut c).await.unwrap()));
    assert_eq!(counts(&mut c).await, (60, 1, 1));
}

#[tokio::test]
async fn a_failing_statement_rolls_back_the_guarded_change_and_the_event() {
    let mut c = setup().await;
    let (balance, xmin) = read(&mut c).await;
    withdrawal(balance, xmin, 1, 10).commit(&mut c).await.unwrap();
    // Ledger id 1 again: the primary key refuses it, so the balance and outbox stay as they were.
    let (balance, xmin) = read(&mut c).await;
    let err = withdrawal(balance, xmin, 1, 10).commit(&mut c).await.unwrap_err();
    assert!(matches!(err, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)));
    assert_eq!(counts(&mut c).await, (90, 1, 1));
}

#[tokio::test]
async fn writes_without_a_guard_commit_together() {
    let mut c = setup().await;
    let mut w = AtomicWrite::default();
    assert!(w.is_empty());
    w.write(diesel::insert_into(ledger::table).values((
        ledger::id.eq(7),
        ledger::account_id.eq(1),
        ledger::amount.eq(5),
    )));
    w.publish("test.topic", &envelope(7)).unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(w.commit(&mut c).await.unwrap(), Committed::Done { version: None });
    assert_eq!(counts(&mut c).await, (100, 1, 1));
    // A ledger row for a missing account fails the foreign key: the event does not commit either.
    let mut w = AtomicWrite::default();
    w.write(diesel::insert_into(ledger::table).values((
        ledger::id.eq(8),
        ledger::account_id.eq(2),
        ledger::amount.eq(5),
    )));
    w.publish("test.topic", &envelope(8)).unwrap();
    assert!(w.commit(&mut c).await.is_err());
    assert_eq!(counts(&mut c).await, (100, 1, 1));
}

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn the_statement_is_prepared_once_per_connection() {
    let mut c = setup().await;
    for i in 1..=5 {
        let (balance, xmin) = read(&mut c).await;
        assert!(done(withdrawal(balance, xmin, i, 1).commit(&mut c).await.unwrap()));
    }
    let prepared: Prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'WITH g(version) AS (UPDATE \"accounts\"%'",
    )
    .get_result(&mut c)
    .await
    .unwrap();
    // Diesel alone would prepare an UPDATE afresh on every call (one more round trip each).
    assert_eq!(prepared.n, 1);
    let reads: Prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'SELECT \"accounts\".\"balance\", xmin::text::bigint%'",
    )
    .get_result(&mut c)
    .await
    .unwrap();
    assert_eq!(reads.n, 1);
}

#[tokio::test]
async fn a_cached_statement_is_prepared_once_where_diesel_would_prepare_it_every_time() {
    let mut c = setup().await;
    let sql = "INSERT INTO ledger (id, account_id, amount) VALUES ($1, 1, $1)";
    for i in 1..=3 {
        let cached = diesel::sql_query(sql).bind::<diesel::sql_types::Integer, _>(i);
        platform_store::Cached(cached).execute(&mut c).await.unwrap();
        // The same text unwrapped: diesel prepares it anew each time and closes it after use.
        let plain = diesel::sql_query(sql).bind::<diesel::sql_types::Integer, _>(100 + i);
        plain.execute(&mut c).await.unwrap();
    }
    let named: Prepared = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO ledger (id, account_id%'",
    )
    .get_result(&mut c)
    .await
    .unwrap();
    assert_eq!(named.n, 1, "the cached statement stays prepared, the plain one does not");
    assert_eq!(ledger::table.count().get_result::<i64>(&mut c).await.unwrap(), 6);
}
