//! Automated output checks: what the airlock runs on an output (table, dataset, model, report)
//! before a person reviews it and before anything leaves the domain (DESIGN.md, issue 12).
//!
//! Pure functions over plain types: no I/O, no async, no clock. The same artefact with the same
//! [`Params`] always gets the same results, item by item in input order. Every number comes from
//! [`Params`], whose values carry the profile's rule id or say `platform default` and where it
//! comes from.
//!
//! - [`table::check_table`]: per cell, threshold and zeros (frequency tables), nk-dominance and
//!   the p-ratio rule (sum, mean), unsafe statistics (min, max, mode, median, percentiles); then
//!   margins that let a suppressed cell be derived, and cells that differ from a cell released
//!   earlier under the same grant by a group under the threshold.
//! - [`dataset::check_dataset`]: direct identifiers, k-anonymity over the quasi-identifiers,
//!   l-diversity of sensitive attributes.
//! - [`leakage`]: keyed hashes of the raw sensitive values; artefact tokens and dataset rows
//!   against them; model and report files always to review.
//!
//! The cell rules follow ACRO 1.0.2's definitions; `tests/acro_differential.rs` compares every
//! decision with ACRO's on random tables (`scripts/acro-venv.sh` installs it).
//!
//! Imported by the services that check and review outputs (sandbox-gateway, product-review);
//! it imports nothing of the platform.

pub mod dataset;
pub mod leakage;
pub mod outcome;
pub mod params;
pub mod secondary;
pub mod table;

pub use dataset::{Dataset, DatasetReport, FieldClass, FieldSpec, check_dataset};
pub use leakage::{ArtefactKind, LeakageIndex, RawTable, scan_dataset, scan_file, tokens};
pub use outcome::{Check, Finding, ItemResult, Outcome};
pub use params::{NkRule, Param, Params};
pub use table::{Cell, ReleasedCell, Statistic, Table, TableField, TableReport, check_table};
