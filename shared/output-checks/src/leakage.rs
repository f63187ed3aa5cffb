//! Raw-data leakage (WF-26, ZJK-21: no raw data out, nor outputs it can be restored from).
//!
//! A keyed hash (HMAC-SHA256) of every sensitive value of the granted raw data makes the index, so
//! the scan holds no plain value and a hash seen outside tells nothing without the key. Any token
//! of an artefact whose hash is in the index fails; a dataset row equal to a raw row on all of its
//! fields fails. Model and report files are scanned the same way and always go to a person.
//!
//! Values are compared trimmed and ASCII-lowercased (an ID number's `X` and `x` are one value);
//! values shorter than `leak_min_chars` are not indexed (see [`crate::Params::leak_min_chars`]).

use std::collections::{HashMap, HashSet};

use hmac::digest::InvalidLength;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::dataset::Dataset;
use crate::outcome::{Check, Finding, ItemResult, Outcome};
use crate::params::{Params, rules};

type Digest = [u8; 32];

/// The granted raw data, as the gateway holds it: field names, which of them the catalog marks
/// sensitive (personal information, trade secret), and the rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawTable {
    pub fields: Vec<String>,
    pub sensitive: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// Keyed hashes of the raw data's sensitive values, each with the raw field it came from.
#[derive(Clone)]
pub struct LeakageIndex {
    mac: Hmac<Sha256>,
    values: HashMap<Digest, usize>,
    fields: Vec<String>,
    min_chars: usize,
}

impl std::fmt::Debug for LeakageIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeakageIndex").field("values", &self.values.len()).field("fields", &self.fields).finish()
    }
}

impl LeakageIndex {
    /// Indexes every sensitive value of `raw` under `key` (the grant's scan key). HMAC takes a key
    /// of any length, so the error is never seen in practice.
    pub fn new(key: &[u8], raw: &RawTable, params: &Params) -> Result<Self, InvalidLength> {
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)?;
        let mut index =
            Self { mac, values: HashMap::new(), fields: raw.fields.clone(), min_chars: params.leak_min_chars.value };
        for row in &raw.rows {
            for (f, value) in row.iter().enumerate() {
                if raw.sensitive.get(f).copied().unwrap_or(false) && index.indexable(value) {
                    let digest = index.value_hash(value);
                    index.values.entry(digest).or_insert(f);
                }
            }
        }
        Ok(index)
    }

    /// The number of distinct sensitive values indexed.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw field whose sensitive value `token` is, if it is one.
    pub fn matches(&self, token: &str) -> Option<&str> {
        if !self.indexable(token) {
            return None;
        }
        self.values.get(&self.value_hash(token)).map(|&f| self.fields[f].as_str())
    }

    fn indexable(&self, value: &str) -> bool {
        let v = value.trim();
        !v.is_empty() && v.chars().take(self.min_chars).count() >= self.min_chars
    }

    fn value_hash(&self, value: &str) -> Digest {
        let mut mac = self.mac.clone();
        mac.update(value.trim().to_ascii_lowercase().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A row's hash over the given values: each length-prefixed, so that no two rows collide by
    /// where their values split.
    fn row_hash<'a>(&self, values: impl Iterator<Item = &'a str>) -> Digest {
        let mut mac = self.mac.clone();
        for v in values {
            let v = v.trim();
            mac.update(&(v.len() as u64).to_le_bytes());
            mac.update(v.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// What an artefact is; model and report files always go to human review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtefactKind {
    Table,
    Dataset,
    Model,
    Report,
    Interface,
}

/// Splits an artefact's text into tokens: runs of characters between whitespace, ASCII
/// punctuation other than `. - _ @ + /` (kept: e-mail addresses, dates, phone numbers) and CJK
/// punctuation.
pub fn tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| {
        c.is_whitespace()
            || (c.is_ascii_punctuation() && !matches!(c, '.' | '-' | '_' | '@' | '+' | '/'))
            || matches!(
                c,
                '，' | '。'
                    | '；'
                    | '：'
                    | '、'
                    | '（'
                    | '）'
                    | '【'
                    | '】'
                    | '《'
                    | '》'
                    | '“'
                    | '”'
                    | '‘'
                    | '’'
                    | '！'
                    | '？'
            )
    })
    .filter(|t| !t.is_empty())
}

/// Scans a file's tokens: every token that is a raw sensitive value fails (the finding names the
/// token's position and the raw field, never the value); model and report files get a review
/// finding whatever the scan found.
pub fn scan_file<'a>(
    index: &LeakageIndex,
    kind: ArtefactKind,
    tokens: impl IntoIterator<Item = &'a str>,
) -> ItemResult<ArtefactKind> {
    let mut findings: Vec<Finding> = tokens
        .into_iter()
        .enumerate()
        .filter_map(|(position, token)| {
            index.matches(token).map(|field| {
                Finding::new(Check::RawValue, Outcome::Fail, rules::RAW_DATA)
                    .number("token", position as f64)
                    .note(format!("a value of the raw field {field}"))
            })
        })
        .collect();
    if findings.is_empty() {
        findings.push(Finding::new(Check::RawValue, Outcome::Pass, rules::RAW_DATA));
    }
    if matches!(kind, ArtefactKind::Model | ArtefactKind::Report) {
        findings.push(
            Finding::new(Check::HumanReview, Outcome::Review, rules::PRODUCT_REVIEW)
                .note("model and report files always go to human review"),
        );
    }
    ItemResult::new(kind, findings)
}

/// Scans a dataset product against the raw data, row by row (in input order): every value that
/// is a raw sensitive value fails (RawValue), and so does a row equal to a raw row on all of its
/// fields (RawRow). Rows are compared only when every field of the dataset is a copy of a raw
/// field (`FieldSpec::source`); a derived field makes a row differ from any raw row.
pub fn scan_dataset(index: &LeakageIndex, raw: &RawTable, dataset: &Dataset) -> Vec<ItemResult<usize>> {
    let raw_field: HashMap<&str, usize> = raw.fields.iter().enumerate().map(|(i, f)| (f.as_str(), i)).collect();
    let sources: Option<Vec<usize>> =
        dataset.fields.iter().map(|f| f.source.as_deref().and_then(|s| raw_field.get(s).copied())).collect();
    let raw_rows: Option<HashSet<Digest>> = sources.as_ref().map(|sources| {
        raw.rows
            .iter()
            .map(|row| index.row_hash(sources.iter().map(|&s| row.get(s).map_or("", String::as_str))))
            .collect()
    });

    (0..dataset.rows.len())
        .map(|r| {
            let mut findings: Vec<Finding> = (0..dataset.fields.len())
                .filter_map(|f| {
                    index.matches(dataset.value(r, f)).map(|raw_field| {
                        Finding::new(Check::RawValue, Outcome::Fail, rules::RAW_DATA)
                            .number("field", f as f64)
                            .note(format!("{} holds a value of the raw field {raw_field}", dataset.fields[f].name))
                    })
                })
                .collect();
            if findings.is_empty() {
                findings.push(Finding::new(Check::RawValue, Outcome::Pass, rules::RAW_DATA));
            }
            if let Some(raw_rows) = &raw_rows {
                let hash = index.row_hash((0..dataset.fields.len()).map(|f| dataset.value(r, f)));
                findings.push(Finding::unless(Check::RawRow, raw_rows.contains(&hash), Outcome::Fail, rules::RAW_DATA));
            }
            ItemResult::new(r, findings)
        })
        .collect()
}
