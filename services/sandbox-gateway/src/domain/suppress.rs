//! Small-group suppression (WF-26 via the profile's minimum group size; ZJK-21).
//!
//! Every group of an aggregate result arrives with its matching row count `n` and its row count
//! before the caller's `WHERE`, `total` (see [`crate::check`]). A group is suppressed when
//!
//! * `n < k` — it describes fewer than `k` people or entities (primary suppression);
//! * `0 < total − n < k`, where `total` counts the group with the whole `WHERE` or one of its
//!   `AND` terms left out — the rows that condition removes are fewer than `k`, so the
//!   difference between this query and the one without it would single them out (complement
//!   suppression, against differencing two overlapping queries). Differencing through
//!   conditions that are not `AND` terms (an `OR`, or two unrelated filters) is not caught here;
//!   the audit log keeps every query for supervision;
//!
//! and, for grouped results, when the suppressed groups could be derived from a total (one
//! suppressed group, or suppressed groups holding fewer than `k` rows between them), the
//! smallest remaining groups are suppressed too until they cannot (secondary suppression).

/// One group of a result: its matching row count, and its row counts with the whole `WHERE`
/// left out (`total`) and with each of its conjuncts left out in turn (`without`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub n: u64,
    pub total: u64,
    pub without: Vec<u64>,
}

impl Group {
    /// Whether some part of the condition removes between 1 and `min - 1` rows of this group.
    fn singles_out(&self, min: u64) -> bool {
        std::iter::once(self.total).chain(self.without.iter().copied()).any(|t| {
            let left_out = t.saturating_sub(self.n);
            left_out > 0 && left_out < min
        })
    }
}

/// Which groups to drop, by position; `min` is the grant's minimum group size.
pub fn suppressed(groups: &[Group], min: u64, grouped: bool) -> Vec<bool> {
    suppressed_with(groups, min, grouped, &[])
}

/// As [`suppressed`], with the groups `forced` marks dropped as well (overlap control,
/// [`crate::domain::overlap`]): secondary suppression covers them like the others.
pub fn suppressed_with(groups: &[Group], min: u64, grouped: bool, forced: &[bool]) -> Vec<bool> {
    let mut out: Vec<bool> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| g.n < min || g.singles_out(min) || forced.get(i).copied().unwrap_or(false))
        .collect();
    if !grouped {
        return out;
    }
    loop {
        let hidden: Vec<&Group> = groups.iter().zip(&out).filter(|(_, s)| **s).map(|(g, _)| g).collect();
        let hidden_rows: u64 = hidden.iter().map(|g| g.n).sum();
        if hidden.is_empty() || (hidden.len() >= 2 && hidden_rows >= min) {
            return out;
        }
        let next = groups.iter().enumerate().filter(|(i, _)| !out[*i]).min_by_key(|(_, g)| g.n).map(|(i, _)| i);
        match next {
            Some(i) => out[i] = true,
            None => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u64) -> Group {
        Group { n, total: n, without: vec![] }
    }

    #[test]
    fn small_groups_go_wf_26() {
        assert_eq!(suppressed(&[g(3), g(10), g(40), g(12)], 10, true), vec![true, true, false, false]);
    }

    #[test]
    fn one_suppressed_group_takes_the_next_smallest_with_it() {
        assert_eq!(suppressed(&[g(30), g(2), g(25), g(11)], 10, true), vec![false, true, false, true]);
    }

    #[test]
    fn two_tiny_groups_are_not_enough_cover() {
        // 1 + 2 < 10: the pair could still be derived to within fewer than k rows.
        assert_eq!(suppressed(&[g(1), g(2), g(50), g(60)], 10, true), vec![true, true, true, false]);
    }

    #[test]
    fn a_where_that_leaves_out_a_few_rows_is_suppressed() {
        let groups = [Group { n: 49, total: 50, without: vec![] }, Group { n: 20, total: 40, without: vec![] }];
        assert_eq!(suppressed(&groups, 10, false), vec![true, false]);
        // The whole table is far bigger, but dropping one AND term brings back a single row.
        let g = Group { n: 39, total: 85, without: vec![85, 40] };
        assert_eq!(suppressed(&[g], 10, false), vec![true]);
    }

    #[test]
    fn nothing_small_nothing_suppressed() {
        assert_eq!(suppressed(&[g(10), g(11)], 10, true), vec![false, false]);
        assert!(suppressed(&[], 10, true).is_empty());
    }

    #[test]
    fn a_group_dropped_by_overlap_control_takes_the_next_smallest_with_it() {
        let forced = [false, false, true, false];
        assert_eq!(suppressed_with(&[g(30), g(20), g(25), g(40)], 10, true, &forced), vec![false, true, true, false]);
    }

    #[test]
    fn a_single_total_has_no_secondary() {
        assert_eq!(suppressed(&[g(3)], 10, false), vec![true]);
    }
}
