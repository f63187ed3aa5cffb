//! Operator selection (运营机构选择): an announcement states mode, scope, conditions, criteria
//! and the application deadline (WF-12 (一)); applications come in before it (WF-12 (二), NS-12);
//! eligibility follows the profile (WF-13, ZJK-12, NS-11, LZ-3); the result is publicly noticed
//! and the agreement follows only when the notice ends without an upheld objection (WF-12 (四),
//! NS-13). Every threshold and period comes from the profile.

use chrono::{Months, NaiveDate};
use platform_calendar::Calendar;
use platform_policy::Profile;
use serde::{Deserialize, Serialize};

use crate::domain::plan::{self, FilingDue};

/// A rule's refusal: a problem slug, why, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub slug: &'static str,
    pub reason: String,
    pub rule: String,
}

fn refusal(slug: &'static str, reason: impl Into<String>, rule: &str) -> Refusal {
    Refusal { slug, reason: reason.into(), rule: rule.into() }
}

/// The competitive methods WF-12 (三) and SX-20 name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    OpenTender,
    InvitedTender,
    Negotiation,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::OpenTender => "open_tender",
            Method::InvitedTender => "invited_tender",
            Method::Negotiation => "negotiation",
        }
    }
}

/// A security incident the applicant declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    pub on: NaiveDate,
    /// A major incident (重大数据安全事故, LZ-3).
    #[serde(default)]
    pub major: bool,
}

/// What an applicant declares about itself for the eligibility check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Declaration {
    /// Credit rating (AAA, AA+, AA, AA-, A+, …).
    #[serde(default)]
    pub credit_rating: Option<String>,
    /// Since when the applicant operates data (LZ-3: at least one year).
    #[serde(default)]
    pub data_operation_since: Option<NaiveDate>,
    /// Network or data security incidents, every one of them.
    #[serde(default)]
    pub security_incidents: Vec<Incident>,
    /// Listed as a dishonest party (失信被执行人, 重大税收违法, 严重违法失信), itself or its legal
    /// representative.
    #[serde(default)]
    pub listed_dishonest: bool,
}

/// Credit ratings from best to worst.
pub const CREDIT_RATINGS: [&str; 20] = [
    "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-", "BB+", "BB", "BB-", "B+", "B", "B-", "CCC",
    "CC", "C", "D",
];

fn credit_rank(rating: &str) -> Option<usize> {
    CREDIT_RATINGS.iter().position(|r| *r == rating)
}

/// One requirement an applicant fails, with its rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ineligible {
    pub requirement: &'static str,
    pub reason: String,
    pub rule: String,
}

/// Every requirement of the profile that `d` fails on `today` (empty when eligible). A profile
/// that sets no threshold leaves the matter to the announcement's conditions.
pub fn check_eligibility(d: &Declaration, profile: &Profile, today: NaiveDate) -> Vec<Ineligible> {
    let v = &profile.values;
    let mut out = Vec::new();
    if let Some(min) = &v.min_credit_rating {
        let ok = match (d.credit_rating.as_deref().and_then(credit_rank), credit_rank(&min.value)) {
            (Some(have), Some(need)) => have <= need,
            _ => false,
        };
        if !ok {
            out.push(Ineligible {
                requirement: "credit_rating",
                reason: format!("a credit rating of {} or above is required", min.value),
                rule: min.rule.clone(),
            });
        }
    }
    if let Some(years) = &v.min_operating_years {
        let since_ok = d
            .data_operation_since
            .is_some_and(|s| s.checked_add_months(Months::new(12 * years.value)).is_some_and(|enough| enough <= today));
        if !since_ok {
            out.push(Ineligible {
                requirement: "data_operation_since",
                reason: format!("at least {} year(s) of data operation are required", years.value),
                rule: years.rule.clone(),
            });
        }
    }
    if let Some(years) = &v.security_incident_lookback_years {
        let from = today.checked_sub_months(Months::new(12 * years.value)).unwrap_or(today);
        let major_only = v.security_incident_severity.as_ref().is_some_and(|s| s.value == "major");
        if let Some(i) = d.security_incidents.iter().find(|i| i.on > from && (i.major || !major_only)) {
            let kind = if major_only { "major security incident" } else { "network or data security incident" };
            out.push(Ineligible {
                requirement: "security_incidents",
                reason: format!("a {kind} on {} lies within the last {} year(s)", i.on, years.value),
                rule: years.rule.clone(),
            });
        }
    }
    if let Some(rule) = v.dishonesty_listing_excludes.as_ref().filter(|x| x.value)
        && d.listed_dishonest
    {
        out.push(Ineligible {
            requirement: "listed_dishonest",
            reason: "a party listed for dishonesty cannot be an operator".into(),
            rule: rule.rule.clone(),
        });
    }
    out
}

/// Checks what a declaration says is well-formed: known ratings, no incident in the future.
pub fn check_declaration(d: &Declaration, today: NaiveDate) -> Result<(), (String, String)> {
    if let Some(r) = &d.credit_rating
        && credit_rank(r).is_none()
    {
        return Err(("declaration.credit_rating".into(), format!("one of {}", CREDIT_RATINGS.join(", "))));
    }
    if d.data_operation_since.is_some_and(|s| s > today) || d.security_incidents.iter().any(|i| i.on > today) {
        return Err(("declaration".into(), "dates lie in the past".into()));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SelectionState {
    /// Announced: applications until the deadline, then evaluation and award.
    Open,
    /// Awarded; the result is in public notice.
    Notice,
    /// The agreement with the awarded operator is made.
    Concluded,
}

impl SelectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SelectionState::Open => "open",
            SelectionState::Notice => "notice",
            SelectionState::Concluded => "concluded",
        }
    }
    pub fn parse(s: &str) -> Option<SelectionState> {
        [SelectionState::Open, SelectionState::Notice, SelectionState::Concluded].into_iter().find(|x| x.as_str() == s)
    }
}

/// Applications are accepted through the deadline day (WF-12 (二), NS-12).
pub fn check_application_time(deadline: NaiveDate, today: NaiveDate) -> Result<(), Refusal> {
    if today > deadline {
        return Err(refusal(
            "application-deadline-passed",
            format!("applications were accepted until {deadline}"),
            "WF-12",
        ));
    }
    Ok(())
}

/// Evaluation and award come after the applications close, so all are weighed together (WF-12 (三)).
pub fn check_applications_closed(deadline: NaiveDate, today: NaiveDate) -> Result<(), Refusal> {
    if today <= deadline {
        return Err(refusal(
            "applications-still-open",
            format!("applications are accepted until {deadline}; evaluation follows"),
            "WF-12",
        ));
    }
    Ok(())
}

/// The last day of the public notice of an award made on `awarded` (WF-12 (四), NS-13), in the
/// profile's period (working days on the official calendar); `None` if the profile sets none.
pub fn notice_ends(profile: &Profile, awarded: NaiveDate, calendar: &Calendar) -> Option<FilingDue> {
    plan::deadline(profile.values.selection_notice_period.as_ref(), true, awarded, calendar)
}

/// Objections are raised while the notice runs.
pub fn check_objection_time(ends: NaiveDate, rule: &str, today: NaiveDate) -> Result<(), Refusal> {
    if today > ends {
        return Err(refusal("objection-period-over", format!("the public notice ended on {ends}"), rule));
    }
    Ok(())
}

/// Whether an agreement may now be made for `operator_org` under the selection: it is in notice,
/// the notice has ended, no objection to the award is pending, and the operator is the awarded
/// one (WF-12 (四): 公示无异议后签订; NS-13, NS-14).
pub fn check_agreement_allowed(
    state: SelectionState,
    awarded_org: Option<&str>,
    operator_org: &str,
    ends: Option<NaiveDate>,
    rule: &str,
    pending_objections: usize,
    today: NaiveDate,
) -> Result<(), Refusal> {
    let (SelectionState::Notice, Some(awarded), Some(ends)) = (state, awarded_org, ends) else {
        return Err(refusal(
            "selection-not-awarded",
            format!("the selection is {}; an agreement follows an award and its notice", state.as_str()),
            "WF-12",
        ));
    };
    if awarded != operator_org {
        return Err(refusal("not-the-awarded-operator", format!("the selection awarded `{awarded}`"), "WF-12"));
    }
    if today <= ends {
        return Err(refusal("public-notice-running", format!("the public notice runs until {ends}"), rule));
    }
    if pending_objections > 0 {
        return Err(refusal(
            "objection-pending",
            format!("{pending_objections} objection(s) to the award are not decided"),
            rule,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{d, profile};

    fn rules(v: &[Ineligible]) -> Vec<&str> {
        v.iter().map(|i| i.rule.as_str()).collect()
    }

    #[test]
    fn an_incident_two_years_ago_excludes_in_weifang_wf_13_and_zhangjiakou_zjk_12_not_in_lanzhou_lz_3() {
        let today = d("2027-06-01");
        let decl = Declaration {
            credit_rating: Some("AAA".into()),
            data_operation_since: Some(d("2020-01-01")),
            security_incidents: vec![Incident { on: d("2025-06-15"), major: false }],
            listed_dishonest: false,
        };
        assert_eq!(rules(&check_eligibility(&decl, &profile("370700"), today)), ["WF-13"]);
        assert_eq!(rules(&check_eligibility(&decl, &profile("130700"), today)), ["ZJK-12"]);
        assert!(check_eligibility(&decl, &profile("620100"), today).is_empty(), "LZ-3: one year, major only");
        let major_recent =
            Declaration { security_incidents: vec![Incident { on: d("2026-09-01"), major: true }], ..decl };
        assert_eq!(rules(&check_eligibility(&major_recent, &profile("620100"), today)), ["LZ-3"]);
        let minor_recent =
            Declaration { security_incidents: vec![Incident { on: d("2026-09-01"), major: false }], ..major_recent };
        assert!(check_eligibility(&minor_recent, &profile("620100"), today).is_empty());
        let old =
            Declaration { security_incidents: vec![Incident { on: d("2024-05-01"), major: true }], ..minor_recent };
        assert!(check_eligibility(&old, &profile("370700"), today).is_empty(), "older than three years");
    }

    #[test]
    fn lanzhou_needs_aa_or_above_and_a_year_of_data_operation_lz_3_shaanxi_sets_no_threshold() {
        let today = d("2027-06-01");
        let weak = Declaration {
            credit_rating: Some("AA-".into()),
            data_operation_since: Some(d("2026-09-01")),
            ..Declaration::default()
        };
        let failed = check_eligibility(&weak, &profile("620100"), today);
        assert_eq!(
            failed.iter().map(|i| (i.requirement, i.rule.as_str())).collect::<Vec<_>>(),
            [("credit_rating", "LZ-3"), ("data_operation_since", "LZ-3")]
        );
        let strong = Declaration {
            credit_rating: Some("AA".into()),
            data_operation_since: Some(d("2026-06-01")),
            ..Declaration::default()
        };
        assert!(check_eligibility(&strong, &profile("620100"), today).is_empty());
        assert!(check_eligibility(&weak, &profile("610000"), today).is_empty());
        assert_eq!(check_eligibility(&Declaration::default(), &profile("620100"), today).len(), 2, "undeclared fails");
    }

    #[test]
    fn listed_dishonesty_excludes_in_nanshan_ns_11_zhangjiakou_zjk_12_and_lanzhou_lz_3() {
        let today = d("2027-06-01");
        let listed = Declaration {
            credit_rating: Some("AAA".into()),
            data_operation_since: Some(d("2020-01-01")),
            listed_dishonest: true,
            ..Declaration::default()
        };
        assert_eq!(rules(&check_eligibility(&listed, &profile("440305"), today)), ["NS-11"]);
        assert_eq!(rules(&check_eligibility(&listed, &profile("130700"), today)), ["ZJK-12"]);
        assert_eq!(rules(&check_eligibility(&listed, &profile("620100"), today)), ["LZ-3"]);
        assert!(check_eligibility(&listed, &profile("610000"), today).is_empty(), "Shaanxi's seed sets no such bar");
    }

    #[test]
    fn applications_until_the_deadline_then_evaluation_wf_12() {
        assert!(check_application_time(d("2027-03-10"), d("2027-03-10")).is_ok());
        assert_eq!(check_application_time(d("2027-03-10"), d("2027-03-11")).unwrap_err().rule, "WF-12");
        assert!(check_applications_closed(d("2027-03-10"), d("2027-03-10")).is_err());
        assert!(check_applications_closed(d("2027-03-10"), d("2027-03-11")).is_ok());
    }

    #[test]
    fn the_notice_runs_three_working_days_over_a_holiday_wf_12_ns_13() {
        let cal = Calendar::official();
        // Awarded Thursday 2026-09-24: Sep 25–27 are days off, so the notice runs to Sep 30.
        let wf = notice_ends(&profile("370700"), d("2026-09-24"), cal).unwrap();
        assert_eq!((wf.date, wf.rule.as_str()), (d("2026-09-30"), "WF-12"));
        assert_eq!(notice_ends(&profile("440305"), d("2026-09-24"), cal).unwrap().rule, "NS-13");
    }

    #[test]
    fn an_agreement_only_after_the_notice_without_pending_objections_wf_12() {
        let ends = Some(d("2027-04-01"));
        let ok = |today, pending| {
            check_agreement_allowed(SelectionState::Notice, Some("org-a"), "org-a", ends, "WF-12", pending, today)
        };
        assert_eq!(ok(d("2027-04-01"), 0).unwrap_err().slug, "public-notice-running");
        assert_eq!(ok(d("2027-04-02"), 1).unwrap_err().slug, "objection-pending");
        assert!(ok(d("2027-04-02"), 0).is_ok());
        let other =
            check_agreement_allowed(SelectionState::Notice, Some("org-a"), "org-b", ends, "WF-12", 0, d("2027-04-02"));
        assert_eq!(other.unwrap_err().slug, "not-the-awarded-operator");
        let open = check_agreement_allowed(SelectionState::Open, None, "org-a", None, "WF-12", 0, d("2027-04-02"));
        assert_eq!(open.unwrap_err().slug, "selection-not-awarded");
    }
}
