//! Authorization's rules as plain functions over plain types.

pub mod agreement;
pub mod plan;
pub mod selection;

/// What the rules' tests share: dates from text and the built-in profiles.
#[cfg(test)]
pub(crate) mod testing {
    pub fn d(s: &str) -> chrono::NaiveDate {
        s.parse().unwrap()
    }

    pub fn profile(code: &str) -> platform_policy::Profile {
        platform_policy::Profiles::built_in().unwrap().resolve(code).unwrap()
    }
}
