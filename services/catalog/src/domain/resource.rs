//! Resources (公共数据资源): content validation, authorizability, and the review flow.
//!
//! draft ⇄ submitted → published → withdrawn, or submitted → rejected → (edit) draft (ZJK-7:
//! compiled by the industry department, reviewed by the data management department before
//! publication). A published resource changes only by a new version: a revision is proposed,
//! then published (version + 1, history kept) or rejected.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::text_enum;

text_enum!(
    /// NS-2: 无条件开放 / 有条件开放 / 不予开放.
    OpenCategory { Unconditional => "unconditional", Conditional => "conditional", NotOpen => "not_open" }
);
text_enum!(
    /// Data security grade (核心 / 重要 / 一般).
    SecurityGrade { Core => "core", Important => "important", General => "general" }
);
text_enum!(
    /// LZ-5 names real-time, daily, weekly, monthly and quarterly updates.
    UpdateFrequency {
        RealTime => "real_time", Daily => "daily", Weekly => "weekly", Monthly => "monthly",
        Quarterly => "quarterly", Yearly => "yearly", OnDemand => "on_demand"
    }
);
text_enum!(
    /// Per-field sensitivity; the sandbox masks by it.
    Sensitivity {
        None => "none", Personal => "personal", SensitivePersonal => "sensitive_personal", TradeSecret => "trade_secret"
    }
);
text_enum!(
    /// What kind of personal information a field holds; the sandbox's masks are chosen by it.
    PiiKind {
        IdCard => "id_card", Phone => "phone", Name => "name", Address => "address",
        BankAccount => "bank_account", Other => "other"
    }
);
text_enum!(
    DataType {
        Text => "text", Integer => "integer", Decimal => "decimal", Boolean => "boolean",
        Date => "date", Timestamp => "timestamp"
    }
);
text_enum!(
    ProvenanceKind {
        /// Collected by the source unit in its own duties.
        Collected => "collected",
        /// Obtained from another region or department by data sharing (SX-5).
        SharedIn => "shared_in"
    }
);
text_enum!(
    ResourceState {
        Draft => "draft", Submitted => "submitted", Published => "published",
        Rejected => "rejected", Withdrawn => "withdrawn"
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Column name: lower-case letters, digits and `_`, starting with a letter.
    pub name: String,
    pub data_type: DataType,
    pub sensitivity: Sensitivity,
    /// Required when the field holds personal information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_kind: Option<PiiKind>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub kind: ProvenanceKind,
    /// The providing region or department, for shared-in data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Whether the provider consented to authorized operation (SX-5, ZJK-15).
    #[serde(default)]
    pub provider_consent: bool,
}

/// Everything an industry department writes about a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceContent {
    pub name: String,
    /// Unique within the jurisdiction: letters, digits, `.`, `_`, `-`.
    pub code: String,
    pub source_unit: String,
    pub sector: String,
    /// e.g. "table", "file", "api".
    pub format: String,
    pub update_frequency: UpdateFrequency,
    pub open_category: OpenCategory,
    pub security_grade: SecurityGrade,
    #[serde(default)]
    pub quality_requirements: String,
    pub fields: Vec<FieldSpec>,
    pub provenance: Provenance,
}

/// A content error: the JSON path of the field at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid { field: field.into(), reason: reason.into() }
}

const MAX_TEXT: usize = 200;
const MAX_FIELDS: usize = 500;

fn text(field: &str, value: &str, max: usize) -> Result<(), Invalid> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

impl ResourceContent {
    /// Checks the content; the first problem found is returned with its JSON path.
    pub fn validate(&self) -> Result<(), Invalid> {
        text("name", &self.name, MAX_TEXT)?;
        text("code", &self.code, 64)?;
        if !self.code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(invalid("code", "may contain only ASCII letters, digits, '.', '_' and '-'"));
        }
        text("source_unit", &self.source_unit, MAX_TEXT)?;
        text("sector", &self.sector, 64)?;
        text("format", &self.format, 32)?;
        if self.quality_requirements.chars().count() > 2000 {
            return Err(invalid("quality_requirements", "must be at most 2000 characters"));
        }
        if self.fields.is_empty() {
            return Err(invalid("fields", "a resource needs at least one field"));
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(invalid("fields", format!("at most {MAX_FIELDS} fields")));
        }
        let mut seen = HashSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            let path = format!("fields[{i}]");
            let ok_name = f.name.len() <= 63
                && f.name.starts_with(|c: char| c.is_ascii_lowercase())
                && f.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok_name {
                return Err(invalid(
                    format!("{path}.name"),
                    "must be lower-case letters, digits and '_', starting with a letter, at most 63 long",
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(invalid(format!("{path}.name"), format!("field `{}` appears twice", f.name)));
            }
            let personal = matches!(f.sensitivity, Sensitivity::Personal | Sensitivity::SensitivePersonal);
            match (personal, f.pii_kind) {
                (true, None) => {
                    return Err(invalid(
                        format!("{path}.pii_kind"),
                        "personal information needs its kind (id_card, phone, name, ...) so it can be masked",
                    ));
                }
                (false, Some(_)) => {
                    return Err(invalid(
                        format!("{path}.sensitivity"),
                        "a field with a pii_kind holds personal information: set sensitivity to personal or sensitive_personal",
                    ));
                }
                _ => {}
            }
            if f.description.chars().count() > 500 {
                return Err(invalid(format!("{path}.description"), "must be at most 500 characters"));
            }
        }
        match (self.provenance.kind, self.provenance.provider.as_deref()) {
            (ProvenanceKind::SharedIn, None) => {
                return Err(invalid("provenance.provider", "shared-in data must name its provider"));
            }
            (ProvenanceKind::SharedIn, Some(p)) => text("provenance.provider", p, MAX_TEXT)?,
            (ProvenanceKind::Collected, _) if self.provenance.provider_consent => {
                return Err(invalid("provenance.provider_consent", "only shared-in data has a provider's consent"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the resource may enter authorized operation, and if not, the rule that says why.
    pub fn authorizability(&self) -> Authorizability {
        if self.open_category == OpenCategory::NotOpen {
            // NS-2: not-open data is never in scope of authorized operation.
            return Authorizability { authorizable: false, rule: Some("NS-2") };
        }
        if self.security_grade == SecurityGrade::Core {
            // WF-16 (and ZJK-15): data whose authorized operation endangers or may endanger national
            // security or harm the public interest is never authorized. Core data is by law the
            // data that concerns national security and major public interests (数据安全法 第二十一条).
            return Authorizability { authorizable: false, rule: Some("WF-16") };
        }
        if self.provenance.kind == ProvenanceKind::SharedIn && !self.provenance.provider_consent {
            // SX-5 (and ZJK-15): shared-in data needs the provider's consent first.
            return Authorizability { authorizable: false, rule: Some("SX-5") };
        }
        Authorizability { authorizable: true, rule: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorizability {
    pub authorizable: bool,
    pub rule: Option<&'static str>,
}

/// An action on a resource's review flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Edit,
    Submit,
    Publish,
    Reject,
    Withdraw,
    ProposeRevision,
    DecideRevision,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Submit => "submit",
            Action::Publish => "publish",
            Action::Reject => "reject",
            Action::Withdraw => "withdraw",
            Action::ProposeRevision => "propose a revision",
            Action::DecideRevision => "decide on the revision",
        }
    }
}

/// An action the resource's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: ResourceState,
    pub action: Action,
    pub allowed_in: Vec<ResourceState>,
}

/// The state after `action` from `from`, or why not.
pub fn transition(
    from: ResourceState,
    action: Action,
    has_pending_revision: bool,
) -> Result<ResourceState, InvalidTransition> {
    use ResourceState::*;
    let (allowed_in, to): (&[ResourceState], ResourceState) = match action {
        Action::Edit => (&[Draft, Rejected], Draft),
        Action::Submit => (&[Draft, Rejected], Submitted),
        Action::Publish => (&[Submitted], Published),
        Action::Reject => (&[Submitted], Rejected),
        Action::Withdraw => (&[Published], Withdrawn),
        Action::ProposeRevision => (&[Published], Published),
        Action::DecideRevision => (&[Published], Published),
    };
    let pending_ok = match action {
        Action::ProposeRevision => !has_pending_revision,
        Action::DecideRevision => has_pending_revision,
        _ => true,
    };
    if allowed_in.contains(&from) && pending_ok {
        Ok(to)
    } else {
        Err(InvalidTransition { from, action, allowed_in: allowed_in.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> ResourceContent {
        ResourceContent {
            name: "企业登记信息".into(),
            code: "SX-SCJG-001".into(),
            source_unit: "陕西省市场监督管理局".into(),
            sector: "market_regulation".into(),
            format: "table".into(),
            update_frequency: UpdateFrequency::Daily,
            open_category: OpenCategory::Conditional,
            security_grade: SecurityGrade::General,
            quality_requirements: String::new(),
            fields: vec![
                FieldSpec {
                    name: "credit_code".into(),
                    data_type: DataType::Text,
                    sensitivity: Sensitivity::None,
                    pii_kind: None,
                    description: String::new(),
                },
                FieldSpec {
                    name: "legal_person_id".into(),
                    data_type: DataType::Text,
                    sensitivity: Sensitivity::SensitivePersonal,
                    pii_kind: Some(PiiKind::IdCard),
                    description: String::new(),
                },
            ],
            provenance: Provenance { kind: ProvenanceKind::Collected, provider: None, provider_consent: false },
        }
    }

    #[test]
    fn a_complete_resource_is_valid_and_authorizable() {
        assert_eq!(sample().validate(), Ok(()));
        assert_eq!(sample().authorizability(), Authorizability { authorizable: true, rule: None });
    }

    #[test]
    fn not_open_data_is_never_authorizable_ns_2() {
        let mut r = sample();
        r.open_category = OpenCategory::NotOpen;
        assert_eq!(r.authorizability(), Authorizability { authorizable: false, rule: Some("NS-2") });
    }

    #[test]
    fn shared_in_data_without_consent_is_not_authorizable_sx_5() {
        let mut r = sample();
        r.provenance = Provenance {
            kind: ProvenanceKind::SharedIn,
            provider: Some("甘肃省大数据中心".into()),
            provider_consent: false,
        };
        assert_eq!(r.authorizability(), Authorizability { authorizable: false, rule: Some("SX-5") });
        r.provenance.provider_consent = true;
        assert!(r.authorizability().authorizable);
    }

    #[test]
    fn personal_fields_need_their_pii_kind() {
        let mut r = sample();
        r.fields[1].pii_kind = None;
        assert_eq!(r.validate().unwrap_err().field, "fields[1].pii_kind");
    }

    #[test]
    fn duplicate_and_malformed_field_names_are_named() {
        let mut r = sample();
        r.fields[1].name = "credit_code".into();
        assert_eq!(r.validate().unwrap_err().field, "fields[1].name");
        r.fields[1].name = "Bad Name".into();
        assert_eq!(r.validate().unwrap_err().field, "fields[1].name");
    }

    #[test]
    fn shared_in_needs_a_provider() {
        let mut r = sample();
        r.provenance.kind = ProvenanceKind::SharedIn;
        assert_eq!(r.validate().unwrap_err().field, "provenance.provider");
    }

    #[test]
    fn the_review_flow_zjk_7() {
        use ResourceState::*;
        assert_eq!(transition(Draft, Action::Submit, false), Ok(Submitted));
        assert_eq!(transition(Submitted, Action::Publish, false), Ok(Published));
        assert_eq!(transition(Submitted, Action::Reject, false), Ok(Rejected));
        assert_eq!(transition(Rejected, Action::Edit, false), Ok(Draft));
        assert_eq!(transition(Published, Action::Withdraw, false), Ok(Withdrawn));
        let err = transition(Draft, Action::Publish, false).unwrap_err();
        assert_eq!(err.allowed_in, vec![Submitted]);
        assert!(
            transition(Published, Action::Edit, false).is_err(),
            "a published resource changes only by a new version"
        );
        assert!(transition(Published, Action::ProposeRevision, true).is_err(), "one pending revision at a time");
        assert!(transition(Published, Action::DecideRevision, false).is_err());
        assert!(transition(Withdrawn, Action::Publish, false).is_err());
    }
}
