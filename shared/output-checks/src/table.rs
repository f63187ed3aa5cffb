//! Tables: frequency (count) and magnitude (sum, mean) tables and the unsafe statistics, checked
//! cell by cell; then the secondary checks of the whole release (margins, earlier releases).
//!
//! The cell rules replicate ACRO 1.0.2's definitions exactly (`sdcchecks.py`), so that the
//! differential test against it is exact: threshold `count < t`; zeros `count == 0` in frequency
//! tables; nk `top_n / total >= k` (an all-zero or empty cell passes: the share is undefined);
//! p-ratio `(total - x1 - x2) / x1 < p` (an all-zero cell fails: the total tells each
//! contribution; an empty cell passes). One difference, on purpose: ACRO evaluates no dominance
//! at all in a table with a negative contribution anywhere and only flags the cells that hold
//! one; here those cells go to review and every other cell is still evaluated.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::outcome::{Check, Finding, ItemResult, Outcome};
use crate::params::{Params, rules};
use crate::secondary;

/// What the cells of a table report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// A frequency table: the number of units per cell.
    Count,
    Sum,
    Mean,
    Min,
    Max,
    Mode,
    Median,
    /// The given percentile (1..=99).
    Percentile(u8),
}

impl Statistic {
    /// Sum and mean: totals of contributions, checked for dominance.
    pub fn is_magnitude(self) -> bool {
        matches!(self, Self::Sum | Self::Mean)
    }

    /// Min, max, mode, median, percentiles: each reports one unit's own value.
    pub fn is_unsafe(self) -> bool {
        matches!(self, Self::Min | Self::Max | Self::Mode | Self::Median | Self::Percentile(_))
    }
}

/// The field a statistic is computed over, with the catalog's sensitivity (personal information,
/// trade secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableField {
    pub name: String,
    pub sensitive: bool,
}

/// One cell: its group keys (one per dimension), the number of units behind it, each unit's
/// contribution (magnitude tables) and, where the gateway knows them, the ids of its units
/// (sorted, for differencing against earlier releases).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub keys: Vec<String>,
    pub count: u64,
    #[serde(default)]
    pub contributions: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<u64>>,
}

impl Cell {
    /// A frequency table's cell.
    pub fn count(keys: Vec<String>, count: u64) -> Self {
        Self { keys, count, contributions: Vec::new(), members: None }
    }

    /// A magnitude table's cell: one contribution per unit.
    pub fn contributions(keys: Vec<String>, contributions: Vec<f64>) -> Self {
        Self { keys, count: contributions.len() as u64, contributions, members: None }
    }

    /// The ids of the units behind the cell.
    pub fn with_members(mut self, mut members: Vec<u64>) -> Self {
        members.sort_unstable();
        members.dedup();
        self.members = Some(members);
        self
    }
}

/// A table output: every cell of its grid (empty ones included), and whether its margins are
/// released with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub statistic: Statistic,
    /// The field aggregated; `None` for a frequency table.
    #[serde(default)]
    pub field: Option<TableField>,
    /// The dimension (grouping field) names, one per key of each cell.
    pub dimensions: Vec<String>,
    pub cells: Vec<Cell>,
    /// Released with every margin: the total along each dimension for each combination of the
    /// other keys, and the grand total.
    #[serde(default)]
    pub margins: bool,
}

impl Table {
    /// Builds a table from unit rows (`keys` one per dimension, the unit's value), as a cross
    /// tabulation does: every combination of the keys seen in each dimension is a cell (empty
    /// ones included), dimensions' keys sorted, cells in row-major order; a magnitude or unsafe
    /// statistic keeps each row's value as a contribution, in row order.
    pub fn from_rows<'a, K>(
        statistic: Statistic,
        field: Option<TableField>,
        dimensions: Vec<String>,
        rows: impl IntoIterator<Item = (K, f64)>,
    ) -> Self
    where
        K: AsRef<[&'a str]>,
    {
        let dims = dimensions.len();
        let mut interned: Vec<HashMap<&'a str, usize>> = vec![HashMap::new(); dims];
        let mut groups: HashMap<Vec<usize>, (u64, Vec<f64>)> = HashMap::new();
        let keep_values = statistic != Statistic::Count;
        let mut ids: Vec<usize> = Vec::with_capacity(dims);
        for (keys, value) in rows {
            let keys = keys.as_ref();
            ids.clear();
            ids.extend((0..dims).map(|d| {
                let key = keys.get(d).copied().unwrap_or("");
                let seen = interned[d].len();
                *interned[d].entry(key).or_insert(seen)
            }));
            // A new key vector is allocated only for a group not seen yet.
            let group = match groups.get_mut(ids.as_slice()) {
                Some(group) => group,
                None => groups.entry(ids.clone()).or_default(),
            };
            group.0 += 1;
            if keep_values {
                group.1.push(value);
            }
        }
        // Each dimension's keys sorted, with their interned ids.
        let sorted: Vec<Vec<(&str, usize)>> = interned
            .iter()
            .map(|m| {
                let mut keys: Vec<(&str, usize)> = m.iter().map(|(k, id)| (*k, *id)).collect();
                keys.sort_unstable();
                keys
            })
            .collect();
        let total: usize = sorted.iter().map(Vec::len).product();
        let mut cells = Vec::with_capacity(if groups.is_empty() { 0 } else { total });
        if !groups.is_empty() {
            let mut at = vec![0usize; dims];
            loop {
                let ids: Vec<usize> = (0..dims).map(|d| sorted[d][at[d]].1).collect();
                let keys: Vec<String> = (0..dims).map(|d| sorted[d][at[d]].0.to_owned()).collect();
                let (count, contributions) = groups.remove(&ids).unwrap_or_default();
                cells.push(Cell { keys, count, contributions, members: None });
                // Odometer over the dimensions, last one fastest.
                let mut d = dims;
                loop {
                    if d == 0 {
                        return Self { statistic, field, dimensions, cells, margins: false };
                    }
                    d -= 1;
                    at[d] += 1;
                    if at[d] < sorted[d].len() {
                        break;
                    }
                    at[d] = 0;
                }
            }
        }
        Self { statistic, field, dimensions, cells, margins: false }
    }
}

/// A cell released earlier under the same grant, by the ids of its units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedCell {
    /// The earlier release (an output request or audit sequence), named in findings.
    pub release: String,
    pub keys: Vec<String>,
    /// Sorted unit ids.
    pub members: Vec<u64>,
}

/// A margin: the keys it fixes, `None` where it totals over the dimension (all `None`: the grand
/// total).
pub type MarginKeys = Vec<Option<String>>;

/// The verdict on a table: per cell (in input order), per margin that lets a suppressed cell be
/// derived, and overall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    pub outcome: Outcome,
    pub cells: Vec<ItemResult<Vec<String>>>,
    pub margins: Vec<ItemResult<MarginKeys>>,
}

/// Every check of a table output: the cell rules, then the margins (when released) against the
/// cells that fail, then each cell against `earlier` releases under the same grant.
pub fn check_table(table: &Table, params: &Params, earlier: &[ReleasedCell]) -> TableReport {
    let mut cells: Vec<ItemResult<Vec<String>>> =
        table.cells.iter().map(|cell| ItemResult::new(cell.keys.clone(), check_cell(table, cell, params))).collect();

    let mut margins = Vec::new();
    if table.margins {
        let suppressed: Vec<bool> = cells.iter().map(|c| c.outcome == Outcome::Fail).collect();
        for derivation in secondary::derivable_by_margins(&table.cells, &suppressed) {
            let finding = Finding::new(Check::MarginDerivation, Outcome::Fail, &params.threshold.rule)
                .number("suppressed_cells_in_margin", derivation.unknowns as f64)
                .note(format!("derives the suppressed cell {}", derivation.cell_keys.join(" × ")));
            margins.push(ItemResult::new(derivation.margin, vec![finding]));
        }
    }

    if !earlier.is_empty() {
        for (cell, result) in table.cells.iter().zip(cells.iter_mut()) {
            if let Some(members) = &cell.members
                && let Some(finding) = secondary::differencing(members, earlier, &params.threshold)
            {
                result.push(finding);
            }
        }
    }

    let outcome =
        cells.iter().map(|c| c.outcome).chain(margins.iter().map(|m| m.outcome)).max().unwrap_or(Outcome::Pass);
    TableReport { outcome, cells, margins }
}

/// The rules that apply to one cell on its own, by the table's statistic.
pub fn check_cell(table: &Table, cell: &Cell, params: &Params) -> Vec<Finding> {
    let mut findings = vec![threshold(cell.count, params)];
    match table.statistic {
        Statistic::Count => findings.push(zeros(cell.count, params)),
        Statistic::Sum | Statistic::Mean => findings.extend(dominance(&cell.contributions, params)),
        statistic => findings.push(unsafe_statistic(statistic, table.field.as_ref())),
    }
    findings
}

/// Threshold: fewer units than the threshold fails (`count < t`).
pub fn threshold(count: u64, params: &Params) -> Finding {
    let t = params.threshold.value;
    Finding::unless(Check::Threshold, count < t, Outcome::Fail, &params.threshold.rule)
        .number("count", count as f64)
        .number("threshold", t as f64)
}

/// Zeros: an empty cell of a frequency table fails unless the profile says zeros are not disclosive.
pub fn zeros(count: u64, params: &Params) -> Finding {
    Finding::unless(
        Check::Zeros,
        count == 0 && params.zeros_disclosive.value,
        Outcome::Fail,
        &params.zeros_disclosive.rule,
    )
    .number("count", count as f64)
}

/// Min, max, mode, median and percentiles report one unit's own value: of a sensitive field they
/// fail, of any other field a person reviews them.
pub fn unsafe_statistic(statistic: Statistic, field: Option<&TableField>) -> Finding {
    let sensitive = field.is_some_and(|f| f.sensitive);
    let outcome = if sensitive { Outcome::Fail } else { Outcome::Review };
    let finding = Finding::new(Check::UnsafeStatistic, outcome, rules::PRODUCT_REVIEW);
    let finding = match statistic {
        Statistic::Percentile(p) => finding.number("percentile", f64::from(p)),
        _ => finding,
    };
    finding.note(format!(
        "{statistic:?} of {} field {}",
        if sensitive { "the sensitive" } else { "the" },
        field.map_or("(none)", |f| f.name.as_str())
    ))
}

/// nk-dominance and the p-ratio rule over one cell's contributions.
pub fn dominance(contributions: &[f64], params: &Params) -> [Finding; 2] {
    let nk_rule = &params.nk.rule;
    let p_rule = &params.p_ratio.rule;
    let unusable = contributions.iter().filter(|x| !x.is_finite()).count();
    let negative = contributions.iter().filter(|x| **x < 0.0).count();
    if unusable > 0 || negative > 0 {
        let note = if unusable > 0 { "a contribution is missing or not finite" } else { "a contribution is negative" };
        let undefined = |check, rule: &str| {
            Finding::new(check, Outcome::Review, rule)
                .number("negative_contributions", negative as f64)
                .number("non_finite_contributions", unusable as f64)
                .note(format!("dominance is not defined: {note} ({})", rules::NEGATIVE))
        };
        return [undefined(Check::NkDominance, nk_rule), undefined(Check::PRatio, p_rule)];
    }

    let n = params.nk.value.n;
    let k = params.nk.value.k;
    let p = params.p_ratio.value;
    let largest = largest(contributions, n.max(2));
    // Summed in the order ACRO (pandas) does: the total in input order, the n largest descending.
    let total: f64 = contributions.iter().sum();
    let top_n: f64 = largest.iter().take(n).sum();
    let top1 = largest.first().copied().unwrap_or(0.0);
    let top2: f64 = largest.iter().take(2).sum();

    // An empty or all-zero cell has no share: it passes nk (as ACRO, whose 0/0 is NaN).
    let share = top_n / total;
    let nk = Finding::unless(Check::NkDominance, share >= k, Outcome::Fail, nk_rule)
        .number("n", n as f64)
        .number("k", k)
        .number("top_n_sum", top_n)
        .number("total", total);
    let nk = if share.is_finite() { nk.number("top_n_share", share) } else { nk };

    // (total - x1 - x2) / x1; when x1 is 0 every contribution is 0 and the ratio is the bare
    // remainder, 0, which fails: a zero total tells each contribution. An empty cell passes.
    let remainder = total - top2;
    let ratio = if contributions.is_empty() {
        1.0
    } else if top1 == 0.0 {
        remainder
    } else {
        remainder / top1
    };
    let pr = Finding::unless(Check::PRatio, ratio < p, Outcome::Fail, p_rule)
        .number("p", p)
        .number("largest", top1)
        .number("remainder", remainder)
        .number("ratio", ratio);
    [nk, pr]
}

/// The `n` largest values, descending (fewer when there are fewer).
fn largest(values: &[f64], n: usize) -> Vec<f64> {
    let mut top: Vec<f64> = Vec::with_capacity(n + 1);
    for &v in values {
        if top.len() == n && top.last().is_some_and(|last| v <= *last) {
            continue;
        }
        let at = top.partition_point(|x| *x >= v);
        top.insert(at, v);
        top.truncate(n);
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_keeps_the_n_largest_descending_with_ties() {
        assert_eq!(largest(&[3.0, 9.0, 1.0, 9.0, 4.0], 2), vec![9.0, 9.0]);
        assert_eq!(largest(&[3.0, 9.0, 1.0, 4.0], 3), vec![9.0, 4.0, 3.0]);
        assert_eq!(largest(&[5.0], 2), vec![5.0]);
        assert!(largest(&[], 2).is_empty());
    }
}
