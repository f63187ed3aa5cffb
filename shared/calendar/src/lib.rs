//! Dates in China Standard Time (UTC+8) and the official working-day calendar.
//!
//! The State Council's holiday arrangements live in `data/cn-official.toml`, one block per year;
//! a new year is a data change. A deadline that runs into a year with no arrangement loaded is
//! counted on weekends alone and marked [`Deadline::provisional`]; callers surface and alert on
//! it (`calendar_provisional_deadlines_total`), it is never silently final.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc, Weekday};
use serde::Deserialize;

/// China Standard Time, UTC+8, no daylight saving.
pub const CST: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// China Standard Time.
pub fn cst() -> FixedOffset {
    CST
}

use chrono::TimeZone as _;

/// The calendar date in China at instant `t`.
pub fn date_in_china(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&cst()).date_naive()
}

/// Today's date in China.
pub fn today_in_china() -> NaiveDate {
    date_in_china(Utc::now())
}

/// The first instant (UTC) of a China date, for "due at end of day" comparisons.
pub fn start_of_day_utc(d: NaiveDate) -> DateTime<Utc> {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    cst().from_local_datetime(&midnight).single().map(|t| t.with_timezone(&Utc)).unwrap_or_else(|| midnight.and_utc())
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar data is invalid: {0}")]
    Data(String),
}

#[derive(Deserialize)]
struct File {
    year: Vec<YearData>,
}

#[derive(Deserialize)]
struct YearData {
    year: i32,
    #[allow(dead_code)]
    source: String,
    days_off: Vec<(NaiveDate, NaiveDate)>,
    working_weekends: Vec<NaiveDate>,
}

/// A due date, and whether it rests on a year whose official arrangement is not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub date: NaiveDate,
    /// True when a year without loaded data was crossed: weekends only were skipped there.
    pub provisional: bool,
}

/// The working-day calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    years: BTreeMap<i32, (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>)>,
}

impl Calendar {
    /// The official calendar compiled into the binary.
    pub fn official() -> &'static Calendar {
        static CAL: std::sync::OnceLock<Calendar> = std::sync::OnceLock::new();
        CAL.get_or_init(|| {
            // The data file is checked by this crate's tests; a broken file fails them.
            Calendar::from_toml(include_str!("../data/cn-official.toml")).unwrap_or(Calendar { years: BTreeMap::new() })
        })
    }

    /// Parses calendar data in the format of `data/cn-official.toml`.
    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let file: File = toml::from_str(text).map_err(|e| CalendarError::Data(e.to_string()))?;
        let mut years = BTreeMap::new();
        for y in file.year {
            let mut off = BTreeSet::new();
            for (from, to) in y.days_off {
                if from.year() != y.year || to < from {
                    return Err(CalendarError::Data(format!("{}: bad range {from}..{to}", y.year)));
                }
                let mut d = from;
                while d <= to {
                    off.insert(d);
                    d += Duration::days(1);
                }
            }
            let work: BTreeSet<NaiveDate> = y.working_weekends.into_iter().collect();
            if let Some(bad) = work.iter().find(|d| !is_weekend(**d) || d.year() != y.year) {
                return Err(CalendarError::Data(format!(
                    "{bad} is listed as a working weekend but is not a weekend of {}",
                    y.year
                )));
            }
            years.insert(y.year, (off, work));
        }
        Ok(Calendar { years })
    }

    /// Whether the official arrangement for `year` is loaded.
    pub fn has_year(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// Whether `d` is a working day, and whether that answer is official (`true`) or weekends-only.
    pub fn is_working_day(&self, d: NaiveDate) -> (bool, bool) {
        match self.years.get(&d.year()) {
            Some((off, work)) => (work.contains(&d) || (!is_weekend(d) && !off.contains(&d)), true),
            None => (!is_weekend(d), false),
        }
    }

    /// The date `n` working days after `start` (`start` itself not counted).
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Deadline {
        let mut d = start;
        let mut left = n;
        let mut provisional = false;
        while left > 0 {
            d += Duration::days(1);
            let (working, official) = self.is_working_day(d);
            provisional |= !official;
            if working {
                left -= 1;
            }
        }
        Deadline { date: d, provisional }
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Adds calendar months, clamping to the month's last day (Jan 31 + 1 month = Feb 28/29).
pub fn add_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(months)).unwrap_or(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn official_data_loads_both_years() {
        let cal = Calendar::from_toml(include_str!("../data/cn-official.toml")).unwrap();
        assert!(cal.has_year(2025) && cal.has_year(2026));
    }

    #[test]
    fn holidays_are_off_and_adjusted_weekends_are_worked() {
        let cal = Calendar::official();
        assert_eq!(cal.is_working_day(date("2025-10-08")), (false, true)); // National Day, Wednesday
        assert_eq!(cal.is_working_day(date("2025-10-11")), (true, true)); // adjusted Saturday
        assert_eq!(cal.is_working_day(date("2026-02-14")), (true, true)); // adjusted Saturday before Spring Festival
        assert_eq!(cal.is_working_day(date("2026-02-23")), (false, true)); // Spring Festival, Monday
        assert_eq!(cal.is_working_day(date("2026-02-24")), (true, true));
    }

    #[test]
    fn fifteen_working_days_across_spring_festival_2026() {
        // Filed Friday 2026-02-13: Feb 14 (adjusted Saturday) is day 1, Feb 15–23 are off,
        // then Feb 24..27 are days 2–5, Feb 28 (adjusted Saturday) day 6, Mar 2..6 days 7–11,
        // Mar 9..12 days 12–15.
        let d = Calendar::official().add_working_days(date("2026-02-13"), 15);
        assert_eq!(d, Deadline { date: date("2026-03-12"), provisional: false });
    }

    #[test]
    fn twenty_working_days_across_national_day_2025() {
        // From Tuesday 2025-09-30: Oct 1–8 off; Oct 9, 10, 11 (adjusted Saturday) are 1–3;
        // Oct 13–17 4–8; 20–24 9–13; 27–31 14–18; Nov 3, 4 are 19, 20.
        let d = Calendar::official().add_working_days(date("2025-09-30"), 20);
        assert_eq!(d.date, date("2025-11-04"));
        assert!(!d.provisional);
    }

    #[test]
    fn a_deadline_into_an_unloaded_year_is_provisional() {
        let d = Calendar::official().add_working_days(date("2026-12-28"), 5);
        // Dec 29, 30, 31 (2026 data), then Jan 1 2027 (a Friday, weekends-only rule) and Jan 4.
        assert_eq!(d.date, date("2027-01-04"));
        assert!(d.provisional);
    }

    #[test]
    fn cst_dates_turn_at_16_utc() {
        let t: DateTime<Utc> = "2026-03-01T15:59:59Z".parse().unwrap();
        assert_eq!(date_in_china(t), date("2026-03-01"));
        let t: DateTime<Utc> = "2026-03-01T16:00:00Z".parse().unwrap();
        assert_eq!(date_in_china(t), date("2026-03-02"));
        assert_eq!(start_of_day_utc(date("2026-03-02")), t);
    }

    #[test]
    fn a_listed_working_weekend_that_is_a_weekday_is_refused() {
        let bad = "[[year]]\nyear = 2030\nsource = \"x\"\ndays_off = []\nworking_weekends = [\"2030-01-02\"]\n";
        assert!(Calendar::from_toml(bad).is_err());
    }

    #[test]
    fn months_clamp_to_month_end() {
        assert_eq!(add_months(date("2026-01-31"), 1), date("2026-02-28"));
    }
}
