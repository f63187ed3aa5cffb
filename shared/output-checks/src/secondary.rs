//! Secondary disclosure: what the rest of a release, or an earlier one, gives away about a cell
//! that is suppressed or small on its own (rule WF-26: no output from which the data can be
//! restored).

use std::collections::{HashMap, VecDeque};

use crate::outcome::{Check, Finding, Outcome};
use crate::params::Param;
use crate::table::{Cell, MarginKeys, ReleasedCell};

/// A margin that, with the released cells and the margins already used, pins a suppressed cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation {
    pub margin: MarginKeys,
    /// The suppressed cells still unknown in that margin when it was used: always 1.
    pub unknowns: usize,
    pub cell_keys: Vec<String>,
}

/// The margins that let a suppressed cell be derived, when every margin of the table is released
/// (the total along each dimension for each combination of the other keys, and the grand total).
///
/// A margin with exactly one unknown cell gives that cell away (total minus the others); the
/// cell then counts as known, which may leave another margin with one unknown, and so on to the
/// fixed point. Cells suppressed in a pattern where every margin holds two or more unknowns
/// (the classic 2×2 rectangle) are not derivable exactly and are not flagged.
pub fn derivable_by_margins(cells: &[Cell], suppressed: &[bool]) -> Vec<Derivation> {
    let dims = cells.first().map_or(0, |c| c.keys.len());
    // Margin ids in order of first appearance, so that the result does not depend on hashing.
    let mut margin_ids: HashMap<MarginKeys, usize> = HashMap::new();
    let mut margins: Vec<MarginKeys> = Vec::new();
    let mut cells_of: Vec<Vec<usize>> = Vec::new();
    let mut margins_of: Vec<Vec<usize>> = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let mut mine = Vec::with_capacity(dims + 1);
        let keyed = (0..dims)
            .map(|d| cell.keys.iter().enumerate().map(|(j, k)| (j != d).then(|| k.clone())).collect::<MarginKeys>());
        for margin in keyed.chain(std::iter::once(vec![None; dims])) {
            let id = *margin_ids.entry(margin.clone()).or_insert_with(|| {
                margins.push(margin);
                cells_of.push(Vec::new());
                margins.len() - 1
            });
            cells_of[id].push(i);
            mine.push(id);
        }
        margins_of.push(mine);
    }

    let mut unknown: Vec<bool> = (0..cells.len()).map(|i| suppressed.get(i).copied().unwrap_or(false)).collect();
    let mut unknowns: Vec<usize> = cells_of.iter().map(|cs| cs.iter().filter(|&&c| unknown[c]).count()).collect();
    // The narrowest margins first, so that a finding names a row or column before the grand total.
    let mut first: Vec<usize> = (0..margins.len()).filter(|&m| unknowns[m] == 1).collect();
    first.sort_by_key(|&m| (margins[m].iter().filter(|k| k.is_none()).count(), m));
    let mut queue: VecDeque<usize> = first.into();
    let mut derived = Vec::new();
    while let Some(m) = queue.pop_front() {
        if unknowns[m] != 1 {
            continue;
        }
        let Some(&cell) = cells_of[m].iter().find(|&&c| unknown[c]) else { continue };
        unknown[cell] = false;
        derived.push(Derivation { margin: margins[m].clone(), unknowns: 1, cell_keys: cells[cell].keys.clone() });
        for &other in &margins_of[cell] {
            unknowns[other] -= 1;
            if unknowns[other] == 1 {
                queue.push_back(other);
            }
        }
    }
    derived
}

/// Differencing across releases: a cell whose units differ from those of a cell released earlier
/// under the same grant by 1 to threshold - 1 units fails, since subtracting the two releases
/// describes that small group. The first such earlier cell (in the given order) is named.
pub fn differencing(members: &[u64], earlier: &[ReleasedCell], threshold: &Param<u64>) -> Option<Finding> {
    let t = threshold.value;
    earlier.iter().find_map(|released| {
        let d = symmetric_difference_below(members, &released.members, t)?;
        (d > 0).then(|| {
            Finding::new(Check::Differencing, Outcome::Fail, &threshold.rule)
                .number("differing_units", d as f64)
                .number("threshold", t as f64)
                .note(format!("differs from cell {} of release {}", released.keys.join(" × "), released.release))
        })
    })
}

/// |a △ b| for sorted sets when it is below `limit`, else `None` (stops counting at the limit).
fn symmetric_difference_below(a: &[u64], b: &[u64], limit: u64) -> Option<u64> {
    if (a.len() as u64).abs_diff(b.len() as u64) >= limit {
        return None;
    }
    let (mut i, mut j, mut d) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => {
                d += 1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                d += 1;
                j += 1;
            }
        }
        if d >= limit {
            return None;
        }
    }
    d += (a.len() - i + b.len() - j) as u64;
    (d < limit).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(suppressed: &[(usize, usize)], rows: usize, cols: usize) -> (Vec<Cell>, Vec<bool>) {
        let mut cells = Vec::new();
        let mut flags = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                cells.push(Cell::count(vec![format!("r{r}"), format!("c{c}")], 20));
                flags.push(suppressed.contains(&(r, c)));
            }
        }
        (cells, flags)
    }

    #[test]
    fn a_lone_suppressed_cell_is_derived_from_its_column_total_wf_26() {
        let (cells, flags) = grid(&[(1, 2)], 3, 3);
        let d = derivable_by_margins(&cells, &flags);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].cell_keys, vec!["r1", "c2"]);
        assert_eq!(d[0].margin, vec![None, Some("c2".to_owned())]);
    }

    #[test]
    fn a_suppressed_rectangle_is_not_derivable_wf_26() {
        let (cells, flags) = grid(&[(0, 0), (0, 1), (1, 0), (1, 1)], 3, 3);
        assert!(derivable_by_margins(&cells, &flags).is_empty());
    }

    #[test]
    fn derivations_chain_through_margins_wf_26() {
        // (0,0) and (0,1) share row 0; (0,1) is alone in column 1, then (0,0) is alone in row 0.
        let (cells, flags) = grid(&[(0, 0), (0, 1), (1, 0)], 3, 3);
        let d = derivable_by_margins(&cells, &flags);
        assert_eq!(d.len(), 3, "{d:?}");
    }

    #[test]
    fn symmetric_difference_stops_at_the_limit() {
        assert_eq!(symmetric_difference_below(&[1, 2, 3], &[1, 2, 3, 4], 10), Some(1));
        assert_eq!(symmetric_difference_below(&[1, 2, 3], &[4, 5, 6], 5), None);
        assert_eq!(symmetric_difference_below(&[1, 2, 3], &[2, 3, 4], 3), Some(2));
        assert_eq!(symmetric_difference_below(&[], &[], 3), Some(0));
    }
}
