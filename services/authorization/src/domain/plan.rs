//! Implementation plans (实施方案): the twelve required contents (SX-16), the flow
//! draft → feasibility review (SX-17) → government deliberation (SX-18) → approved → filed with
//! the upper jurisdiction within the profile's deadline (SX-19: one month; WF-11: 20 working
//! days). An approved plan changes only by going through the flow again (SX-18, WF-11).

use chrono::NaiveDate;
use platform_calendar::{Calendar, add_months};
use platform_policy::{Period, Profile};
use serde::{Deserialize, Serialize};

/// The twelve contents SX-16 requires, in its order, with the article's wording.
pub const REQUIRED_CONTENTS: [(&str, &str); 12] = [
    ("name", "(一)授权运营名称"),
    ("necessity_feasibility", "(二)授权运营的必要性和可行性论证"),
    ("operator_selection_conditions", "(三)运营机构的选择条件"),
    ("mode", "(四)授权运营模式"),
    ("data_scope", "(五)授权运营的数据资源范围、目录、更新频率及质量"),
    ("term_and_implementation", "(六)期限、建设内容、技术保障、实施进度、评价标准、退出机制、资产管理"),
    ("product_list", "(七)公共数据产品和服务清单(公共治理/公益事业、产业发展/行业发展)"),
    ("cost_revenue_sharing", "(八)成本和收入核算机制、收益分配机制"),
    ("security_emergency", "(九)数据安全、个人信息保护和应急处置措施"),
    ("rights_duties", "(十)各参与方权利义务"),
    ("supervision_evaluation", "(十一)监督管理及考核评价要求"),
    ("other", "(十二)应当明确的其他事项"),
];

/// The plan as its authors write it. Every section is optional while drafting; submission
/// needs all twelve (SX-16).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanContents {
    pub name: Option<String>,
    pub necessity_feasibility: Option<String>,
    pub operator_selection_conditions: Option<String>,
    /// whole | sector | scenario | two_tier; must be a mode the jurisdiction's profile allows.
    pub mode: Option<String>,
    pub data_scope: Option<DataScope>,
    pub term_and_implementation: Option<String>,
    pub product_list: Option<ProductList>,
    pub cost_revenue_sharing: Option<String>,
    pub security_emergency: Option<String>,
    pub rights_duties: Option<String>,
    pub supervision_evaluation: Option<String>,
    pub other: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataScope {
    /// Catalog resources in scope.
    pub resource_ids: Vec<uuid::Uuid>,
    /// Update frequency and quality of the data in scope.
    pub description: String,
}

/// SX-16 (七): both classes of products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductList {
    /// 支持公共治理、公益事业.
    pub public_governance: Vec<String>,
    /// 产业发展、行业发展.
    pub industry_development: Vec<String>,
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|t| t.trim().is_empty())
}

impl PlanContents {
    /// The required contents that are missing, by key (SX-16).
    pub fn missing(&self) -> Vec<&'static str> {
        let present = [
            !blank(&self.name),
            !blank(&self.necessity_feasibility),
            !blank(&self.operator_selection_conditions),
            !blank(&self.mode),
            self.data_scope.as_ref().is_some_and(|d| !d.resource_ids.is_empty() && !d.description.trim().is_empty()),
            !blank(&self.term_and_implementation),
            self.product_list
                .as_ref()
                .is_some_and(|p| !p.public_governance.is_empty() && !p.industry_development.is_empty()),
            !blank(&self.cost_revenue_sharing),
            !blank(&self.security_emergency),
            !blank(&self.rights_duties),
            !blank(&self.supervision_evaluation),
            !blank(&self.other),
        ];
        REQUIRED_CONTENTS.iter().zip(present).filter(|(_, p)| !p).map(|((k, _), _)| *k).collect()
    }

    pub fn resource_ids(&self) -> Vec<uuid::Uuid> {
        self.data_scope.as_ref().map(|d| d.resource_ids.clone()).unwrap_or_default()
    }
}

/// A mode the profile does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeNotAllowed {
    pub mode: String,
    pub allowed: Vec<String>,
    pub rule: String,
}

/// Checks the plan's mode against the profile's allowed modes (SX-12, WF-9, ZJK-11, LZ-4).
pub fn check_mode(mode: &str, profile: &Profile) -> Result<(), ModeNotAllowed> {
    match &profile.values.modes {
        Some(m) if !m.value.iter().any(|x| x == mode) => {
            Err(ModeNotAllowed { mode: mode.into(), allowed: m.value.clone(), rule: m.rule.clone() })
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    Draft,
    FeasibilityReview,
    Deliberation,
    Approved,
    Filed,
}

impl PlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Draft => "draft",
            PlanState::FeasibilityReview => "feasibility_review",
            PlanState::Deliberation => "deliberation",
            PlanState::Approved => "approved",
            PlanState::Filed => "filed",
        }
    }
    pub fn parse(s: &str) -> Option<PlanState> {
        [PlanState::Draft, PlanState::FeasibilityReview, PlanState::Deliberation, PlanState::Approved, PlanState::Filed]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A step of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// The implementing institution submits a complete plan (SX-16).
    Submit,
    /// The data management department's feasibility review passes (SX-17).
    PassFeasibility,
    /// The government approves after deliberation (SX-18).
    Approve,
    /// Feasibility review or deliberation sends the plan back.
    Return,
    /// Filed with the upper jurisdiction (SX-19, WF-11).
    File,
}

impl PlanAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanAction::Submit => "submit",
            PlanAction::PassFeasibility => "pass_feasibility",
            PlanAction::Approve => "approve",
            PlanAction::Return => "return",
            PlanAction::File => "file",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStep {
    pub from: PlanState,
    pub action: PlanAction,
    pub allowed_in: Vec<PlanState>,
}

/// The state after `action`, or why not. `filing_required`: whether the jurisdiction files its
/// plans with an upper level.
pub fn step(from: PlanState, action: PlanAction, filing_required: bool) -> Result<PlanState, InvalidStep> {
    use PlanState::*;
    let (allowed_in, to): (&[PlanState], PlanState) = match action {
        PlanAction::Submit => (&[Draft], FeasibilityReview),
        PlanAction::PassFeasibility => (&[FeasibilityReview], Deliberation),
        PlanAction::Approve => (&[Deliberation], Approved),
        PlanAction::Return => (&[FeasibilityReview, Deliberation], Draft),
        PlanAction::File => (if filing_required { &[Approved] } else { &[] }, Filed),
    };
    if allowed_in.contains(&from) { Ok(to) } else { Err(InvalidStep { from, action, allowed_in: allowed_in.to_vec() }) }
}

/// When the filing of a plan approved on `approved` is due, by the profile's rule: calendar
/// months (SX-19) or working days on the official calendar (WF-11). `None` when the
/// jurisdiction's profile sets no filing (a province files with no one above it).
pub fn filing_due(profile: &Profile, level_files: bool, approved: NaiveDate, calendar: &Calendar) -> Option<FilingDue> {
    deadline(profile.values.plan_filing_deadline.as_ref(), level_files, approved, calendar)
}

/// The due date `ruled` sets counting from `from` (months, or working days on the official
/// calendar); `None` when nothing is due.
pub fn deadline(
    ruled: Option<&platform_policy::Ruled<Period>>,
    level_files: bool,
    from: NaiveDate,
    calendar: &Calendar,
) -> Option<FilingDue> {
    if !level_files {
        return None;
    }
    let ruled = ruled?;
    let approved = from;
    let (date, provisional) = match ruled.value {
        Period::Months(n) => (add_months(approved, n), false),
        Period::WorkingDays(n) => {
            let d = calendar.add_working_days(approved, n);
            (d.date, d.provisional)
        }
    };
    Some(FilingDue { date, provisional, rule: ruled.rule.clone() })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilingDue {
    pub date: NaiveDate,
    pub provisional: bool,
    pub rule: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_policy::Profiles;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn complete() -> PlanContents {
        PlanContents {
            name: Some("西安市交通数据授权运营".into()),
            necessity_feasibility: Some("x".into()),
            operator_selection_conditions: Some("x".into()),
            mode: Some("scenario".into()),
            data_scope: Some(DataScope { resource_ids: vec![uuid::Uuid::now_v7()], description: "日更".into() }),
            term_and_implementation: Some("x".into()),
            product_list: Some(ProductList {
                public_governance: vec!["a".into()],
                industry_development: vec!["b".into()],
            }),
            cost_revenue_sharing: Some("x".into()),
            security_emergency: Some("x".into()),
            rights_duties: Some("x".into()),
            supervision_evaluation: Some("x".into()),
            other: Some("无".into()),
        }
    }

    #[test]
    fn a_plan_needs_all_twelve_contents_sx_16() {
        assert!(complete().missing().is_empty());
        let mut p = complete();
        p.cost_revenue_sharing = Some("  ".into());
        p.product_list = Some(ProductList { public_governance: vec!["a".into()], industry_development: vec![] });
        assert_eq!(p.missing(), ["product_list", "cost_revenue_sharing"]);
        assert_eq!(PlanContents::default().missing().len(), 12);
    }

    #[test]
    fn the_flow_sx_17_sx_18() {
        use PlanAction::*;
        use PlanState::*;
        assert_eq!(step(Draft, Submit, true), Ok(FeasibilityReview));
        assert_eq!(step(FeasibilityReview, PassFeasibility, true), Ok(Deliberation));
        assert_eq!(step(Deliberation, Approve, true), Ok(Approved));
        assert_eq!(step(Approved, File, true), Ok(Filed));
        assert_eq!(step(Deliberation, Return, true), Ok(Draft));
        assert!(step(Draft, Approve, true).is_err(), "no approval without review");
        assert!(step(Approved, File, false).is_err(), "nothing to file where no level above receives it");
    }

    #[test]
    fn filing_is_due_in_one_month_in_shaanxi_sx_19_and_20_working_days_in_weifang_wf_11() {
        let profiles = Profiles::built_in().unwrap();
        let xian = profiles.resolve("610100").unwrap();
        let due = filing_due(&xian, true, d("2026-01-30"), Calendar::official()).unwrap();
        assert_eq!((due.date, due.rule.as_str()), (d("2026-02-28"), "SX-19"));
        let weifang = profiles.resolve("370700").unwrap();
        // 2026-09-21 + 20 working days: Sep 25–27 and Oct 1–7 off, Sep 20 and Oct 10 worked.
        let due = filing_due(&weifang, true, d("2026-09-21"), Calendar::official()).unwrap();
        assert_eq!((due.date, due.rule.as_str()), (d("2026-10-26"), "WF-11"));
        assert!(
            filing_due(&profiles.resolve("130700").unwrap(), true, d("2026-01-05"), Calendar::official()).is_none()
        );
    }

    #[test]
    fn modes_come_from_the_profile() {
        let profiles = Profiles::built_in().unwrap();
        assert!(check_mode("scenario", &profiles.resolve("610000").unwrap()).is_ok());
        let err = check_mode("scenario", &profiles.resolve("370700").unwrap()).unwrap_err();
        assert_eq!((err.allowed, err.rule.as_str()), (vec!["whole".to_string()], "WF-9"));
        assert!(check_mode("two_tier", &profiles.resolve("130700").unwrap()).is_ok());
    }
}
