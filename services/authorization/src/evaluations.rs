//! The implementing institution's performance evaluations of an operator under its agreement
//! (LZ-6 (三): 经营收入、成本控制效率及盈利能力, and its contribution to public governance, welfare
//! and industry), and where the profile renews by decision after expiry (LZ-6: 期满后根据运营机构的
//! 绩效评估结果和市场需求，决定是否续签), the renewal decision on one of them (LZ-11: 考核结果作为续签
//! 授权协议…的重要依据): a new agreement of the profile's fixed term, or a refusal, once.

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use platform_auth::Caller;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::State;
use crate::domain::agreement;
use crate::errors::{Error, Result};
use crate::store::{AgreementRow, ProfileRow};
use crate::views::{AgreementInput, ScopeItem};

diesel::table! {
    agreement_evaluations (id) {
        id -> Uuid,
        agreement_id -> Uuid,
        jurisdiction -> Text,
        period -> Text,
        indicators -> Jsonb,
        result -> Text,
        summary -> Text,
        evaluated_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    renewal_decisions (agreement_id) {
        agreement_id -> Uuid,
        evaluation_id -> Uuid,
        decision -> Text,
        market_demand -> Text,
        reason -> Text,
        rule -> Text,
        renewed_as -> Nullable<Uuid>,
        decided_by -> Text,
        decided_at -> Timestamptz,
    }
}

/// The indicators LZ-6 (三) names, each assessed in words.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Indicators {
    /// 经营收入.
    pub revenue: String,
    /// 成本控制效率.
    pub cost_control: String,
    /// 盈利能力.
    pub profitability: String,
    /// 对公共治理、公益事业、产业发展等方面的贡献和影响.
    pub contribution: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Excellent,
    Good,
    Qualified,
    Unqualified,
}

impl Grade {
    fn as_str(self) -> &'static str {
        match self {
            Grade::Excellent => "excellent",
            Grade::Good => "good",
            Grade::Qualified => "qualified",
            Grade::Unqualified => "unqualified",
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluationInput {
    /// The period evaluated, e.g. "2027-2028".
    pub period: String,
    pub indicators: Indicators,
    pub result: Grade,
    pub summary: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = agreement_evaluations)]
pub struct Evaluation {
    pub id: Uuid,
    pub agreement_id: Uuid,
    pub jurisdiction: String,
    pub period: String,
    #[schema(value_type = Indicators)]
    pub indicators: serde_json::Value,
    /// excellent | good | qualified | unqualified.
    pub result: String,
    pub summary: String,
    pub evaluated_by: String,
    pub created_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Renew,
    Refuse,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// The evaluation of this agreement's operator the decision rests on (LZ-11).
    pub evaluation_id: Uuid,
    pub decision: Choice,
    /// The market demand weighed with the evaluation (LZ-6: 市场需求).
    pub market_demand: String,
    pub reason: String,
    /// Where renewed: the first day of the new term (today when absent), after the old term.
    #[serde(default)]
    pub term_start: Option<NaiveDate>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = renewal_decisions)]
pub struct RenewalDecision {
    pub agreement_id: Uuid,
    pub evaluation_id: Uuid,
    /// renew | refuse.
    pub decision: String,
    pub market_demand: String,
    pub reason: String,
    /// The rule it is decided under (LZ-6).
    pub rule: String,
    /// The new agreement (a draft of the profile's fixed term, signed and activated as any) where
    /// renewed.
    pub renewed_as: Option<Uuid>,
    pub decided_by: String,
    pub decided_at: chrono::DateTime<Utc>,
}

fn text(field: &str, v: &str, max: usize) -> Result<String> {
    if v.trim().is_empty() || v.chars().count() > max {
        return Err(Error::Invalid { field: field.into(), reason: format!("1 to {max} characters") });
    }
    Ok(v.trim().to_string())
}

fn refused(slug: &'static str, field: Option<&str>, t: agreement::TermRefused) -> Error {
    Error::Refused { slug, field: field.map(str::to_string), reason: t.reason, rule: t.rule }
}

/// The implementing institution records an evaluation of the operator under an agreement of its
/// jurisdiction that has been in force (LZ-6 (三), LZ-11).
pub async fn evaluate(s: &State, caller: &Caller, agreement_id: Uuid, input: EvaluationInput) -> Result<Evaluation> {
    let i = &input.indicators;
    for (field, v) in [
        ("period", &input.period),
        ("indicators.revenue", &i.revenue),
        ("indicators.cost_control", &i.cost_control),
        ("indicators.profitability", &i.profitability),
        ("indicators.contribution", &i.contribution),
    ] {
        text(field, v, 2000)?;
    }
    let summary = text("summary", &input.summary, 4000)?;
    let mut c = platform_store::conn(&s.pool).await?;
    let a = AgreementRow::find(&mut c, agreement_id, false).await?;
    if a.jurisdiction != caller.jurisdiction() {
        return Err(Error::AgreementNotFound(agreement_id));
    }
    if matches!(a.state.as_str(), "draft" | "signed") {
        return Err(Error::Conflict {
            state: a.state,
            reason: "an operator is evaluated on an agreement that has been in force".into(),
        });
    }
    let row = Evaluation {
        id: Uuid::now_v7(),
        agreement_id,
        jurisdiction: a.jurisdiction,
        period: input.period.trim().into(),
        indicators: serde_json::to_value(&input.indicators).unwrap_or_default(),
        result: input.result.as_str().into(),
        summary,
        evaluated_by: caller.subject().into(),
        created_at: Utc::now(),
    };
    diesel::insert_into(agreement_evaluations::table).values(&row).execute(&mut *c).await?;
    Ok(row)
}

/// An agreement's evaluations: its operator's own, or any of the caller's jurisdiction.
pub async fn list(s: &State, caller: &Caller, agreement_id: Uuid) -> Result<Vec<Evaluation>> {
    let mut c = platform_store::conn(&s.pool).await?;
    crate::agreements::find_visible(&mut c, caller, agreement_id).await?;
    Ok(agreement_evaluations::table
        .filter(agreement_evaluations::agreement_id.eq(agreement_id))
        .order(agreement_evaluations::id.asc())
        .select(Evaluation::as_select())
        .load(&mut *c)
        .await?)
}

/// The implementing institution decides, once, after the term has ended and on an evaluation of
/// this agreement, whether to renew (LZ-6, LZ-11). Renewing drafts a new agreement with the same
/// operator, scope and products for the profile's fixed term (LZ-6: 2 years), checked against the
/// current profile and catalog as any draft; both agreements record the decision as a step.
pub async fn decide(s: &State, caller: &Caller, agreement_id: Uuid, input: DecisionInput) -> Result<RenewalDecision> {
    let market_demand = text("market_demand", &input.market_demand, 4000)?;
    let reason = text("reason", &input.reason, 4000)?;
    let prefix = s.topic_prefix.clone();
    let mut pooled = platform_store::conn(&s.pool).await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let decision = conn
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let mut old = crate::agreements::own(c, caller, agreement_id).await?;
            let today = platform_calendar::today_in_china();
            let profile = ProfileRow::find(c, &old.jurisdiction, old.profile_version).await?.profile()?;
            agreement::check_renewal_decision(today, old.term_end, &profile)
                .map_err(|(slug, t)| refused(slug, None, t))?;
            if old.state != "expired" {
                return Err(Error::Conflict {
                    state: old.state,
                    reason: "renewal is decided on an agreement that expired with its term".into(),
                });
            }
            let decided = renewal_decisions::table.find(agreement_id).count().get_result::<i64>(c).await?;
            if decided > 0 {
                return Err(Error::Conflict { state: old.state, reason: "its renewal is decided already".into() });
            }
            let rule = profile.values.renewal.as_ref().map(|r| r.rule.clone()).unwrap_or_default();
            let evaluated = agreement_evaluations::table
                .find(input.evaluation_id)
                .filter(agreement_evaluations::agreement_id.eq(agreement_id))
                .count()
                .get_result::<i64>(c)
                .await?;
            if evaluated == 0 {
                let t = agreement::TermRefused {
                    reason: "renewal is decided on a performance evaluation of this agreement's operator (LZ-11)"
                        .into(),
                    rule: rule.clone(),
                };
                return Err(refused("evaluation-missing", Some("evaluation_id"), t));
            }
            let (renewed_as, step) = match input.decision {
                Choice::Renew => {
                    let new =
                        renew(c, &prefix, caller, &old, input.term_start, today, input.evaluation_id, &rule).await?;
                    (
                        Some(new),
                        format!("renewal decided on evaluation {} ({rule}): renewed as {new}", input.evaluation_id),
                    )
                }
                Choice::Refuse => {
                    (None, format!("renewal refused on evaluation {} ({rule}): {reason}", input.evaluation_id))
                }
            };
            crate::agreements::record_step(c, &prefix, &mut old, "expired", caller.subject(), step).await?;
            let row = RenewalDecision {
                agreement_id,
                evaluation_id: input.evaluation_id,
                decision: match input.decision {
                    Choice::Renew => "renew",
                    Choice::Refuse => "refuse",
                }
                .into(),
                market_demand,
                reason,
                rule,
                renewed_as,
                decided_by: caller.subject().into(),
                decided_at: Utc::now(),
            };
            diesel::insert_into(renewal_decisions::table).values(&row).execute(c).await?;
            Ok(row)
        })
        .await?;
    s.relay.wake();
    Ok(decision)
}

/// Drafts the renewed agreement: the old one's operator, scope, products and revenue sharing, from
/// `start` (today when absent, after the old term) for the current profile's fixed term.
#[allow(clippy::too_many_arguments)]
async fn renew(
    c: &mut AsyncPgConnection,
    prefix: &str,
    caller: &Caller,
    old: &AgreementRow,
    start: Option<NaiveDate>,
    today: NaiveDate,
    evaluation: Uuid,
    rule: &str,
) -> Result<Uuid> {
    let start = start.unwrap_or(today);
    if start <= old.term_end {
        return Err(Error::Invalid {
            field: "term_start".into(),
            reason: format!("the renewed term starts after the old one's last day, {}", old.term_end),
        });
    }
    let profile = ProfileRow::current(c, caller.jurisdiction()).await?.profile()?;
    let term_end = agreement::renewed_term_end(start, &profile).ok_or_else(|| Error::Invalid {
        field: "term_start".into(),
        reason: "the profile sets no term length to renew for".into(),
    })?;
    let input = AgreementInput {
        plan_id: old.plan_id,
        selection_id: None,
        operator_org: old.operator_org.clone(),
        operator_name: old.operator_name.clone(),
        scope: serde_json::from_value::<Vec<ScopeItem>>(old.scope.clone()).unwrap_or_default(),
        products: serde_json::from_value(old.products.clone()).unwrap_or_default(),
        revenue_sharing: old.revenue_sharing.clone(),
        term_start: start,
        term_end,
    };
    let why = format!("renewal of {} decided after expiry on evaluation {evaluation} ({rule})", old.id);
    Ok(crate::agreements::draft_in(c, prefix, caller, input, why).await?.id)
}
