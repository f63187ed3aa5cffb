//! Authorized operation agreements (授权运营协议, SX-22): the term within the profile's maximum
//! (SX-22, WF-12: 5 years in principle; NS-15: 3 years; LZ-6: a fixed 2 years), revenue sharing
//! only with the finance department's opinion (WF-15), scope limited to authorizable resources
//! and, in Zhangjiakou, never a field with personal information or trade secrets (ZJK-15),
//! renewal only inside the profile's window (NS-15; ZJK-17 for secondary authorizations), or by
//! decision after expiry (LZ-6); `term_end` is the last day in force; and the life cycle
//! draft → signed → active ⇄ suspended → terminated | expired.

use chrono::NaiveDate;
use platform_calendar::add_months;
use platform_policy::{Profile, Ruled};
use serde::{Deserialize, Serialize};

/// A term outside what the profile allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermRefused {
    pub reason: String,
    pub rule: String,
}

/// The last day in force of a term of `months` from `start`. Agreements are written 自…起至…止
/// with an inclusive last day, so a term of N years from D is in force through D + N years − 1
/// day, and `term_end` everywhere is that last day; the sweeps end a term the day after it.
pub fn term_last_day(start: NaiveDate, months: u32) -> NaiveDate {
    let next = add_months(start, months);
    next.pred_opt().unwrap_or(next)
}

/// The first day of the last `months` of a term whose last day in force is `end` (the window
/// 期限届满前N个月内: from the same date N months before the day the term is over).
pub fn window_opens(end: NaiveDate, months: u32) -> NaiveDate {
    let over = end.succ_opt().unwrap_or(end);
    over.checked_sub_months(chrono::Months::new(months)).unwrap_or(end)
}

/// `start..=end` within `max` months (its last day at most [`term_last_day`]), or exactly that
/// long where `fixed`; `what` names the term in the refusal.
fn check_length(
    start: NaiveDate,
    end: NaiveDate,
    max: &Ruled<u32>,
    fixed: bool,
    what: &str,
) -> Result<(), TermRefused> {
    let last = term_last_day(start, max.value);
    if fixed && end != last {
        return Err(TermRefused {
            reason: format!("{what} is fixed at {} months: its last day is {last}", max.value),
            rule: max.rule.clone(),
        });
    }
    if end > last {
        return Err(TermRefused {
            reason: format!("{what} lasts at most {} months: its last day is {last} at the latest", max.value),
            rule: max.rule.clone(),
        });
    }
    Ok(())
}

/// Checks `start..=end` (`end` the last day in force) against the profile: end after start; at
/// most the longest term, or exactly the fixed term where the profile fixes it (LZ-6).
pub fn check_term(start: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), TermRefused> {
    if end <= start {
        return Err(TermRefused { reason: "the term must end after it starts".into(), rule: "SX-22".into() });
    }
    let Some(max) = profile.values.max_agreement_term_months.as_ref() else { return Ok(()) };
    let fixed = profile.values.fixed_agreement_term.as_ref().is_some_and(|f| f.value);
    check_length(start, end, max, fixed, "the term")
}

/// A secondary authorization's term against the profile's secondary maximum (ZJK-17: 3 years),
/// on the same convention as [`check_term`].
pub fn check_secondary_term(start: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), TermRefused> {
    let Some(max) = profile.values.secondary_max_term_months.as_ref() else { return Ok(()) };
    check_length(start, end, max, false, "a secondary authorization")
}

/// Whether `today` lies inside `window` before the term whose last day is `end`. No window puts
/// no limit on when renewal is asked for.
fn check_window(today: NaiveDate, end: NaiveDate, window: Option<&Ruled<u32>>) -> Result<(), TermRefused> {
    let Some(w) = window else { return Ok(()) };
    let opens = window_opens(end, w.value);
    if today < opens || today > end {
        return Err(TermRefused {
            reason: format!("renewal is asked for in the last {} months of the term: from {opens} to {end}", w.value),
            rule: w.rule.clone(),
        });
    }
    Ok(())
}

/// Whether the operator may apply now to renew its agreement whose last day is `end`: inside the
/// profile's window (NS-15: 6 months); where renewal is a decision after expiry on the operator's
/// evaluation (LZ-6, LZ-11), never by application.
pub fn check_renewal(today: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), TermRefused> {
    if let Some(r) = profile.values.renewal.as_ref().filter(|r| r.value == "decision_after_expiry") {
        return Err(TermRefused {
            reason: "renewal is decided after the term ends, on the operator's evaluation; it is not applied for"
                .into(),
            rule: r.rule.clone(),
        });
    }
    check_window(today, end, profile.values.renewal_window_months.as_ref())
}

/// Why a renewal decision is refused: the problem's slug and the refusal.
pub type DecisionRefused = (&'static str, TermRefused);

/// Whether the implementing institution may decide now on renewing an agreement whose last day in
/// force is `end`: only where the profile renews by decision after expiry (LZ-6: 期满后…决定是否续签),
/// and only once the term is over. Elsewhere renewal is applied for within the term (NS-15).
pub fn check_renewal_decision(today: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), DecisionRefused> {
    let renewal = profile.values.renewal.as_ref();
    match renewal.filter(|r| r.value == "decision_after_expiry") {
        Some(r) if today <= end => Err((
            "renewal-decided-after-expiry",
            TermRefused {
                reason: format!("renewal is decided after the term ends: it is in force through {end}"),
                rule: r.rule.clone(),
            },
        )),
        Some(_) => Ok(()),
        None => Err((
            "renewal-not-by-decision",
            TermRefused {
                reason: "here the operator applies for renewal during the term; nothing is decided after expiry".into(),
                rule: renewal.map(|r| r.rule.clone()).unwrap_or_else(|| platform_policy::PLATFORM_DEFAULT.into()),
            },
        )),
    }
}

/// The last day in force of a renewed term starting on `start`: the profile's fixed (or longest)
/// term (LZ-6: 2 years); `None` where the profile sets no length.
pub fn renewed_term_end(start: NaiveDate, profile: &Profile) -> Option<NaiveDate> {
    profile.values.max_agreement_term_months.as_ref().map(|m| term_last_day(start, m.value))
}

/// Whether a partner may apply now to sign its secondary authorization again (ZJK-17: within the
/// last 3 months of its term, to the primary operator).
pub fn check_secondary_renewal(today: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), TermRefused> {
    check_window(today, end, profile.values.secondary_renewal_window_months.as_ref())
}

/// Where the profile keeps the primary operator out of product development (ZJK-13 (六):
/// 不得直接参与数据产品开发), the rule that refuses it data under its own agreement: only partners
/// under a sub-authorization develop there. Product submissions use the same value.
pub fn primary_may_not_develop(profile: &Profile) -> Option<String> {
    profile.values.primary_operator_develops.as_ref().filter(|d| !d.value).map(|d| d.rule.clone())
}

/// Sensitivities (as catalog events name them) that ZJK-15 keeps out of an agreement's scope.
const PERSONAL_OR_SECRET: [&str; 3] =
    ["SENSITIVITY_PERSONAL", "SENSITIVITY_SENSITIVE_PERSONAL", "SENSITIVITY_TRADE_SECRET"];

/// Where the profile says personal information is never in scope (ZJK-15), the first field of
/// `fields` (name, sensitivity) that holds personal information or trade secrets.
pub fn forbidden_field<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    profile: &Profile,
) -> Option<(String, String)> {
    let never = profile.values.personal_information_in_scope.as_ref().filter(|p| p.value == "never")?;
    fields
        .into_iter()
        .find(|(_, sensitivity)| PERSONAL_OR_SECRET.contains(sensitivity))
        .map(|(name, _)| (name.to_string(), never.rule.clone()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgreementState {
    Draft,
    Signed,
    Active,
    Suspended,
    Terminated,
    Expired,
}

impl AgreementState {
    pub const ALL: [AgreementState; 6] = [
        AgreementState::Draft,
        AgreementState::Signed,
        AgreementState::Active,
        AgreementState::Suspended,
        AgreementState::Terminated,
        AgreementState::Expired,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementState::Draft => "draft",
            AgreementState::Signed => "signed",
            AgreementState::Active => "active",
            AgreementState::Suspended => "suspended",
            AgreementState::Terminated => "terminated",
            AgreementState::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<AgreementState> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgreementAction {
    Sign,
    Activate,
    Suspend,
    Reinstate,
    Terminate,
    Expire,
}

impl AgreementAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementAction::Sign => "sign",
            AgreementAction::Activate => "activate",
            AgreementAction::Suspend => "suspend",
            AgreementAction::Reinstate => "reinstate",
            AgreementAction::Terminate => "terminate",
            AgreementAction::Expire => "expire",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStep {
    pub from: AgreementState,
    pub action: AgreementAction,
    pub allowed_in: Vec<AgreementState>,
}

pub fn step(from: AgreementState, action: AgreementAction) -> Result<AgreementState, InvalidStep> {
    use AgreementState::*;
    let (allowed_in, to): (&[AgreementState], AgreementState) = match action {
        AgreementAction::Sign => (&[Draft], Signed),
        AgreementAction::Activate => (&[Signed], Active),
        AgreementAction::Suspend => (&[Active], Suspended),
        AgreementAction::Reinstate => (&[Suspended], Active),
        AgreementAction::Terminate => (&[Signed, Active, Suspended], Terminated),
        AgreementAction::Expire => (&[Signed, Active, Suspended], Expired),
    };
    if allowed_in.contains(&from) { Ok(to) } else { Err(InvalidStep { from, action, allowed_in: allowed_in.to_vec() }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{d, profile};

    #[test]
    fn a_four_year_term_passes_in_shaanxi_sx_22_and_fails_in_nanshan_ns_15() {
        assert!(check_term(d("2027-01-01"), d("2030-12-31"), &profile("610000")).is_ok());
        let err = check_term(d("2027-01-01"), d("2030-12-31"), &profile("440305")).unwrap_err();
        assert_eq!(err.rule, "NS-15");
        assert!(check_term(d("2027-01-01"), d("2032-01-02"), &profile("610000")).is_err(), "over 5 years");
    }

    #[test]
    fn n_years_from_d_end_on_d_plus_n_years_minus_a_day_sx_22_wf_12_ns_15_lz_6() {
        // 自2027年1月1日起至2031年12月31日止: five years; one day more is refused.
        for (code, last, rule) in
            [("610000", "2031-12-31", "SX-22"), ("370700", "2031-12-31", "WF-12"), ("440305", "2029-12-31", "NS-15")]
        {
            assert!(check_term(d("2027-01-01"), d(last), &profile(code)).is_ok(), "{code}");
            let over = d(last).succ_opt().unwrap();
            assert_eq!(check_term(d("2027-01-01"), over, &profile(code)).unwrap_err().rule, rule, "{code}");
        }
        // Zhangjiakou's primary agreements: no seed cap, the platform's 5 years.
        let err = check_term(d("2027-01-01"), d("2032-01-01"), &profile("130700")).unwrap_err();
        assert_eq!(err.rule, "platform default");
        assert_eq!(term_last_day(d("2027-03-01"), 24), d("2029-02-28"));
        assert_eq!(window_opens(d("2029-12-31"), 6), d("2029-07-01"));
    }

    #[test]
    fn secondary_authorizations_last_at_most_3_years_zjk_17() {
        assert!(check_secondary_term(d("2027-01-01"), d("2029-12-31"), &profile("130700")).is_ok());
        let err = check_secondary_term(d("2027-01-01"), d("2030-01-01"), &profile("130700")).unwrap_err();
        assert_eq!(err.rule, "ZJK-17");
        assert!(check_secondary_term(d("2027-01-01"), d("2030-01-01"), &profile("440305")).is_ok(), "no cap");
    }

    #[test]
    fn lanzhou_terms_are_a_fixed_two_years_lz_6() {
        assert!(check_term(d("2027-03-01"), d("2029-02-28"), &profile("620100")).is_ok());
        assert_eq!(check_term(d("2027-03-01"), d("2029-03-01"), &profile("620100")).unwrap_err().rule, "LZ-6");
        assert_eq!(check_term(d("2027-03-01"), d("2028-03-01"), &profile("620100")).unwrap_err().rule, "LZ-6");
    }

    #[test]
    fn renewal_only_inside_the_window_ns_15_zjk_17_and_by_decision_in_lanzhou_lz_6() {
        let end = d("2029-12-31");
        assert!(check_renewal(d("2029-07-01"), end, &profile("440305")).is_ok());
        assert_eq!(check_renewal(d("2029-06-30"), end, &profile("440305")).unwrap_err().rule, "NS-15");
        // ZJK-17's 3 months are the partners' window, not the primary agreement's.
        assert!(check_renewal(d("2029-07-01"), end, &profile("130700")).is_ok());
        assert_eq!(check_secondary_renewal(d("2029-09-30"), end, &profile("130700")).unwrap_err().rule, "ZJK-17");
        assert!(check_secondary_renewal(d("2029-10-01"), end, &profile("130700")).is_ok());
        assert!(check_secondary_renewal(d("2029-12-31"), end, &profile("130700")).is_ok(), "its last day");
        assert!(check_renewal(d("2027-01-01"), end, &profile("610000")).is_ok(), "Shaanxi sets no window");
        // Lanzhou: no application during the term, not even in its last days.
        assert_eq!(check_renewal(d("2029-12-01"), end, &profile("620100")).unwrap_err().rule, "LZ-6");
    }

    #[test]
    fn lanzhou_decides_renewal_after_expiry_lz_6_nanshan_does_not_ns_15() {
        let end = d("2029-02-28");
        let lz = profile("620100");
        assert_eq!(check_renewal_decision(end, end, &lz).unwrap_err().1.rule, "LZ-6", "its last day is in force");
        assert!(check_renewal_decision(d("2029-03-01"), end, &lz).is_ok());
        let (slug, refused) = check_renewal_decision(d("2029-03-01"), end, &profile("440305")).unwrap_err();
        assert_eq!((slug, refused.rule.as_str()), ("renewal-not-by-decision", "NS-15"));
        assert_eq!(renewed_term_end(d("2029-03-10"), &lz), Some(d("2031-03-09")));
    }

    #[test]
    fn zhangjiakou_never_puts_personal_fields_in_scope_zjk_15() {
        let fields = [("line_no", "SENSITIVITY_NONE"), ("phone", "SENSITIVITY_PERSONAL")];
        assert_eq!(forbidden_field(fields, &profile("130700")), Some(("phone".into(), "ZJK-15".into())));
        assert_eq!(forbidden_field(fields, &profile("610000")), None, "masked elsewhere, not refused");
    }

    #[test]
    fn the_primary_operator_develops_nothing_itself_in_zhangjiakou_zjk_13() {
        assert_eq!(primary_may_not_develop(&profile("130700")), Some("ZJK-13".into()));
        for code in ["610000", "370700", "620100", "440305"] {
            assert_eq!(primary_may_not_develop(&profile(code)), None, "{code}");
        }
    }

    #[test]
    fn the_life_cycle() {
        use AgreementAction::*;
        use AgreementState::*;
        assert_eq!(step(Draft, Sign), Ok(Signed));
        assert_eq!(step(Signed, Activate), Ok(Active));
        assert_eq!(step(Active, Suspend), Ok(Suspended));
        assert_eq!(step(Suspended, Reinstate), Ok(Active));
        assert_eq!(step(Suspended, Terminate), Ok(Terminated));
        assert_eq!(step(Active, Expire), Ok(Expired));
        assert!(step(Terminated, Reinstate).is_err());
        assert!(step(Draft, Activate).is_err());
    }
}
