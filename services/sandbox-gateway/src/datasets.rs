//! Staged data: a data source unit streams a resource's data as CSV (UTF-8, header row) or JSON
//! lines; each record is checked against the catalog's field schema and streamed into
//! PostgreSQL with `COPY … FROM STDIN` in chunks, so a load of several gigabytes is never held
//! in memory. A load is all or nothing: one rejected record and nothing is stored, and the
//! answer lists rejected records with line numbers and reasons. A load that passes becomes the
//! resource's next dataset version and refreshes the workspaces that hold the resource.

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use futures::{SinkExt as _, Stream, StreamExt as _};
use platform_auth::Caller;
use serde::Serialize;
use uuid::Uuid;

use crate::app::State;
use crate::audit::{self, Record};
use crate::catalog_view::Field;
use crate::errors::{Error, Result};
use crate::limits::{COPY_CHUNK_BYTES, MAX_RECORD_BYTES, MAX_REJECTS_REPORTED};
use crate::workspaces::{quote_ident, refresh_for_resource};

/// The rule a load answers to: only reviewed, catalogued data enters (ZJK-20, NS-22 — importing
/// other data needs review; the catalog's field schema is that review's result).
pub const LOAD_RULE: &str = "ZJK-20";

/// The PostgreSQL type of a catalog data type.
pub fn sql_type(data_type: &str) -> &'static str {
    match data_type {
        "integer" => "bigint",
        "decimal" => "numeric",
        "boolean" => "boolean",
        "date" => "date",
        "timestamp" => "timestamptz",
        _ => "text",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Jsonl,
}

/// A stored dataset version.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct Dataset {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub resource_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub version: i32,
    #[diesel(sql_type = Text)]
    pub format: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub row_count: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub byte_count: i64,
    #[diesel(sql_type = Text)]
    pub loaded_by: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub loaded_at: chrono::DateTime<chrono::Utc>,
}

/// A value as COPY's text format wants it (`\N` for NULL).
fn copy_escape(out: &mut BytesMut, v: Option<&str>) {
    match v {
        None => out.extend_from_slice(b"\\N"),
        Some(s) => {
            for b in s.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.extend_from_slice(&[b]),
                }
            }
        }
    }
}

fn is_decimal(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = body.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    (!int.is_empty() || frac.is_some_and(|f| !f.is_empty())) && digits(int) && frac.is_none_or(digits)
}

/// Checks one value against its field's data type; returns the value COPY gets.
pub fn check_value(field: &Field, raw: &str) -> std::result::Result<Option<String>, String> {
    if raw.contains('\0') {
        // PostgreSQL text cannot hold U+0000: bad input, named here, not a store failure later.
        return Err("contains a NUL character (U+0000), which no field can hold".into());
    }
    let v = raw.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let ok = |s: String| Ok(Some(s));
    match field.data_type.as_str() {
        "integer" => v.parse::<i64>().map(|n| Some(n.to_string())).map_err(|_| format!("`{v}` is not an integer")),
        "decimal" if is_decimal(v) => ok(v.to_string()),
        "decimal" => Err(format!("`{v}` is not a decimal number")),
        "boolean" => match v.to_lowercase().as_str() {
            "true" | "t" | "1" | "yes" | "是" => ok("t".into()),
            "false" | "f" | "0" | "no" | "否" => ok("f".into()),
            _ => Err(format!("`{v}` is not a boolean")),
        },
        "date" => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(|d| Some(d.to_string()))
            .map_err(|_| format!("`{v}` is not a date (YYYY-MM-DD)")),
        "timestamp" => DateTime::parse_from_rfc3339(v)
            .or_else(|_| {
                NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S").map(|n| {
                    // A timestamp without an offset is China Standard Time.
                    let cst = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| chrono::Utc.fix());
                    n.and_local_timezone(cst).single().unwrap_or_else(|| n.and_utc().fixed_offset())
                })
            })
            .map(|t| Some(t.to_rfc3339()))
            .map_err(|_| format!("`{v}` is not a timestamp (RFC 3339 or YYYY-MM-DD HH:MM:SS)")),
        _ => ok(raw.to_string()),
    }
}
use chrono::Offset as _;

/// The byte-order mark some producers put before the first record.
const BOM: &str = "\u{feff}";

/// A JSON value as the text `check_value` reads, refusing JSON types that do not fit the
/// field's type: a number for a text field (an ID-card number sent as a number may already have
/// lost digits above 2^53 in a producer that parses numbers as doubles), a string for an integer
/// field, a boolean for anything but a boolean. Decimals may come as strings, which keep their
/// precision.
fn json_value(data_type: &str, v: serde_json::Value) -> std::result::Result<Option<String>, String> {
    use serde_json::Value;
    let numeric = matches!(data_type, "integer" | "decimal");
    match v {
        Value::Null => Ok(None),
        Value::Number(n) if numeric => Ok(Some(n.to_string())),
        Value::Number(_) => Err(format!("a JSON number for a {data_type} field; send it as a string")),
        Value::String(s) if data_type == "integer" => {
            Err(format!("a JSON string (`{s}`) for an integer field; send it as a number"))
        }
        Value::String(s) => Ok(Some(s)),
        Value::Bool(b) if data_type == "boolean" => Ok(Some(b.to_string())),
        Value::Bool(_) => Err(format!("a JSON boolean for a {data_type} field")),
        Value::Array(_) | Value::Object(_) => Err("holds an object or array".into()),
    }
}

/// Splits a CSV byte stream into records as chunks arrive, quotes spanning chunks and lines.
#[derive(Default)]
pub struct CsvSplitter {
    buf: Vec<u8>,
    start: usize,
    scan: usize,
    in_quotes: bool,
    line: u64,
    inner_lines: u64,
}

/// A complete record: the line it starts on and its fields, or why it cannot be read.
pub type Parsed = (u64, std::result::Result<Vec<String>, String>);

impl CsvSplitter {
    pub fn new() -> CsvSplitter {
        CsvSplitter { line: 1, ..Default::default() }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete record, if one has arrived. `Err` when a record outgrows the limit
    /// (a quote that never closes): the stream cannot be read further.
    pub fn next_record(&mut self) -> std::result::Result<Option<Parsed>, String> {
        while self.scan < self.buf.len() {
            let b = self.buf[self.scan];
            self.scan += 1;
            match b {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => {
                    let rec = self.take(self.scan - 1);
                    if let Some(r) = rec {
                        return Ok(Some(r));
                    }
                }
                b'\n' => self.inner_lines += 1,
                _ => {}
            }
            if self.scan - self.start > MAX_RECORD_BYTES {
                return Err(format!(
                    "line {}: a record is longer than {MAX_RECORD_BYTES} bytes (unclosed quote?)",
                    self.line
                ));
            }
        }
        Ok(None)
    }

    /// The last record when the stream ends without a newline.
    pub fn finish(&mut self) -> Option<Parsed> {
        if self.in_quotes {
            let line = self.line;
            self.start = self.buf.len();
            return Some((line, Err("a quoted field is not closed before the end".into())));
        }
        let end = self.buf.len();
        self.scan = end;
        self.take(end)
    }

    fn take(&mut self, end: usize) -> Option<Parsed> {
        let mut bytes = &self.buf[self.start..end];
        if bytes.last() == Some(&b'\r') {
            bytes = &bytes[..bytes.len() - 1];
        }
        let line = self.line;
        let blank = bytes.is_empty();
        let parsed = if blank { None } else { Some((line, parse_record(bytes))) };
        self.line += 1 + self.inner_lines;
        self.inner_lines = 0;
        self.start = self.scan;
        parsed
    }
}

fn parse_record(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, '"') => return Err("a quote inside an unquoted field".into()),
            (false, ',') => {
                fields.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) if was_quoted => return Err(format!("`{c}` after a closing quote")),
            (false, c) => cur.push(c),
        }
    }
    fields.push(cur);
    Ok(fields)
}

#[derive(QueryableByName)]
struct ResourceRow {
    #[diesel(sql_type = Text)]
    jurisdiction: String,
    #[diesel(sql_type = Bool)]
    withdrawn: bool,
    #[diesel(sql_type = Jsonb)]
    fields: serde_json::Value,
}

/// What a load reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoadOutcome {
    pub dataset: Dataset,
    /// Workspaces rebuilt with the new version.
    pub workspaces_refreshed: usize,
}

struct Loader<'a> {
    fields: &'a [Field],
    /// Field index for each input column (CSV), from the header.
    columns: Vec<usize>,
    rejects: Vec<serde_json::Value>,
    rejected: u64,
    rows: u64,
    out: BytesMut,
}

impl Loader<'_> {
    fn reject(&mut self, line: u64, reason: String) {
        self.rejected += 1;
        if self.rejects.len() < MAX_REJECTS_REPORTED {
            self.rejects.push(serde_json::json!({ "line": line, "reason": reason }));
        }
    }

    fn header(&mut self, line: u64, names: Vec<String>) -> bool {
        let mut columns = Vec::new();
        for n in &names {
            match self.fields.iter().position(|f| f.name == n.trim()) {
                Some(i) if !columns.contains(&i) => columns.push(i),
                Some(_) => self.reject(line, format!("header names `{}` twice", n.trim())),
                None => self.reject(line, format!("header column `{}` is not a field of the resource", n.trim())),
            }
        }
        for (i, f) in self.fields.iter().enumerate() {
            if !columns.contains(&i) {
                self.reject(line, format!("header lacks field `{}`", f.name));
            }
        }
        self.columns = columns;
        self.rejected == 0
    }

    fn row(&mut self, line: u64, values: Vec<Option<String>>) {
        let mut checked = vec![None; self.fields.len()];
        for (i, v) in values.into_iter().enumerate() {
            let Some(&fi) = self.columns.get(i) else { continue };
            match v.as_deref().map(|raw| check_value(&self.fields[fi], raw)).transpose() {
                Ok(c) => checked[fi] = c.flatten(),
                Err(reason) => return self.reject(line, format!("field `{}`: {reason}", self.fields[fi].name)),
            }
        }
        if self.rejected > 0 {
            return; // nothing will be stored: only keep checking
        }
        for (i, v) in checked.iter().enumerate() {
            if i > 0 {
                self.out.extend_from_slice(b"\t");
            }
            copy_escape(&mut self.out, v.as_deref());
        }
        self.out.extend_from_slice(b"\n");
        self.rows += 1;
    }

    fn csv(&mut self, line: u64, record: std::result::Result<Vec<String>, String>, header_done: &mut bool) {
        match record {
            Err(reason) => self.reject(line, reason),
            Ok(mut values) if !*header_done => {
                *header_done = true;
                // Spreadsheet software writes "CSV UTF-8" with a byte-order mark before the header.
                if let Some(first) = values.first_mut().and_then(|v| v.strip_prefix(BOM).map(str::to_string)) {
                    values[0] = first;
                }
                self.header(line, values);
            }
            Ok(values) if values.len() != self.columns.len() => {
                self.reject(line, format!("{} values for {} columns", values.len(), self.columns.len()))
            }
            Ok(values) => self.row(line, values.into_iter().map(Some).collect()),
        }
    }

    fn json_line(&mut self, line: u64, bytes: &[u8]) {
        let bytes = if line == 1 { bytes.strip_prefix(BOM.as_bytes()).unwrap_or(bytes) } else { bytes };
        let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(bytes) {
            Ok(o) => o,
            Err(e) => return self.reject(line, format!("not a JSON object: {e}")),
        };
        let mut values = vec![None; self.fields.len()];
        for (k, v) in obj {
            let Some(i) = self.fields.iter().position(|f| f.name == k) else {
                return self.reject(line, format!("`{k}` is not a field of the resource"));
            };
            values[i] = match json_value(&self.fields[i].data_type, v) {
                Ok(v) => v,
                Err(reason) => return self.reject(line, format!("field `{k}`: {reason}")),
            };
        }
        self.row(line, values);
    }
}

/// Streams `body` into a new dataset version of `resource` (see the module documentation).
#[tracing::instrument(name = "sandbox.load", skip_all, fields(resource = %resource, format = ?format))]
pub async fn load<S, E>(
    state: &State,
    caller: &Caller,
    resource: Uuid,
    format: Format,
    mut body: S,
) -> Result<LoadOutcome>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut conn = state.conn().await?;
    let rows: Vec<ResourceRow> =
        diesel::sql_query("SELECT jurisdiction, withdrawn, fields FROM resources WHERE id = $1")
            .bind::<SqlUuid, _>(resource)
            .load(&mut conn)
            .await?;
    let res = rows.into_iter().next().ok_or(Error::UnknownResource(resource))?;
    caller.require_jurisdiction(&res.jurisdiction)?;
    if res.withdrawn {
        return Err(Error::Conflict {
            slug: "resource-withdrawn",
            reason: format!("resource {resource} is withdrawn"),
        });
    }
    let fields: Vec<Field> =
        serde_json::from_value(res.fields).map_err(|e| Error::Corrupt(format!("resource fields: {e}")))?;
    if fields.is_empty() {
        return Err(Error::Conflict { slug: "resource-without-fields", reason: "the resource has no fields".into() });
    }

    let mut data = state.data.get().await?;
    let tx = data.transaction().await?;
    tokio_postgres::Transaction::execute(&tx, "SELECT pg_advisory_xact_lock(hashtext($1))", &[&resource.to_string()])
        .await?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) + 1 FROM datasets WHERE resource_id = $1::text::uuid",
            &[&resource.to_string()],
        )
        .await?
        .get(0);
    let table = format!("{}_v{version}", resource.simple());
    let cols: Vec<String> = fields.iter().map(|f| quote_ident(&f.name)).collect();
    let defs: Vec<String> =
        fields.iter().map(|f| format!("{} {}", quote_ident(&f.name), sql_type(&f.data_type))).collect();
    tx.batch_execute(&format!("CREATE TABLE staged.{} ({})", quote_ident(&table), defs.join(", "))).await?;
    let sink = tx.copy_in(&format!("COPY staged.{} ({}) FROM STDIN", quote_ident(&table), cols.join(", "))).await?;
    futures::pin_mut!(sink);

    let identity = fields.iter().enumerate().map(|(i, _)| i).collect();
    let mut loader = Loader {
        fields: &fields,
        columns: if format == Format::Jsonl { identity } else { Vec::new() },
        rejects: Vec::new(),
        rejected: 0,
        rows: 0,
        out: BytesMut::with_capacity(COPY_CHUNK_BYTES * 2),
    };
    let mut bytes_in: u64 = 0;
    let mut csv = CsvSplitter::new();
    let mut header_done = false;
    let mut pending: Vec<u8> = Vec::new();
    let mut line: u64 = 1;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| Error::Invalid { field: "body".into(), reason: format!("the upload broke off: {e}") })?;
        bytes_in += chunk.len() as u64;
        match format {
            Format::Csv => {
                csv.push(&chunk);
                while let Some((l, rec)) = csv.next_record().map_err(|reason| Error::Rejected {
                    rejected: loader.rejected + 1,
                    rows: vec![serde_json::json!({ "reason": reason })],
                    rule: LOAD_RULE,
                })? {
                    loader.csv(l, rec, &mut header_done);
                }
            }
            Format::Jsonl => {
                pending.extend_from_slice(&chunk);
                let mut from = 0;
                while let Some(nl) = pending[from..].iter().position(|b| *b == b'\n') {
                    let rec = &pending[from..from + nl];
                    if !rec.iter().all(u8::is_ascii_whitespace) {
                        loader.json_line(line, rec);
                    }
                    line += 1;
                    from += nl + 1;
                }
                pending.drain(..from);
                if pending.len() > MAX_RECORD_BYTES {
                    return Err(Error::Invalid {
                        field: "body".into(),
                        reason: format!("line {line} is longer than {MAX_RECORD_BYTES} bytes"),
                    });
                }
            }
        }
        if loader.out.len() >= COPY_CHUNK_BYTES {
            sink.send(loader.out.split().freeze()).await?;
        }
    }
    match format {
        Format::Csv => {
            if let Some((l, rec)) = csv.finish() {
                loader.csv(l, rec, &mut header_done);
            }
            if !header_done {
                loader.reject(1, "the upload has no header row".into());
            }
        }
        Format::Jsonl => {
            if !pending.iter().all(u8::is_ascii_whitespace) {
                loader.json_line(line, &pending);
            }
        }
    }
    if loader.rejected > 0 {
        // Dropping the sink and the transaction aborts the COPY and rolls everything back.
        return Err(Error::Rejected { rejected: loader.rejected, rows: loader.rejects, rule: LOAD_RULE });
    }
    if !loader.out.is_empty() {
        sink.send(loader.out.split().freeze()).await?;
    }
    let copied = sink.as_mut().finish().await?;
    let id = Uuid::now_v7();
    let fmt = match format {
        Format::Csv => "csv",
        Format::Jsonl => "jsonl",
    };
    let (id_text, resource_text, rows_i64, bytes_i64) =
        (id.to_string(), resource.to_string(), copied as i64, bytes_in as i64);
    tokio_postgres::Transaction::execute(
        &tx,
        "INSERT INTO datasets (id, resource_id, version, table_name, format, row_count, byte_count, loaded_by) \
         VALUES ($1::text::uuid, $2::text::uuid, $3, $4, $5, $6, $7, $8)",
        &[&id_text, &resource_text, &version, &table, &fmt, &rows_i64, &bytes_i64, &caller.subject()],
    )
    .await?;
    tx.commit().await?;
    drop(data);

    let prefix = state.topic_prefix.clone();
    let record = Record {
        principal: caller.subject().to_string(),
        principal_org: caller.org().to_string(),
        grant_id: None,
        action: "load".into(),
        query: format!("resource {resource} version {version}: {copied} rows, {bytes_in} bytes ({fmt})"),
        decision: "done".into(),
        rule: LOAD_RULE.into(),
        rows_read: copied as i64,
        rows_returned: 0,
        result_digest: String::new(),
    };
    let jurisdiction = res.jurisdiction.clone();
    let c: &mut AsyncPgConnection = &mut conn;
    let refreshed = c
        .transaction::<_, Error, _>(async move |c: &mut AsyncPgConnection| {
            let n = refresh_for_resource(c, resource).await?;
            audit::append(c, &prefix, &jurisdiction, &record).await?;
            Ok(n)
        })
        .await?;
    state.relay.wake();
    let dataset: Dataset = diesel::sql_query(
        "SELECT id, resource_id, version, format, row_count, byte_count, loaded_by, loaded_at FROM datasets WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(&mut conn)
    .await?;
    Ok(LoadOutcome { dataset, workspaces_refreshed: refreshed })
}

/// Dataset versions of a resource, newest first.
pub async fn list(state: &State, resource: Uuid) -> Result<Vec<Dataset>> {
    let mut conn = state.conn().await?;
    Ok(diesel::sql_query(
        "SELECT id, resource_id, version, format, row_count, byte_count, loaded_by, loaded_at FROM datasets \
         WHERE resource_id = $1 ORDER BY version DESC",
    )
    .bind::<SqlUuid, _>(resource)
    .load(&mut conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&str]) -> Vec<Parsed> {
        let mut s = CsvSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c.as_bytes());
            while let Ok(Some(r)) = s.next_record() {
                out.push(r);
            }
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn records_split_across_chunks_and_quoted_newlines() {
        let out = split(&["a,b\r\n\"x\ny\",2\n", "\"he said \"\"hi\"\"\",", "3\n\n", "last,4"]);
        let lines: Vec<u64> = out.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 4, 6]);
        assert_eq!(out[1].1, Ok(vec!["x\ny".to_string(), "2".to_string()]));
        assert_eq!(out[2].1, Ok(vec!["he said \"hi\"".to_string(), "3".to_string()]));
        assert_eq!(out[3].1, Ok(vec!["last".to_string(), "4".to_string()]));
    }

    #[test]
    fn broken_records_are_named() {
        let out = split(&["\"a\"b,c\n", "\"open,"]);
        assert!(out[0].1.is_err());
        assert_eq!(out[1].0, 2);
        assert!(out[1].1.is_err());
    }

    #[test]
    fn values_are_checked_by_type() {
        let f = |t: &str| Field {
            name: "x".into(),
            data_type: t.into(),
            sensitivity: "none".into(),
            pii_kind: "none".into(),
        };
        assert_eq!(check_value(&f("integer"), " 42 "), Ok(Some("42".into())));
        assert!(check_value(&f("integer"), "4.2").is_err());
        assert_eq!(check_value(&f("decimal"), "-4.25"), Ok(Some("-4.25".into())));
        assert!(check_value(&f("decimal"), "NaN").is_err());
        assert_eq!(check_value(&f("boolean"), "是"), Ok(Some("t".into())));
        assert!(check_value(&f("date"), "2026-02-30").is_err());
        assert_eq!(check_value(&f("timestamp"), "2026-01-02 03:04:05"), Ok(Some("2026-01-02T03:04:05+08:00".into())));
        assert_eq!(check_value(&f("text"), ""), Ok(None));
    }

    #[test]
    fn copy_text_is_escaped() {
        let mut b = BytesMut::new();
        copy_escape(&mut b, Some("a\tb\\c\nd"));
        copy_escape(&mut b, None);
        assert_eq!(&b[..], b"a\\tb\\\\c\\nd\\N");
    }
}
