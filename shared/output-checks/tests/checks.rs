//! Each check on artefacts that must pass and artefacts that must fail, named by behaviour and rule.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use platform_output_checks::{
    ArtefactKind, Cell, Check, Dataset, FieldClass, FieldSpec, LeakageIndex, Outcome, Param, Params, RawTable,
    ReleasedCell, Statistic, Table, TableField, check_dataset, check_table, scan_dataset, scan_file, tokens,
};

fn keys(k: &[&str]) -> Vec<String> {
    k.iter().map(|s| (*s).to_owned()).collect()
}

fn frequency(counts: &[(&str, &str, u64)]) -> Table {
    Table {
        statistic: Statistic::Count,
        field: None,
        dimensions: keys(&["district", "sector"]),
        cells: counts.iter().map(|(a, b, n)| Cell::count(keys(&[a, b]), *n)).collect(),
        margins: false,
    }
}

fn magnitude(statistic: Statistic, cells: &[(&str, Vec<f64>)]) -> Table {
    Table {
        statistic,
        field: Some(TableField { name: "revenue".into(), sensitive: true }),
        dimensions: keys(&["district"]),
        cells: cells.iter().map(|(k, c)| Cell::contributions(keys(&[k]), c.clone())).collect(),
        margins: false,
    }
}

fn outcome_of(table: &Table, params: &Params, cell: usize, check: Check) -> Outcome {
    let report = check_table(table, params, &[]);
    report.cells[cell].finding(check).map(|f| f.outcome).expect("the check ran")
}

// Frequency tables.

#[test]
fn a_cell_of_nine_fails_the_threshold_and_a_cell_of_ten_passes_wf_26() {
    let table = frequency(&[("雁塔区", "餐饮", 9), ("碑林区", "餐饮", 10)]);
    let report = check_table(&table, &Params::default(), &[]);
    let nine = report.cells[0].finding(Check::Threshold).unwrap();
    assert_eq!((nine.outcome, nine.rule.as_str()), (Outcome::Fail, "WF-26"));
    assert_eq!((nine.numbers["count"], nine.numbers["threshold"]), (9.0, 10.0));
    assert_eq!(report.cells[1].outcome, Outcome::Pass);
    assert_eq!(report.outcome, Outcome::Fail);
}

#[test]
fn the_profile_threshold_replaces_the_national_default() {
    let params = Params { threshold: Param::new(5, "NS-20"), ..Params::default() };
    let table = frequency(&[("a", "x", 5), ("a", "y", 4)]);
    let report = check_table(&table, &params, &[]);
    assert_eq!(report.cells[0].outcome, Outcome::Pass);
    assert_eq!(report.cells[1].finding(Check::Threshold).unwrap().rule, "NS-20");
}

#[test]
fn an_empty_frequency_cell_fails_as_a_disclosive_zero_by_platform_default() {
    let table = frequency(&[("a", "x", 0), ("a", "y", 12)]);
    let params = Params::default();
    assert_eq!(outcome_of(&table, &params, 0, Check::Zeros), Outcome::Fail);
    assert_eq!(outcome_of(&table, &params, 1, Check::Zeros), Outcome::Pass);
}

#[test]
fn an_empty_frequency_cell_passes_the_zeros_check_where_the_profile_says_zeros_are_safe() {
    let params = Params { zeros_disclosive: Param::new(false, "profile"), ..Params::default() };
    let table = frequency(&[("a", "x", 0)]);
    assert_eq!(outcome_of(&table, &params, 0, Check::Zeros), Outcome::Pass);
    // The threshold still fails it: 0 < 10.
    assert_eq!(outcome_of(&table, &params, 0, Check::Threshold), Outcome::Fail);
}

// Magnitude tables.

#[test]
fn two_contributions_making_90_percent_fail_nk_dominance_and_a_spread_cell_passes() {
    let mut dominated = vec![60.0, 35.0];
    dominated.extend([1.0; 10]);
    let table = magnitude(Statistic::Sum, &[("a", dominated), ("b", vec![10.0; 12])]);
    let report = check_table(&table, &Params::default(), &[]);
    let nk = report.cells[0].finding(Check::NkDominance).unwrap();
    assert_eq!(nk.outcome, Outcome::Fail);
    assert_eq!((nk.numbers["top_n_sum"], nk.numbers["total"]), (95.0, 105.0));
    assert_eq!(report.cells[1].finding(Check::NkDominance).unwrap().outcome, Outcome::Pass);
    assert_eq!(report.cells[1].outcome, Outcome::Pass);
}

#[test]
fn a_share_of_exactly_k_fails_nk_dominance_as_acro_does() {
    // 45 + 45 of 100: the share is 0.9, and the rule is `>=`.
    let mut exact = vec![45.0, 45.0];
    exact.extend([1.0; 10]);
    let table = magnitude(Statistic::Mean, &[("a", exact)]);
    assert_eq!(outcome_of(&table, &Params::default(), 0, Check::NkDominance), Outcome::Fail);
}

#[test]
fn a_remainder_below_10_percent_of_the_largest_fails_the_p_ratio_rule_and_exactly_10_percent_passes() {
    // 50 and 40, then 4 more: 4 / 50 = 0.08 < 0.10 fails; 5 / 50 = 0.10 passes (the rule is `<`).
    let below = vec![50.0, 40.0, 1.0, 1.0, 1.0, 1.0];
    let exact = vec![50.0, 40.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    let table = magnitude(Statistic::Sum, &[("a", below), ("b", exact)]);
    let params = Params::default();
    assert_eq!(outcome_of(&table, &params, 0, Check::PRatio), Outcome::Fail);
    assert_eq!(outcome_of(&table, &params, 1, Check::PRatio), Outcome::Pass);
}

#[test]
fn an_all_zero_cell_fails_the_p_ratio_rule_and_passes_nk_as_acro_does() {
    let table = magnitude(Statistic::Sum, &[("a", vec![0.0; 12])]);
    let params = Params::default();
    assert_eq!(outcome_of(&table, &params, 0, Check::PRatio), Outcome::Fail);
    assert_eq!(outcome_of(&table, &params, 0, Check::NkDominance), Outcome::Pass);
}

#[test]
fn a_negative_contribution_sends_its_cell_to_review_and_the_other_cells_are_still_checked() {
    let mut negative = vec![-5.0];
    negative.extend([10.0; 11]);
    let table =
        magnitude(Statistic::Sum, &[("a", negative), ("b", vec![1000.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])]);
    let report = check_table(&table, &Params::default(), &[]);
    assert_eq!(report.cells[0].finding(Check::NkDominance).unwrap().outcome, Outcome::Review);
    assert_eq!(report.cells[0].finding(Check::PRatio).unwrap().outcome, Outcome::Review);
    assert_eq!(report.cells[1].finding(Check::NkDominance).unwrap().outcome, Outcome::Fail);
}

// Unsafe statistics.

#[test]
fn the_max_of_a_sensitive_field_fails_and_of_another_field_needs_review_sx_27() {
    let mut table = magnitude(Statistic::Max, &[("a", vec![1.0; 20])]);
    let report = check_table(&table, &Params::default(), &[]);
    let finding = report.cells[0].finding(Check::UnsafeStatistic).unwrap();
    assert_eq!((finding.outcome, finding.rule.as_str()), (Outcome::Fail, "SX-27, ZJK-25, NS-21"));
    table.field = Some(TableField { name: "trip_minutes".into(), sensitive: false });
    for statistic in [Statistic::Min, Statistic::Median, Statistic::Mode, Statistic::Percentile(90)] {
        table.statistic = statistic;
        let report = check_table(&table, &Params::default(), &[]);
        assert_eq!(report.cells[0].outcome, Outcome::Review, "{statistic:?}");
    }
    table.statistic = Statistic::Sum;
    assert_eq!(check_table(&table, &Params::default(), &[]).cells[0].finding(Check::UnsafeStatistic), None);
}

// Secondary disclosure.

fn grid_with_one_small_cell(margins: bool) -> Table {
    let mut table =
        frequency(&[("a", "x", 20), ("a", "y", 3), ("a", "z", 20), ("b", "x", 20), ("b", "y", 20), ("b", "z", 20)]);
    table.margins = margins;
    table
}

#[test]
fn a_released_row_total_that_derives_a_suppressed_cell_fails_wf_26() {
    let report = check_table(&grid_with_one_small_cell(true), &Params::default(), &[]);
    assert_eq!(report.margins.len(), 1, "{:?}", report.margins);
    let margin = &report.margins[0];
    assert_eq!(margin.item, vec![Some("a".to_owned()), None]);
    let finding = margin.finding(Check::MarginDerivation).unwrap();
    assert_eq!((finding.outcome, finding.rule.as_str()), (Outcome::Fail, "WF-26"));
    assert!(finding.note.as_deref().unwrap().contains("a × y"));
}

#[test]
fn a_table_without_margins_flags_no_margin_and_a_rectangle_of_suppressed_cells_is_not_derivable_wf_26() {
    assert!(check_table(&grid_with_one_small_cell(false), &Params::default(), &[]).margins.is_empty());
    let mut table =
        frequency(&[("a", "x", 3), ("a", "y", 3), ("b", "x", 3), ("b", "y", 3), ("c", "x", 30), ("c", "y", 30)]);
    table.margins = true;
    let report = check_table(&table, &Params::default(), &[]);
    // Rows a and b and both columns hold two suppressed cells each; row c holds none.
    assert!(report.margins.is_empty(), "{:?}", report.margins);
}

#[test]
fn a_cell_that_differs_from_an_earlier_release_by_three_units_fails_differencing_wf_26() {
    let earlier =
        vec![ReleasedCell {
            release: "audit-41".into(), keys: keys(&["雁塔区", "all"]), members: (0..50).collect()
        }];
    let table = Table {
        statistic: Statistic::Count,
        field: None,
        dimensions: keys(&["district", "age"]),
        cells: vec![
            Cell::count(keys(&["雁塔区", "≥18"]), 47).with_members((3..50).collect()),
            Cell::count(keys(&["雁塔区", "all"]), 50).with_members((0..50).collect()),
            Cell::count(keys(&["碑林区", "all"]), 40).with_members((100..140).collect()),
        ],
        margins: false,
    };
    let report = check_table(&table, &Params::default(), &earlier);
    let finding = report.cells[0].finding(Check::Differencing).unwrap();
    assert_eq!(finding.outcome, Outcome::Fail);
    assert_eq!(finding.numbers["differing_units"], 3.0);
    assert!(finding.note.as_deref().unwrap().contains("audit-41"));
    // The same group again, and an unrelated one, pass.
    assert_eq!(report.cells[1].outcome, Outcome::Pass);
    assert_eq!(report.cells[2].outcome, Outcome::Pass);
}

// Microdata.

fn people(rows: &[[&str; 4]]) -> Dataset {
    Dataset {
        fields: vec![
            FieldSpec::new("district", FieldClass::Other).personal(),
            FieldSpec::new("birth_year", FieldClass::Other).personal(),
            FieldSpec::new("diagnosis", FieldClass::Sensitive).personal(),
            FieldSpec::new("visits", FieldClass::Other),
        ],
        rows: rows.iter().map(|r| r.iter().map(|v| (*v).to_owned()).collect()).collect(),
    }
}

fn params_k(k: u64) -> Params {
    Params { k_anonymity: Param::new(k, "profile"), ..Params::default() }
}

#[test]
fn a_dataset_with_a_direct_identifier_fails_sx_27() {
    let mut dataset = people(&[["雁塔区", "1980", "flu", "1"]; 3]);
    dataset.fields[3] = FieldSpec::new("id_number", FieldClass::DirectIdentifier);
    let report = check_dataset(&dataset, &params_k(2));
    assert_eq!(report.fields[3].outcome, Outcome::Fail);
    assert_eq!(report.fields[0].outcome, Outcome::Pass);
    assert_eq!(report.outcome, Outcome::Fail);
}

#[test]
fn rows_in_a_class_smaller_than_k_fail_k_anonymity_over_the_personal_information_fields_by_default() {
    let dataset = people(&[
        ["雁塔区", "1980", "flu", "1"],
        ["雁塔区", "1980", "cold", "2"],
        ["雁塔区", "1980", "flu", "3"],
        ["碑林区", "1975", "flu", "1"],
    ]);
    let report = check_dataset(&dataset, &params_k(3));
    assert_eq!(report.quasi_identifiers, vec!["district", "birth_year"]);
    let outcomes: Vec<Outcome> = report.rows.iter().map(|r| r.finding(Check::KAnonymity).unwrap().outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Pass, Outcome::Pass, Outcome::Pass, Outcome::Fail]);
    assert_eq!(report.rows[3].finding(Check::KAnonymity).unwrap().numbers["class_size"], 1.0);
}

#[test]
fn the_profile_list_of_quasi_identifiers_replaces_the_default() {
    let dataset = people(&[["雁塔区", "1980", "flu", "1"], ["雁塔区", "1975", "cold", "2"]]);
    let params = Params { quasi_identifiers: Param::new(Some(vec!["district".to_owned()]), "profile"), ..params_k(2) };
    let report = check_dataset(&dataset, &params);
    assert_eq!(report.quasi_identifiers, vec!["district"]);
    assert_eq!(report.outcome, Outcome::Pass);
    assert_eq!(check_dataset(&dataset, &params_k(2)).outcome, Outcome::Fail);
}

#[test]
fn a_class_where_everyone_has_the_same_diagnosis_fails_l_diversity() {
    let dataset = people(&[
        ["雁塔区", "1980", "flu", "1"],
        ["雁塔区", "1980", "flu", "2"],
        ["碑林区", "1975", "flu", "1"],
        ["碑林区", "1975", "cold", "1"],
    ]);
    let report = check_dataset(&dataset, &params_k(2));
    let l = |r: usize| report.rows[r].finding(Check::LDiversity).unwrap().outcome;
    assert_eq!([l(0), l(1), l(2), l(3)], [Outcome::Fail, Outcome::Fail, Outcome::Pass, Outcome::Pass]);
    assert_eq!(report.rows[0].finding(Check::LDiversity).unwrap().note.as_deref(), Some("diagnosis"));
}

// Raw-data leakage.

fn raw() -> RawTable {
    RawTable {
        fields: keys(&["name", "id_number", "district", "diagnosis"]),
        sensitive: vec![true, true, false, true],
        rows: vec![
            keys(&["张伟", "61010319800101123X", "雁塔区", "flu"]),
            keys(&["李娜", "610104197505052345", "碑林区", "cold"]),
        ],
    }
}

#[test]
fn a_report_quoting_a_raw_id_number_fails_and_goes_to_review_wf_26_zjk_21() {
    let index = LeakageIndex::new(b"grant-key", &raw(), &Params::default()).unwrap();
    let text = "客流分析报告：样本 61010319800101123x（已核验），结论见下。";
    let report = scan_file(&index, ArtefactKind::Report, tokens(text));
    assert_eq!(report.outcome, Outcome::Fail);
    let hit = report.finding(Check::RawValue).unwrap();
    assert_eq!((hit.rule.as_str(), hit.note.as_deref()), ("WF-26, ZJK-21", Some("a value of the raw field id_number")));
    assert!(report.finding(Check::HumanReview).is_some());
}

#[test]
fn a_clean_model_file_still_goes_to_human_review_and_a_clean_table_passes_wf_26() {
    let index = LeakageIndex::new(b"grant-key", &raw(), &Params::default()).unwrap();
    let weights = "layer1 0.25 0.75 bias -0.1 雁塔区";
    assert_eq!(scan_file(&index, ArtefactKind::Model, tokens(weights)).outcome, Outcome::Review);
    assert_eq!(scan_file(&index, ArtefactKind::Table, tokens(weights)).outcome, Outcome::Pass);
}

#[test]
fn the_leakage_index_holds_keyed_hashes_of_sensitive_values_and_skips_values_too_short_to_mean_anything() {
    let index = LeakageIndex::new(b"grant-key", &raw(), &Params::default()).unwrap();
    // "flu" (3 characters) and the names (2) are below leak_min_chars = 4; the ID numbers and
    // "cold" are indexed; the district is not sensitive.
    assert_eq!(index.len(), 3);
    assert_eq!(index.matches(" 610104197505052345 "), Some("id_number"));
    assert_eq!(index.matches("COLD"), Some("diagnosis"));
    assert_eq!((index.matches("flu"), index.matches("雁塔区")), (None, None));
    assert!(!format!("{index:?}").contains("6101"), "the index prints no value");
}

#[test]
fn a_dataset_row_equal_to_a_raw_row_fails_and_a_row_with_a_derived_field_is_not_compared_wf_26_zjk_21() {
    let params = Params::default();
    let index = LeakageIndex::new(b"grant-key", &raw(), &params).unwrap();
    let copied = Dataset {
        fields: vec![FieldSpec::new("district", FieldClass::Other), FieldSpec::new("diagnosis", FieldClass::Sensitive)],
        rows: vec![keys(&["雁塔区", "flu"]), keys(&["雁塔区", "cold"])],
    };
    let rows = scan_dataset(&index, &raw(), &copied);
    assert_eq!(rows[0].finding(Check::RawRow).unwrap().outcome, Outcome::Fail);
    assert_eq!(rows[1].finding(Check::RawRow).unwrap().outcome, Outcome::Pass);

    let mut derived = copied.clone();
    derived.fields[1] = FieldSpec::new("diagnosis_group", FieldClass::Sensitive).derived();
    assert_eq!(scan_dataset(&index, &raw(), &derived)[0].finding(Check::RawRow), None);

    let with_ids = Dataset {
        fields: vec![FieldSpec::new("ref", FieldClass::Other).derived()],
        rows: vec![keys(&["610104197505052345"]), keys(&["A-17"])],
    };
    let rows = scan_dataset(&index, &raw(), &with_ids);
    assert_eq!(rows[0].outcome, Outcome::Fail);
    assert_eq!(rows[1].outcome, Outcome::Pass);
    let report = check_dataset(&with_ids, &Params { k_anonymity: Param::new(1, "test"), ..params }).with_leakage(rows);
    assert_eq!(report.outcome, Outcome::Fail);
}

// Determinism and construction.

#[test]
fn the_same_artefact_always_gets_the_same_results() {
    let rows: Vec<([&str; 2], f64)> = (0..500)
        .map(|i| ([["a", "b", "c", "d"][i % 4], ["x", "y", "z"][i * 7 % 3]], ((i * 37) % 101) as f64))
        .collect();
    let mut table = Table::from_rows(Statistic::Sum, None, keys(&["r", "c"]), rows.iter().cloned());
    table.margins = true;
    let once = serde_json::to_string(&check_table(&table, &Params::default(), &[])).unwrap();
    let again =
        Table { margins: true, ..Table::from_rows(Statistic::Sum, None, keys(&["r", "c"]), rows.iter().cloned()) };
    assert_eq!(once, serde_json::to_string(&check_table(&again, &Params::default(), &[])).unwrap());

    let dataset =
        people(&[["雁塔区", "1980", "flu", "1"], ["碑林区", "1975", "cold", "2"], ["雁塔区", "1980", "cold", "3"]]);
    let a = serde_json::to_string(&check_dataset(&dataset, &params_k(2))).unwrap();
    assert_eq!(a, serde_json::to_string(&check_dataset(&dataset, &params_k(2))).unwrap());
}

#[test]
fn a_table_built_from_rows_has_every_combination_of_the_keys_seen_empty_cells_included() {
    let rows = [(["b", "x"], 1.0), (["a", "y"], 2.0), (["a", "y"], 3.0)];
    let table = Table::from_rows(Statistic::Sum, None, keys(&["r", "c"]), rows);
    let cells: Vec<(Vec<String>, u64, Vec<f64>)> =
        table.cells.iter().map(|c| (c.keys.clone(), c.count, c.contributions.clone())).collect();
    assert_eq!(
        cells,
        vec![
            (keys(&["a", "x"]), 0, vec![]),
            (keys(&["a", "y"]), 2, vec![2.0, 3.0]),
            (keys(&["b", "x"]), 1, vec![1.0]),
            (keys(&["b", "y"]), 0, vec![]),
        ]
    );
}
