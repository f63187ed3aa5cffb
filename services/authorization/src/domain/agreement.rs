//! Authorized operation agreements (授权运营协议, SX-22): the term within the profile's maximum
//! (SX-22, WF-12: 5 years in principle; NS-15: 3 years; LZ-6: a fixed 2 years), revenue sharing
//! only with the finance department's opinion (WF-15), scope limited to authorizable resources
//! and, in Zhangjiakou, never a field with personal information or trade secrets (ZJK-15),
//! renewal only inside the profile's window (ZJK-17, NS-15), and the life cycle
//! draft → signed → active ⇄ suspended → terminated | expired.

use chrono::NaiveDate;
use platform_calendar::add_months;
use platform_policy::Profile;
use serde::{Deserialize, Serialize};

/// A term outside what the profile allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermRefused {
    pub reason: String,
    pub rule: String,
}

/// Checks `start..=end` against the profile: end after start; at most the longest term, or
/// exactly the fixed term where the profile fixes it (LZ-6).
pub fn check_term(start: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), TermRefused> {
    if end <= start {
        return Err(TermRefused { reason: "the term must end after it starts".into(), rule: "SX-22".into() });
    }
    let Some(max) = profile.values.max_agreement_term_months.as_ref() else { return Ok(()) };
    let limit = add_months(start, max.value);
    let fixed = profile.values.fixed_agreement_term.as_ref().is_some_and(|f| f.value);
    if fixed && end != limit {
        return Err(TermRefused {
            reason: format!("the term is fixed at {} months: it must end on {limit}", max.value),
            rule: max.rule.clone(),
        });
    }
    if end > limit {
        return Err(TermRefused {
            reason: format!("the term may last at most {} months: it must end by {limit}", max.value),
            rule: max.rule.clone(),
        });
    }
    Ok(())
}

/// Whether `today` lies inside the renewal window before `end` (ZJK-17: 3 months; NS-15: 6). A
/// profile without a window puts no limit on when renewal is asked for.
pub fn check_renewal(today: NaiveDate, end: NaiveDate, profile: &Profile) -> Result<(), TermRefused> {
    let Some(w) = profile.values.renewal_window_months.as_ref() else { return Ok(()) };
    let opens = end.checked_sub_months(chrono::Months::new(w.value)).unwrap_or(end);
    if today < opens || today > end {
        return Err(TermRefused {
            reason: format!("renewal is asked for in the last {} months of the term: from {opens} to {end}", w.value),
            rule: w.rule.clone(),
        });
    }
    Ok(())
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
    fn lanzhou_terms_are_a_fixed_two_years_lz_6() {
        assert!(check_term(d("2027-03-01"), d("2029-03-01"), &profile("620100")).is_ok());
        assert_eq!(check_term(d("2027-03-01"), d("2028-03-01"), &profile("620100")).unwrap_err().rule, "LZ-6");
    }

    #[test]
    fn renewal_only_inside_the_window_ns_15_zjk_17() {
        let end = d("2029-12-31");
        assert!(check_renewal(d("2029-07-01"), end, &profile("440305")).is_ok());
        assert_eq!(check_renewal(d("2029-06-29"), end, &profile("440305")).unwrap_err().rule, "NS-15");
        assert_eq!(check_renewal(d("2029-07-01"), end, &profile("130700")).unwrap_err().rule, "ZJK-17");
        assert!(check_renewal(d("2029-10-01"), end, &profile("130700")).is_ok());
        assert!(check_renewal(d("2027-01-01"), end, &profile("610000")).is_ok(), "Shaanxi sets no window");
    }

    #[test]
    fn zhangjiakou_never_puts_personal_fields_in_scope_zjk_15() {
        let fields = [("line_no", "SENSITIVITY_NONE"), ("phone", "SENSITIVITY_PERSONAL")];
        assert_eq!(forbidden_field(fields, &profile("130700")), Some(("phone".into(), "ZJK-15".into())));
        assert_eq!(forbidden_field(fields, &profile("610000")), None, "masked elsewhere, not refused");
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
