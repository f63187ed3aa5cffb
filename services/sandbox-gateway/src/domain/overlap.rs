//! Query-set overlap control (WF-26, ZJK-21: no output that can be reversed to personal data,
//! whatever the answers are combined with).
//!
//! Small-group and complement suppression (`suppress`) judge one answer on its own. Answers
//! combine: from `sum(A OR B)`, `sum(A)` and `sum(B)` inclusion–exclusion gives `sum(A AND B)`,
//! which may be three people the gateway would never describe directly (Denning's tracker). So
//! the gateway keeps, per grant, the set of workspace rows behind every group it released
//! (a compressed bitmap of row ids, [`RowSet`]) and releases a new group only when, against
//! every earlier released group `E` of the same grant and data, none of
//!
//! * `|N ∩ E|` (what the two have in common: the tracker `A`, `B` against `A OR B`),
//! * `|N \ E|` (what the new answer adds to an earlier one: differencing a superset), and
//! * `|E \ N|` (what it leaves out of an earlier one: differencing a subset)
//!
//! holds between 1 and `min − 1` rows, and, against the union of any two of the latest
//! [`PAIR_WINDOW`] released groups, `|N \ (E₁ ∪ E₂)|` and `|(E₁ ∪ E₂) \ N|` do not either (the
//! four-query tracker `P∪Q∪S`, `Q∪R`, `P∪R`, `R`, which passes every pairwise test).
//!
//! Not covered (docs/sandbox.md): combinations of three or more earlier answers beyond the
//! window's pairs, which an attacker needs at least four well-chosen answers for; answers made
//! over an earlier data version (row ids are per version); rows of unconditionally open
//! resources returned as they are (public anyway). Those need an audit of every linear
//! combination of the answers, or noise.

use roaring::RoaringTreemap;

/// Row ids: the relation's place in the workspace in the high 32 bits, its row id in the low.
pub type RowSet = RoaringTreemap;

/// How many of the latest released groups are also checked two at a time (their unions).
pub const PAIR_WINDOW: usize = 32;

/// A group the gateway released earlier under the grant: the audit record of its answer and
/// the rows behind it.
#[derive(Debug, Clone)]
pub struct Released {
    pub audit_seq: i64,
    pub rows: RowSet,
}

/// How a new group and an earlier answer combine into a small group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Combination {
    /// The rows both describe.
    Intersection,
    /// The rows the new group adds to the earlier one.
    NewBeyondEarlier,
    /// The rows the new group leaves out of the earlier one.
    EarlierBeyondNew,
    /// The rows the new group adds to two earlier ones together.
    NewBeyondPair,
    /// The rows two earlier ones together hold beyond the new group.
    PairBeyondNew,
}

/// Why a new group may not be released: the earlier answer(s) it combines with (by audit
/// sequence) and how. It never names rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Collision {
    pub earlier_audit_seqs: Vec<i64>,
    pub combination: Combination,
}

fn small(n: u64, min: u64) -> bool {
    n > 0 && n < min
}

/// What overlap control makes of a new group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The same rows as a group released before: it reveals nothing new (and is not stored again).
    Repeat,
    /// May be released.
    New,
    /// May not be released.
    Collides(Collision),
}

/// Judges `new` against the grant's released groups (see the module documentation).
pub fn judge(new: &RowSet, earlier: &[Released], min: u64) -> Judgement {
    let n = new.len();
    // Answers are often asked again (a dashboard's refresh): an identical set is found first.
    if earlier.iter().rev().any(|e| e.rows.len() == n && new.intersection_len(&e.rows) == n) {
        return Judgement::Repeat;
    }
    match collision(new, earlier, min) {
        Some(c) => Judgement::Collides(c),
        None => Judgement::New,
    }
}

/// The first earlier released group (or pair of the latest ones) with which `new` would single
/// out between 1 and `min − 1` rows; `None` when `new` may be released.
pub fn collision(new: &RowSet, earlier: &[Released], min: u64) -> Option<Collision> {
    let n = new.len();
    let mut shares = Vec::with_capacity(earlier.len());
    for e in earlier {
        let both = new.intersection_len(&e.rows);
        let combination = if small(both, min) {
            Some(Combination::Intersection)
        } else if small(n - both, min) {
            Some(Combination::NewBeyondEarlier)
        } else if small(e.rows.len() - both, min) {
            Some(Combination::EarlierBeyondNew)
        } else {
            None
        };
        if let Some(combination) = combination {
            return Some(Collision { earlier_audit_seqs: vec![e.audit_seq], combination });
        }
        shares.push(both);
    }
    // Pairs of the latest: |N ∩ (A ∪ B)| = |N ∩ A| + |N ∩ B| − |N ∩ A ∩ B| and
    // |A ∪ B| = |A| + |B| − |A ∩ B|, so no union is built. A pair one of which the new group does
    // not touch adds nothing the single tests did not see.
    let from = earlier.len().saturating_sub(PAIR_WINDOW);
    for i in from..earlier.len() {
        if shares[i] == 0 {
            continue;
        }
        let a = &earlier[i];
        let new_and_a = new & &a.rows;
        for (j, b) in earlier.iter().enumerate().skip(i + 1) {
            if shares[j] == 0 {
                continue;
            }
            let both = shares[i] + shares[j] - new_and_a.intersection_len(&b.rows);
            let union = a.rows.len() + b.rows.len() - a.rows.intersection_len(&b.rows);
            let combination = if small(n - both, min) {
                Some(Combination::NewBeyondPair)
            } else if small(union - both, min) {
                Some(Combination::PairBeyondNew)
            } else {
                None
            };
            if let Some(combination) = combination {
                return Some(Collision { earlier_audit_seqs: vec![a.audit_seq, b.audit_seq], combination });
            }
        }
    }
    None
}

/// A row set as stored (the portable roaring format).
pub fn encode(rows: &RowSet) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.serialized_size());
    // Writing into a Vec cannot fail.
    let _ = rows.serialize_into(&mut out);
    out
}

/// A stored row set.
pub fn decode(bytes: &[u8]) -> std::io::Result<RowSet> {
    RowSet::deserialize_from(bytes)
}

/// The row ids of one relation of a query (its place in the workspace is `slot`) into `set`.
pub fn add_rows(set: &mut RowSet, slot: u32, ids: impl IntoIterator<Item = Option<i32>>) {
    let high = u64::from(slot) << 32;
    let mut ids: Vec<u64> = ids.into_iter().flatten().map(|id| high | u64::from(id as u32)).collect();
    // A sequential scan aggregates a relation's rows in id order: appending sorted ids is much
    // faster than inserting one by one.
    if !ids.is_sorted() {
        ids.sort_unstable();
    }
    ids.dedup();
    if set.max().is_none_or(|max| ids.first().is_none_or(|first| *first > max)) {
        // Sorted, unique and above everything in the set: append cannot refuse them.
        let _ = set.append(ids);
    } else {
        set.extend(ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: impl IntoIterator<Item = u64>) -> RowSet {
        ids.into_iter().collect()
    }

    fn released(seq: i64, ids: impl IntoIterator<Item = u64>) -> Released {
        Released { audit_seq: seq, rows: set(ids) }
    }

    #[test]
    fn denning_tracker_a_or_b_then_a_then_b_is_caught_at_the_second_of_a_and_b_wf_26() {
        // A = 0..15, B = 12..30: A ∩ B = {12, 13, 14}, three people.
        let a_or_b = released(1, 0..30);
        let a = set(0..15);
        assert_eq!(collision(&a, std::slice::from_ref(&a_or_b), 10), None, "A adds nothing, leaves out 15");
        let history = [a_or_b, released(2, 0..15)];
        let b = set(12..30);
        assert_eq!(
            collision(&b, &history, 10),
            Some(Collision { earlier_audit_seqs: vec![2], combination: Combination::Intersection })
        );
    }

    #[test]
    fn differencing_a_superset_or_a_subset_is_caught_zjk_21() {
        let history = [released(7, 0..40)];
        let one_more = set(0..41);
        assert_eq!(collision(&one_more, &history, 10).map(|c| c.combination), Some(Combination::NewBeyondEarlier));
        let one_less = set(1..40);
        assert_eq!(collision(&one_less, &history, 10).map(|c| c.combination), Some(Combination::EarlierBeyondNew));
        let same = set(0..40);
        assert_eq!(collision(&same, &history, 10), None, "asking the same again reveals nothing new");
    }

    #[test]
    fn the_four_answer_tracker_is_caught_through_the_union_of_two() {
        // P, Q, R large and disjoint, S three rows: S = (P∪Q∪S) − (Q∪R) − (P∪R) + 2R.
        let (p, q, r, s) = (0..100, 100..200, 200..300, 300..303);
        let history =
            [released(1, q.clone().chain(r.clone())), released(2, p.clone().chain(r.clone())), released(3, r)];
        let new = set(p.chain(q).chain(s));
        let c = collision(&new, &history, 10).unwrap();
        assert_eq!((c.earlier_audit_seqs, c.combination), (vec![1, 2], Combination::NewBeyondPair));
    }

    #[test]
    fn an_answer_asked_again_is_a_repeat_and_reveals_nothing() {
        let history = [released(1, 0..40), released(2, 0..39)];
        assert_eq!(judge(&set(0..40), &history, 10), Judgement::Repeat);
        assert!(matches!(judge(&set(0..41), &history, 10), Judgement::Collides(_)));
        assert_eq!(judge(&set(100..200), &history, 10), Judgement::New);
    }

    #[test]
    fn unrelated_and_disjoint_answers_are_released() {
        let history = [released(1, 0..50), released(2, 50..100)];
        assert_eq!(collision(&set(100..150), &history, 10), None);
        assert_eq!(collision(&set(20..80), &history, 10), None, "30 and 30 in common, 20 and 20 beyond");
        assert_eq!(collision(&set(0..100), &history, 10), None, "the union of both: nothing small");
    }

    #[test]
    fn relations_of_a_workspace_do_not_share_row_ids_and_sets_survive_storage() {
        let mut rows = RowSet::new();
        add_rows(&mut rows, 0, [Some(1), Some(2), None]);
        add_rows(&mut rows, 1, [Some(1)]);
        add_rows(&mut rows, 0, [Some(9), Some(3), Some(2)]);
        assert_eq!(rows.len(), 5, "a self-join's second side adds what the first lacked");
        assert_eq!(decode(&encode(&rows)).unwrap(), rows);
    }
}
