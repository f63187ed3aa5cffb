//! Quality objections (异议): reportable, traceable, accountable, handled within the profile's
//! deadline in working days (LZ-5). open → accepted → rectified, or open|accepted → rejected.

use chrono::NaiveDate;
use platform_calendar::{Calendar, Deadline};

use super::text_enum;

text_enum!(
    ObjectionState { Open => "open", Accepted => "accepted", Rectified => "rectified", Rejected => "rejected" }
);

text_enum!(
    /// What the handler does with an objection.
    ObjectionAction { Accept => "accept", Rectify => "rectify", Reject => "reject" }
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStep {
    pub from: ObjectionState,
    pub action: ObjectionAction,
    pub allowed_in: Vec<ObjectionState>,
}

/// The state after `action`, or why not.
pub fn step(from: ObjectionState, action: ObjectionAction) -> Result<ObjectionState, InvalidStep> {
    use ObjectionState::*;
    let (allowed_in, to): (&[ObjectionState], ObjectionState) = match action {
        ObjectionAction::Accept => (&[Open], Accepted),
        ObjectionAction::Rectify => (&[Accepted], Rectified),
        ObjectionAction::Reject => (&[Open, Accepted], Rejected),
    };
    if allowed_in.contains(&from) { Ok(to) } else { Err(InvalidStep { from, action, allowed_in: allowed_in.to_vec() }) }
}

/// The due date of an objection filed on `filed` (a China date): `working_days` later on the
/// official calendar (LZ-5: 15 working days).
pub fn due_date(calendar: &Calendar, filed: NaiveDate, working_days: u32) -> Deadline {
    calendar.add_working_days(filed, working_days)
}

/// Whether an objection in `state` due on `due` is overdue on `today`.
pub fn is_overdue(state: ObjectionState, due: NaiveDate, today: NaiveDate) -> bool {
    matches!(state, ObjectionState::Open | ObjectionState::Accepted) && today > due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn an_objection_is_due_15_working_days_later_lz_5() {
        // Filed Monday 2026-09-21: Sep 25–27 (Mid-Autumn) and Oct 1–7 are off, Oct 10 (Saturday)
        // is worked. Working days: Sep 22,23,24,28,29,30 (6), Oct 8,9,10 (9), 12–16 (14), 19 (15).
        let due = due_date(Calendar::official(), d("2026-09-21"), 15);
        assert_eq!(due.date, d("2026-10-19"));
        assert!(!due.provisional);
    }

    #[test]
    fn steps() {
        use ObjectionAction::*;
        use ObjectionState::*;
        assert_eq!(step(Open, Accept), Ok(Accepted));
        assert_eq!(step(Accepted, Rectify), Ok(Rectified));
        assert_eq!(step(Open, Reject), Ok(Rejected));
        assert_eq!(step(Accepted, Reject), Ok(Rejected));
        assert_eq!(step(Open, Rectify).unwrap_err().allowed_in, vec![Accepted]);
        assert!(step(Rectified, Reject).is_err());
    }

    #[test]
    fn only_pending_objections_are_overdue() {
        assert!(is_overdue(ObjectionState::Open, d("2026-03-12"), d("2026-03-13")));
        assert!(!is_overdue(ObjectionState::Open, d("2026-03-12"), d("2026-03-12")), "due the whole day");
        assert!(!is_overdue(ObjectionState::Rectified, d("2026-03-12"), d("2026-04-01")));
    }
}
