//! Jurisdictions and their policy profiles.
//!
//! Where jurisdictions differ, the difference is data: every number and switch a rule sets lives
//! in a profile file under `profiles/`, each value with the id of the rule it comes from. A value
//! a jurisdiction's seed does not set is inherited from its parent, and finally from the national
//! defaults (`000000-national.toml`). Code asks [`Profiles::resolve`] and never writes the number.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What `rule` says where no rule of the jurisdiction applies the value at all.
pub const PLATFORM_DEFAULT: &str = "platform default";

/// A value and the rule it is applied under.
///
/// `rule` is the id a check cites when it applies the value, or [`PLATFORM_DEFAULT`] where no
/// seed rule of the jurisdiction applies it. `source` is present exactly when no seed of the
/// jurisdiction (or of the parent it inherits from) sets the number itself: the value is then a
/// platform default, and `source` says where the platform took it from, so that an official
/// knows what to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruled<T> {
    pub value: T,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl<T> Ruled<T> {
    /// Whether the value is the platform's own default rather than a seed's.
    pub fn is_platform_default(&self) -> bool {
        self.source.is_some() || self.rule == PLATFORM_DEFAULT
    }
}

/// A deadline expressed the way its rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Months(u32),
    WorkingDays(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    National,
    Province,
    City,
    District,
}

/// One profile file as written; absent values inherit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileValues {
    pub objection_deadline_working_days: Option<Ruled<u32>>,
    pub log_retention_months: Option<Ruled<u32>>,
    pub max_agreement_term_months: Option<Ruled<u32>>,
    pub fixed_agreement_term: Option<Ruled<bool>>,
    pub secondary_max_term_months: Option<Ruled<u32>>,
    /// The last months of a primary agreement's term in which its renewal is applied for (NS-15).
    pub renewal_window_months: Option<Ruled<u32>>,
    /// How a primary agreement is renewed: `application_in_window` (NS-15) or
    /// `decision_after_expiry`, on an evaluation record (LZ-6, LZ-11).
    pub renewal: Option<Ruled<String>>,
    /// The last months of a secondary authorization's term in which the partner applies to the
    /// primary operator to sign again (ZJK-17).
    pub secondary_renewal_window_months: Option<Ruled<u32>>,
    /// Whether the primary operator may itself develop products and so hold data grants under its
    /// own agreement; where it may not (ZJK-13), only partners under a sub-authorization do.
    pub primary_operator_develops: Option<Ruled<bool>>,
    pub plan_filing_deadline: Option<Ruled<Period>>,
    pub agreement_filing_deadline: Option<Ruled<Period>>,
    pub security_incident_lookback_years: Option<Ruled<u32>>,
    /// Which incidents in the look-back exclude an operator: `any` (WF-13, ZJK-12) or `major` (LZ-3).
    pub security_incident_severity: Option<Ruled<String>>,
    /// Whether being listed for dishonesty (失信被执行人 etc.) excludes an operator (ZJK-12, NS-11, LZ-3).
    pub dishonesty_listing_excludes: Option<Ruled<bool>>,
    /// How long the public notice of a selection's result runs; objections are raised inside it
    /// and the agreement follows only after it (WF-12, NS-13).
    pub selection_notice_period: Option<Ruled<Period>>,
    pub min_credit_rating: Option<Ruled<String>>,
    pub min_operating_years: Option<Ruled<u32>>,
    pub access_during_rectification: Option<Ruled<String>>,
    pub personal_information_in_scope: Option<Ruled<String>>,
    pub sub_authorization: Option<Ruled<String>>,
    pub modes: Option<Ruled<Vec<String>>>,
    pub joint_review_for_conditional: Option<Ruled<bool>>,
    pub min_query_group_size: Option<Ruled<u32>>,
    pub refusal_burst_threshold: Option<Ruled<u32>>,
    /// What an operator does on finding harm to national security, the public interest, personal
    /// information or trade secrets: `stop_and_report` (NS-26 (三): 立即停止相应的数据运营活动，并及时
    /// 如实…报告). Unset elsewhere: an operator may still stop and report, as a platform measure.
    pub harm_self_report: Option<Ruled<String>>,
    /// Whether the primary operator may end a partner's sub-authorization on its own
    /// (`by_primary_operator`: ZJK-35 单方面终止协议; NS-27 (三) 终止服务协议).
    pub sub_authorization_termination: Option<Ruled<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jurisdiction {
    pub code: String,
    pub name: String,
    pub level: Level,
    #[serde(default)]
    pub parent: Option<String>,
    pub version: u32,
    #[serde(rename = "profile", default)]
    pub values: ProfileValues,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("profile {file}: {reason}")]
    Data { file: String, reason: String },
    #[error("unknown jurisdiction `{0}`")]
    UnknownJurisdiction(String),
    #[error("jurisdiction `{jurisdiction}` has no value for `{key}` and no parent sets one")]
    Unset { jurisdiction: String, key: &'static str },
}

/// The loaded profiles, by jurisdiction code.
#[derive(Debug, Clone)]
pub struct Profiles {
    by_code: BTreeMap<String, Jurisdiction>,
}

macro_rules! built_in {
    ($($file:literal),* $(,)?) => { &[$(($file, include_str!(concat!("../profiles/", $file)))),*] };
}

/// Applies macro `$m` to the list of every [`ProfileValues`] field.
macro_rules! each_field {
    ($m:ident) => {
        $m!(
            objection_deadline_working_days,
            log_retention_months,
            max_agreement_term_months,
            fixed_agreement_term,
            secondary_max_term_months,
            renewal_window_months,
            renewal,
            secondary_renewal_window_months,
            primary_operator_develops,
            plan_filing_deadline,
            agreement_filing_deadline,
            security_incident_lookback_years,
            security_incident_severity,
            dishonesty_listing_excludes,
            selection_notice_period,
            min_credit_rating,
            min_operating_years,
            access_during_rectification,
            personal_information_in_scope,
            sub_authorization,
            modes,
            joint_review_for_conditional,
            min_query_group_size,
            refusal_burst_threshold,
            harm_self_report,
            sub_authorization_termination
        )
    };
}

const BUILT_IN: &[(&str, &str)] = built_in!(
    "000000-national.toml",
    "610000-shaanxi.toml",
    "610100-xian.toml",
    "370700-weifang.toml",
    "130700-zhangjiakou.toml",
    "620100-lanzhou.toml",
    "440305-nanshan.toml",
);

impl Profiles {
    /// The profiles shipped with the platform.
    pub fn built_in() -> Result<Profiles, PolicyError> {
        Self::from_files(BUILT_IN.iter().copied())
    }

    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Profiles, PolicyError> {
        let mut by_code = BTreeMap::new();
        for (file, text) in files {
            let j: Jurisdiction =
                toml::from_str(text).map_err(|e| PolicyError::Data { file: file.into(), reason: e.to_string() })?;
            by_code.insert(j.code.clone(), j);
        }
        for j in by_code.values() {
            if let Some(p) = &j.parent
                && !by_code.contains_key(p)
            {
                return Err(PolicyError::Data { file: j.code.clone(), reason: format!("parent `{p}` is not loaded") });
            }
        }
        Ok(Profiles { by_code })
    }

    pub fn jurisdiction(&self, code: &str) -> Result<&Jurisdiction, PolicyError> {
        self.by_code.get(code).ok_or_else(|| PolicyError::UnknownJurisdiction(code.into()))
    }

    pub fn jurisdictions(&self) -> impl Iterator<Item = &Jurisdiction> {
        self.by_code.values()
    }

    /// The chain from `code` up to the national defaults.
    fn chain(&self, code: &str) -> Result<Vec<&Jurisdiction>, PolicyError> {
        let mut out = vec![self.jurisdiction(code)?];
        while let Some(parent) = out.last().and_then(|j| j.parent.as_deref()) {
            if out.len() > 16 {
                return Err(PolicyError::Data { file: code.into(), reason: "parent cycle".into() });
            }
            out.push(self.jurisdiction(parent)?);
        }
        Ok(out)
    }

    /// The effective profile of `code`: each value from the nearest jurisdiction that sets it.
    pub fn resolve(&self, code: &str) -> Result<Profile, PolicyError> {
        let chain = self.chain(code)?;
        let pick = |f: &dyn Fn(&ProfileValues) -> bool| chain.iter().find(|j| f(&j.values)).map(|j| &j.values);
        macro_rules! inherit {
            ($($field:ident),*) => {
                ProfileValues { $($field: pick(&|v| v.$field.is_some()).and_then(|v| v.$field.clone()),)* }
            };
        }
        let values = each_field!(inherit);
        let own = chain[0];
        Ok(Profile { jurisdiction: own.code.clone(), version: own.version, values })
    }
}

/// The effective profile of one jurisdiction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub jurisdiction: String,
    pub version: u32,
    pub values: ProfileValues,
}

impl Profile {
    /// Each value that is set: its key, the rule it cites and, for a platform default, its source.
    pub fn rules(&self) -> Vec<(&'static str, &str, Option<&str>)> {
        let v = &self.values;
        let mut out = Vec::new();
        macro_rules! collect {
            ($($field:ident),*) => {
                $(if let Some(r) = v.$field.as_ref() {
                    out.push((stringify!($field), r.rule.as_str(), r.source.as_deref()));
                })*
            };
        }
        each_field!(collect);
        out
    }

    /// The keys whose value is a platform default, not a seed's (see [`Ruled`]).
    pub fn platform_defaults(&self) -> Vec<String> {
        self.rules()
            .into_iter()
            .filter(|(_, rule, source)| source.is_some() || *rule == PLATFORM_DEFAULT)
            .map(|(key, _, _)| key.to_string())
            .collect()
    }

    /// Working days to handle a data-quality objection (LZ-5 and the national default).
    pub fn objection_deadline(&self) -> Result<&Ruled<u32>, PolicyError> {
        self.values.objection_deadline_working_days.as_ref().ok_or_else(|| PolicyError::Unset {
            jurisdiction: self.jurisdiction.clone(),
            key: "objection_deadline_working_days",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_load() {
        let p = Profiles::built_in().unwrap();
        assert_eq!(p.jurisdictions().count(), 7);
    }

    #[test]
    fn lanzhou_objections_are_due_in_15_working_days_lz_5() {
        let p = Profiles::built_in().unwrap().resolve("620100").unwrap();
        let d = p.objection_deadline().unwrap();
        assert_eq!((d.value, d.rule.as_str()), (15, "LZ-5"));
    }

    #[test]
    fn a_city_inherits_its_province_sx_19() {
        let p = Profiles::built_in().unwrap().resolve("610100").unwrap();
        let filing = Ruled { value: Period::Months(1), rule: "SX-19".into(), source: None };
        assert_eq!(p.values.plan_filing_deadline.unwrap(), filing);
        assert_eq!(p.values.max_agreement_term_months.unwrap().value, 60);
    }

    #[test]
    fn weifang_files_plans_in_20_working_days_wf_11() {
        let p = Profiles::built_in().unwrap().resolve("370700").unwrap();
        assert_eq!(p.values.plan_filing_deadline.unwrap().value, Period::WorkingDays(20));
    }

    #[test]
    fn zhangjiakou_never_puts_personal_information_in_scope_zjk_15() {
        let p = Profiles::built_in().unwrap().resolve("130700").unwrap();
        assert_eq!(p.values.personal_information_in_scope.unwrap().value, "never");
        // Unset in the city's file: the national default applies.
        assert_eq!(p.values.objection_deadline_working_days.unwrap().value, 15);
    }

    #[test]
    fn nanshan_terms_are_3_years_with_a_6_month_window_ns_15() {
        let p = Profiles::built_in().unwrap().resolve("440305").unwrap();
        assert_eq!(p.values.max_agreement_term_months.unwrap().value, 36);
        assert_eq!(p.values.renewal_window_months.unwrap().value, 6);
    }

    /// The seed prefix of each jurisdiction whose own seed sets values.
    const SEED_PREFIX: [(&str, &str); 5] =
        [("610000", "SX-"), ("370700", "WF-"), ("130700", "ZJK-"), ("620100", "LZ-"), ("440305", "NS-")];

    #[test]
    fn a_value_cites_a_rule_of_its_own_jurisdiction_or_says_it_is_a_platform_default() {
        let all = Profiles::built_in().unwrap();
        for j in all.jurisdictions() {
            let own: Vec<&str> = all
                .chain(&j.code)
                .unwrap()
                .iter()
                .filter_map(|c| SEED_PREFIX.iter().find(|(code, _)| *code == c.code).map(|(_, p)| *p))
                .collect();
            let p = all.resolve(&j.code).unwrap();
            let defaults = p.platform_defaults();
            for (key, rule, source) in p.rules() {
                let own_rule = own.iter().any(|prefix| rule.starts_with(prefix));
                assert!(
                    own_rule || defaults.iter().any(|d| d == key),
                    "{} `{key}` cites {rule}, a rule of another jurisdiction, without saying it is a platform default",
                    j.code
                );
                if rule == PLATFORM_DEFAULT {
                    assert!(source.is_some(), "{} `{key}` is a platform default without a source", j.code);
                }
            }
        }
        // The national file is all platform defaults: it has no seed of its own.
        let national = all.resolve("000000").unwrap();
        assert_eq!(national.platform_defaults().len(), national.rules().len());
    }

    #[test]
    fn the_60_month_cap_is_a_platform_default_in_zhangjiakou_and_sx_22_in_shaanxi() {
        let all = Profiles::built_in().unwrap();
        let zjk = all.resolve("130700").unwrap().values.max_agreement_term_months.unwrap();
        assert_eq!((zjk.value, zjk.rule.as_str()), (60, PLATFORM_DEFAULT));
        assert!(zjk.source.is_some());
        let sx = all.resolve("610100").unwrap().values.max_agreement_term_months.unwrap();
        assert_eq!((sx.value, sx.rule.as_str(), sx.source), (60, "SX-22", None));
        // NS-2 sets open categories, not masking; SX-22 sets agreement clauses, not masking.
        for code in ["610000", "370700", "620100", "440305"] {
            let pi = all.resolve(code).unwrap().values.personal_information_in_scope.unwrap();
            assert_eq!((pi.value.as_str(), pi.rule.as_str()), ("masked", PLATFORM_DEFAULT), "{code}");
        }
        // Nanshan's notice is required by NS-13, its length is the platform's.
        let ns = all.resolve("440305").unwrap();
        assert!(ns.platform_defaults().contains(&"selection_notice_period".to_string()));
        assert!(!ns.platform_defaults().contains(&"max_agreement_term_months".to_string()));
    }

    #[test]
    fn only_zhangjiakou_keeps_its_primary_operator_out_of_development_zjk_13() {
        let all = Profiles::built_in().unwrap();
        let zjk = all.resolve("130700").unwrap().values.primary_operator_develops.unwrap();
        assert_eq!((zjk.value, zjk.rule.as_str()), (false, "ZJK-13"));
        for code in ["610000", "610100", "370700", "620100", "440305"] {
            let v = all.resolve(code).unwrap().values.primary_operator_develops.unwrap();
            assert!(v.value && v.is_platform_default(), "{code}");
        }
    }

    #[test]
    fn the_3_month_window_is_zhangjiakou_partners_zjk_17_and_lanzhou_decides_after_expiry_lz_6() {
        let all = Profiles::built_in().unwrap();
        let zjk = all.resolve("130700").unwrap().values;
        assert_eq!(
            zjk.secondary_renewal_window_months.unwrap(),
            Ruled { value: 3, rule: "ZJK-17".into(), source: None }
        );
        assert!(zjk.renewal_window_months.is_none(), "ZJK-17's window is not the primary agreement's");
        let lz = all.resolve("620100").unwrap().values.renewal.unwrap();
        assert_eq!((lz.value.as_str(), lz.rule.as_str()), ("decision_after_expiry", "LZ-6"));
        let ns = all.resolve("440305").unwrap().values.renewal.unwrap();
        assert_eq!((ns.value.as_str(), ns.rule.as_str()), ("application_in_window", "NS-15"));
    }

    #[test]
    fn unknown_keys_and_parents_are_refused() {
        let bad = [("x.toml", "code = \"1\"\nname = \"x\"\nlevel = \"city\"\nversion = 1\n[profile]\nmax_term = 3\n")];
        assert!(Profiles::from_files(bad).is_err());
        let orphan = [("y.toml", "code = \"2\"\nname = \"y\"\nlevel = \"city\"\nparent = \"9\"\nversion = 1\n")];
        assert!(Profiles::from_files(orphan).is_err());
        assert!(matches!(Profiles::built_in().unwrap().resolve("999999"), Err(PolicyError::UnknownJurisdiction(_))));
    }
}
