//! Keyset pages, the same in every service: a page size checked against one limit, rows fetched
//! one beyond the page to know whether more follow, and the next page's cursor.

use platform_problems::Problem;
use serde::{Deserialize, Serialize};

/// Items per page when the caller names no limit.
pub const DEFAULT_PAGE: i64 = 20;
/// Largest page a list returns.
pub const MAX_PAGE: i64 = 200;

/// One page of a list; pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The page size asked for: `DEFAULT_PAGE` when absent, otherwise 1..=`MAX_PAGE`.
pub fn page_size(limit: Option<i64>) -> Result<i64, Problem> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Problem::invalid_field("limit", format!("must be between 1 and {MAX_PAGE}"))),
    }
}

impl<T> Page<T> {
    /// The page of `size` items from `rows`, fetched with `size + 1` rows: the extra row only
    /// says that more follow, and the last item's cursor leads to them.
    pub fn from_fetched<R, E>(
        mut rows: Vec<R>,
        size: i64,
        cursor_of: impl Fn(&R) -> String,
        view: impl Fn(R) -> Result<T, E>,
    ) -> Result<Page<T>, E> {
        let more = rows.len() as i64 > size;
        rows.truncate(size.max(0) as usize);
        let next_cursor = if more { rows.last().map(&cursor_of) } else { None };
        Ok(Page { items: rows.into_iter().map(view).collect::<Result<_, E>>()?, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_makes_a_cursor() {
        let p: Page<i32> = Page::from_fetched(vec![1, 2, 3], 2, |r| r.to_string(), Ok::<_, ()>)
            .unwrap_or(Page { items: vec![], next_cursor: None });
        assert_eq!((p.items, p.next_cursor.as_deref()), (vec![1, 2], Some("2")));
        let p: Page<i32> = Page::from_fetched(vec![1, 2], 2, |r| r.to_string(), Ok::<_, ()>)
            .unwrap_or(Page { items: vec![], next_cursor: None });
        assert_eq!((p.items, p.next_cursor), (vec![1, 2], None));
    }

    #[test]
    fn page_sizes_are_checked() {
        assert_eq!(page_size(None).ok(), Some(DEFAULT_PAGE));
        assert_eq!(page_size(Some(0)).map_err(|p| p.field), Err(Some("limit".to_string())));
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }
}
