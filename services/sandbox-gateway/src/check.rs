//! The query check: "数据可用不可见" decided before anything runs.
//!
//! A caller's SQL is parsed with a real PostgreSQL-dialect parser and accepted only when it is
//! exactly one plain SELECT over the workspace's own relations (WF-17, NS-5: the environment is
//! the one channel; ZJK-19: access control), calling allow-listed functions only, touching
//! sensitive fields only as the direct argument of `count` / `count(DISTINCT …)`, and returning
//! only aggregates over groups — unless every relation it reads is unconditionally open (ZJK-21:
//! no raw data leaves). Anything else is refused with the check that refused, the rule behind it
//! and what to change.
//!
//! An accepted query is rewritten, never passed through: it is printed back from the parsed tree
//! (so nothing hidden in comments survives), the caller's `WHERE` moves into a `FILTER` on every
//! aggregate so each group carries both its matching row count (`__sbx_n`) and its total
//! (`__sbx_total`) for small-group and complement suppression ([`crate::domain::suppress`]), every output
//! column gets a unique name, and the caller's `LIMIT` moves to an outer query capped by the
//! gateway's row limit. The result is one JSON text per row (`row_to_json`).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Distinct, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident, JoinConstraint, JoinOperator,
    LimitClause, ObjectName, ObjectNamePart, OrderByKind, Query, Select, SelectFlavor, SelectItem, SetExpr, Statement,
    TableFactor, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// Rule ids behind the checks (DOMAIN.md, "Development environment").
pub mod rules {
    /// The environment is the only channel, its access control decides what runs (WF-17, NS-5, ZJK-19).
    pub const CHANNEL: &str = "ZJK-19";
    /// No raw data, nothing from which raw data can be restored, nothing outside the scope (ZJK-21, WF-26).
    pub const RAW_DATA: &str = "ZJK-21";
}

/// The column prefix the gateway reserves for its own bookkeeping.
pub const RESERVED_PREFIX: &str = "__sbx";
/// The rewritten query's column holding a group's matching row count.
pub const GROUP_ROWS: &str = "__sbx_n";
/// The rewritten query's column holding a group's row count before the caller's `WHERE`.
pub const GROUP_TOTAL: &str = "__sbx_total";
/// Prefix of the rewritten query's columns holding a group's row count with one conjunct of the
/// caller's `WHERE` left out (`__sbx_c0`, `__sbx_c1`, …).
pub const GROUP_WITHOUT: &str = "__sbx_c";
/// The workspace relations' row id column (overlap control; not a column queries may name).
pub const ROW_ID: &str = "__sbx_rid";
/// Prefix of the rewritten query's columns holding a group's row ids, one per relation read.
pub const GROUP_ROW_IDS: &str = "__sbx_r";
/// Conjuncts of a `WHERE` each checked on its own; a longer conjunction is refused.
pub const MAX_CONJUNCTS: usize = 8;

/// Aggregates a query may use. Ordered-set aggregates, `string_agg`, `array_agg`, `json_agg` and
/// friends are absent: they return the values themselves.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    "bool_and",
    "bool_or",
    "every",
];
/// Scalar functions a query may use (on non-sensitive fields only; sensitive fields never reach them).
const SCALARS: &[&str] = &[
    "lower",
    "upper",
    "length",
    "char_length",
    "substr",
    "left",
    "right",
    "btrim",
    "ltrim",
    "rtrim",
    "concat",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "round",
    "trunc",
    "floor",
    "ceil",
    "ceiling",
    "abs",
    "sign",
    "mod",
    "power",
    "sqrt",
    "ln",
    "log",
    "exp",
    "date_trunc",
    "date_part",
    "to_char",
    "age",
    "make_date",
    "current_date",
];
/// Types a value may be cast to.
const CAST_TYPES: &[&str] = &[
    "TEXT",
    "VARCHAR",
    "INT",
    "INTEGER",
    "BIGINT",
    "SMALLINT",
    "NUMERIC",
    "DECIMAL",
    "REAL",
    "DOUBLE PRECISION",
    "FLOAT",
    "DATE",
    "TIMESTAMP",
    "BOOLEAN",
    "BOOL",
];

/// A column of a workspace relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// Personal, sensitive personal or trade-secret data (masked in the workspace, and usable
    /// only inside `count`).
    pub sensitive: bool,
}

/// A relation of the workspace: one granted resource with its granted fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The name queries use (the resource code, lower case, `-` and `.` as `_`).
    pub name: String,
    pub columns: Vec<Column>,
    /// Unconditionally open (无条件开放): rows of non-sensitive fields may be returned as they are.
    pub unconditional: bool,
}

/// Why a query was refused: the check, the rule behind it, what is wrong and what to change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Refusal {
    pub check: &'static str,
    pub rule: &'static str,
    pub message: String,
    pub hint: String,
}

fn refuse<T>(
    check: &'static str,
    rule: &'static str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> Result<T, Refusal> {
    Err(Refusal { check, rule, message: message.into(), hint: hint.into() })
}

/// What the result rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// One row per group; small groups are suppressed. `grouped` is false for a single total.
    Aggregate { grouped: bool },
    /// Rows of non-sensitive fields of unconditionally open resources.
    Rows,
}

/// An accepted query, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The statement to run (one JSON text per row).
    pub sql: String,
    pub shape: Shape,
    /// Output column names, in order (the gateway's bookkeeping columns excluded).
    pub columns: Vec<String>,
    /// Lineage: the relations and `relation.column`s the query reads.
    pub relations: Vec<String>,
    pub fields: Vec<String>,
    /// Rows fetched at most: the smaller of the caller's `LIMIT` and the gateway's limit, plus one
    /// to tell a truncated result.
    pub fetch: u64,
    /// For a single-condition `WHERE` over plain groups: the per-group row counts without the
    /// `WHERE`, as a statement of their own whose result depends only on the workspace's data,
    /// so the gateway computes it once per data version and reuses it (`key`). Otherwise the
    /// counts travel in the query's own `__sbx_*` columns.
    pub totals: Option<Totals>,
    /// For aggregates: the workspace place of the relation behind each row-id column that
    /// follows a result row's JSON text (`__sbx_r0…`, arrays of `__sbx_rid`), in order.
    pub row_id_slots: Vec<u32>,
}

/// The per-group totals statement of a query (see [`Checked::totals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// One JSON object per group: `__sbx_g0…` (the group's key) and `__sbx_total`.
    pub sql: String,
    /// What the totals depend on besides the data: the FROM clause and the groups.
    pub key: String,
    /// How many group key columns (`__sbx_g0…`) the query and the totals carry.
    pub groups: usize,
}

/// Prefix of the columns carrying a group's key in the query and in its totals.
pub const GROUP_KEY: &str = "__sbx_g";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Place {
    Output,
    Filter,
    Group,
    Order,
    Having,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Output => "the select list",
            Place::Filter => "WHERE / JOIN conditions",
            Place::Group => "GROUP BY",
            Place::Order => "ORDER BY",
            Place::Having => "HAVING",
        }
    }
}

fn ident_is(id: &Ident, name: &str) -> bool {
    match id.quote_style {
        None => id.value.to_lowercase() == name,
        Some(_) => id.value == name,
    }
}

fn function_name(name: &ObjectName) -> Result<String, Refusal> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => Ok(id.value.to_lowercase()),
        _ => refuse(
            "function",
            rules::CHANNEL,
            format!("function `{name}` is schema-qualified or not a plain name"),
            "call functions by their plain name from the allow-list",
        ),
    }
}

struct Walker<'a> {
    scope: Vec<(String, &'a Relation)>,
    output_aliases: Vec<String>,
    fields: BTreeSet<String>,
    aggregates: usize,
}

impl<'a> Walker<'a> {
    fn column(&mut self, parts: &[Ident], place: Place) -> Result<Option<&'a Column>, Refusal> {
        let (qualifier, name) = match parts {
            [c] => (None, c),
            [q, c] => (Some(q), c),
            _ => {
                let joined: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
                return refuse(
                    "relation",
                    rules::RAW_DATA,
                    format!("`{}` reaches outside the workspace", joined.join(".")),
                    "refer to columns as `column` or `relation.column`",
                );
            }
        };
        let mut found: Vec<(&str, &'a Column)> = Vec::new();
        for (alias, rel) in &self.scope {
            if qualifier.is_some_and(|q| !ident_is(q, alias)) {
                continue;
            }
            if let Some(c) = rel.columns.iter().find(|c| ident_is(name, &c.name)) {
                found.push((rel.name.as_str(), c));
            }
        }
        match found.as_slice() {
            [(rel, c)] => {
                self.fields.insert(format!("{rel}.{}", c.name));
                Ok(Some(*c))
            }
            [] if qualifier.is_none()
                && matches!(place, Place::Order | Place::Having | Place::Group)
                && self.output_aliases.iter().any(|a| ident_is(name, a)) =>
            {
                Ok(None)
            }
            [] => refuse(
                "column",
                rules::RAW_DATA,
                format!("column `{}` is not a granted field of the relations in FROM", name.value),
                "use only the granted fields listed for the workspace",
            ),
            _ => refuse(
                "column",
                rules::CHANNEL,
                format!("column `{}` is ambiguous", name.value),
                "qualify it with its relation",
            ),
        }
    }

    fn plain_column(&mut self, parts: &[Ident], place: Place) -> Result<(), Refusal> {
        if let Some(c) = self.column(parts, place)?
            && c.sensitive
        {
            return refuse(
                "sensitive-field",
                rules::RAW_DATA,
                format!("sensitive field `{}` is used in {} outside an aggregate", c.name, place.name()),
                "sensitive fields may appear only as `count(field)` or `count(DISTINCT field)`",
            );
        }
        Ok(())
    }

    fn expr(&mut self, e: &Expr, place: Place) -> Result<(), Refusal> {
        match e {
            Expr::Identifier(id) => self.plain_column(std::slice::from_ref(id), place),
            Expr::CompoundIdentifier(parts) => self.plain_column(parts, place),
            Expr::Value(v) => match &v.value {
                Value::Placeholder(_) => {
                    refuse("literal", rules::CHANNEL, "placeholders are not accepted", "write the value")
                }
                _ => Ok(()),
            },
            Expr::TypedString(_) | Expr::Interval(_) => Ok(()),
            Expr::Nested(x)
            | Expr::UnaryOp { expr: x, .. }
            | Expr::IsNull(x)
            | Expr::IsNotNull(x)
            | Expr::IsTrue(x)
            | Expr::IsNotTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsNotFalse(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotUnknown(x)
            | Expr::Ceil { expr: x, .. }
            | Expr::Floor { expr: x, .. }
            | Expr::Extract { expr: x, .. } => self.expr(x, place),
            Expr::BinaryOp { left, right, .. }
            | Expr::IsDistinctFrom(left, right)
            | Expr::IsNotDistinctFrom(left, right)
            | Expr::AtTimeZone { timestamp: left, time_zone: right }
            | Expr::Position { expr: left, r#in: right } => {
                self.expr(left, place)?;
                self.expr(right, place)
            }
            Expr::Like { expr, pattern, escape_char, .. } | Expr::ILike { expr, pattern, escape_char, .. } => {
                self.expr(expr, place)?;
                self.expr(pattern, place)?;
                escape_char.as_deref().map_or(Ok(()), |x| self.expr(x, place))
            }
            Expr::InList { expr, list, .. } => {
                self.expr(expr, place)?;
                list.iter().try_for_each(|x| self.expr(x, place))
            }
            Expr::Between { expr, low, high, .. } => {
                self.expr(expr, place)?;
                self.expr(low, place)?;
                self.expr(high, place)
            }
            Expr::Cast { expr, data_type, format, .. } => {
                let ty = data_type.to_string().to_uppercase();
                let base = ty.split('(').next().unwrap_or("").trim().to_string();
                if format.is_some() || !CAST_TYPES.contains(&base.as_str()) {
                    return refuse(
                        "cast",
                        rules::CHANNEL,
                        format!("a cast to `{ty}` is not allowed"),
                        format!("cast only to {}", CAST_TYPES.join(", ")),
                    );
                }
                self.expr(expr, place)
            }
            Expr::Substring { expr, substring_from, substring_for, .. } => {
                self.expr(expr, place)?;
                for x in [substring_from, substring_for].into_iter().flatten() {
                    self.expr(x, place)?;
                }
                Ok(())
            }
            Expr::Trim { expr, trim_what, trim_characters, .. } => {
                self.expr(expr, place)?;
                if let Some(x) = trim_what {
                    self.expr(x, place)?;
                }
                trim_characters.iter().flatten().try_for_each(|x| self.expr(x, place))
            }
            Expr::Case { operand, conditions, else_result, .. } => {
                if let Some(x) = operand {
                    self.expr(x, place)?;
                }
                for w in conditions {
                    self.expr(&w.condition, place)?;
                    self.expr(&w.result, place)?;
                }
                else_result.as_deref().map_or(Ok(()), |x| self.expr(x, place))
            }
            Expr::Function(f) => self.function(f, place),
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => refuse(
                "subquery",
                rules::CHANNEL,
                "subqueries are not accepted",
                "write one SELECT over the workspace relations; join them instead",
            ),
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => refuse(
                "wildcard",
                rules::RAW_DATA,
                "`*` would return every field",
                "name the columns or aggregates you need",
            ),
            Expr::GroupingSets(_) | Expr::Cube(_) | Expr::Rollup(_) => refuse(
                "totals",
                rules::RAW_DATA,
                "GROUPING SETS, CUBE and ROLLUP return totals from which suppressed groups can be derived",
                "query the totals separately",
            ),
            other => refuse(
                "expression",
                rules::CHANNEL,
                format!("the expression `{other}` is not accepted"),
                "use columns, literals, operators, CASE, casts and allow-listed functions",
            ),
        }
    }

    fn function(&mut self, f: &sqlparser::ast::Function, place: Place) -> Result<(), Refusal> {
        let name = function_name(&f.name)?;
        let aggregate = AGGREGATES.contains(&name.as_str());
        if !aggregate && !SCALARS.contains(&name.as_str()) {
            return refuse(
                "function",
                rules::CHANNEL,
                format!("function `{name}` is not on the allow-list"),
                format!("use {} or {}", AGGREGATES.join(", "), SCALARS.join(", ")),
            );
        }
        if f.over.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() || f.uses_odbc_syntax {
            return refuse(
                "function",
                rules::RAW_DATA,
                format!("`{name}` with OVER / WITHIN GROUP is a per-row or ordered-set function"),
                "use plain aggregates with GROUP BY",
            );
        }
        if !matches!(f.parameters, FunctionArguments::None) {
            return refuse("function", rules::CHANNEL, format!("`{name}` has parameters"), "call it plainly");
        }
        if aggregate {
            if matches!(place, Place::Filter | Place::Group) {
                return refuse(
                    "aggregate",
                    rules::CHANNEL,
                    format!("aggregate `{name}` in {}", place.name()),
                    "filter groups in HAVING",
                );
            }
            self.aggregates += 1;
        }
        if let Some(filter) = &f.filter {
            self.expr(filter, Place::Filter)?;
        }
        let list = match &f.args {
            FunctionArguments::None => return Ok(()),
            FunctionArguments::Subquery(_) => {
                return refuse("subquery", rules::CHANNEL, "subqueries are not accepted", "join the relations instead");
            }
            FunctionArguments::List(l) => l,
        };
        if !list.clauses.is_empty() {
            return refuse(
                "function",
                rules::RAW_DATA,
                format!("`{name}` with ORDER BY / LIMIT inside its arguments"),
                "call the aggregate with plain arguments",
            );
        }
        let inner = if aggregate { Place::Having } else { place };
        for arg in &list.args {
            let FunctionArg::Unnamed(a) = arg else {
                return refuse(
                    "function",
                    rules::CHANNEL,
                    format!("`{name}` with named arguments"),
                    "pass arguments by position",
                );
            };
            match a {
                FunctionArgExpr::Wildcard if name == "count" && list.args.len() == 1 => {}
                FunctionArgExpr::Expr(Expr::Identifier(id)) if name == "count" && list.args.len() == 1 => {
                    self.column(std::slice::from_ref(id), inner)?;
                }
                FunctionArgExpr::Expr(Expr::CompoundIdentifier(p)) if name == "count" && list.args.len() == 1 => {
                    self.column(p, inner)?;
                }
                FunctionArgExpr::Expr(e) => {
                    if aggregate && contains_aggregate(e) {
                        return refuse(
                            "aggregate",
                            rules::CHANNEL,
                            format!("aggregate inside `{name}`"),
                            "do not nest aggregates",
                        );
                    }
                    // Inside an aggregate other than a direct count, a sensitive field is still raw.
                    self.expr(e, if aggregate { Place::Output } else { place })?;
                }
                _ => {
                    return refuse("wildcard", rules::RAW_DATA, format!("`*` in `{name}`"), "only count(*) takes `*`");
                }
            }
        }
        Ok(())
    }
}

fn contains_aggregate(e: &Expr) -> bool {
    let found = sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::Function(f) if function_name(&f.name).is_ok_and(|n| AGGREGATES.contains(&n.as_str())) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    found.is_break()
}

/// The name a select item gets in the output.
fn output_name(item: &SelectItem, position: usize) -> String {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
        SelectItem::UnnamedExpr(Expr::Identifier(id)) => id.value.to_lowercase(),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
            p.last().map(|i| i.value.to_lowercase()).unwrap_or_else(|| format!("column_{position}"))
        }
        SelectItem::UnnamedExpr(Expr::Function(f)) => {
            function_name(&f.name).unwrap_or_else(|_| format!("column_{position}"))
        }
        _ => format!("column_{position}"),
    }
}

fn statement_shape(sql: &str) -> Result<Query, Refusal> {
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| Refusal {
        check: "parse",
        rule: rules::CHANNEL,
        message: format!("the query does not parse as PostgreSQL: {e}"),
        hint: "send one SELECT statement".into(),
    })?;
    if statements.len() != 1 {
        return refuse(
            "single-select",
            rules::CHANNEL,
            format!("{} statements were sent", statements.len()),
            "send exactly one SELECT statement",
        );
    }
    match statements.pop() {
        Some(Statement::Query(q)) => Ok(*q),
        Some(other) => {
            let kind: String = other.to_string().split_whitespace().next().unwrap_or("").to_uppercase();
            refuse(
                "single-select",
                rules::CHANNEL,
                format!("a {kind} statement is not a query"),
                "only SELECT runs in the workspace; nothing is written, copied or configured",
            )
        }
        None => refuse("single-select", rules::CHANNEL, "no statement was sent", "send one SELECT statement"),
    }
}

fn limit_of(q: &Query) -> Result<Option<u64>, Refusal> {
    match &q.limit_clause {
        None => Ok(None),
        Some(LimitClause::LimitOffset { limit, offset: None, limit_by }) if limit_by.is_empty() => match limit {
            None => Ok(None),
            Some(Expr::Value(v)) => match &v.value {
                Value::Number(n, _) => n.parse::<u64>().map(Some).map_err(|_| Refusal {
                    check: "limit",
                    rule: rules::CHANNEL,
                    message: format!("LIMIT {n} is not a whole number"),
                    hint: "write LIMIT n".into(),
                }),
                _ => refuse("limit", rules::CHANNEL, "LIMIT takes a number", "write LIMIT n"),
            },
            Some(_) => refuse("limit", rules::CHANNEL, "LIMIT takes a number", "write LIMIT n"),
        },
        Some(_) => refuse(
            "offset",
            rules::RAW_DATA,
            "OFFSET pages through results one slice at a time (enumeration)",
            "aggregate instead of paging through rows",
        ),
    }
}

fn select_shape(q: &Query) -> Result<&Select, Refusal> {
    if q.with.is_some() {
        return refuse("cte", rules::CHANNEL, "WITH (common table expressions) is not accepted", "write one SELECT");
    }
    if q.fetch.is_some()
        || !q.locks.is_empty()
        || q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty()
    {
        return refuse(
            "single-select",
            rules::CHANNEL,
            "FETCH, FOR UPDATE/SHARE and similar clauses are not accepted",
            "write a plain SELECT",
        );
    }
    let s = match q.body.as_ref() {
        SetExpr::Select(s) => s.as_ref(),
        SetExpr::SetOperation { op, .. } => {
            return refuse(
                "set-operation",
                rules::RAW_DATA,
                format!("{op} combines results the checks see separately"),
                "send each SELECT on its own",
            );
        }
        SetExpr::Query(_) => {
            return refuse(
                "subquery",
                rules::CHANNEL,
                "a parenthesised query is not accepted",
                "write one plain SELECT",
            );
        }
        _ => return refuse("single-select", rules::CHANNEL, "only SELECT is accepted", "write one plain SELECT"),
    };
    let extras = s.top.is_some()
        || s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.connect_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || !s.named_window.is_empty()
        || s.qualify.is_some()
        || s.value_table_mode.is_some()
        || s.exclude.is_some()
        || s.select_modifiers.is_some()
        || !s.optimizer_hints.is_empty()
        || s.flavor != SelectFlavor::Standard;
    if s.into.is_some() {
        return refuse("single-select", rules::CHANNEL, "SELECT INTO creates a table", "only read in the workspace");
    }
    if extras {
        return refuse(
            "single-select",
            rules::CHANNEL,
            "the SELECT uses clauses the gateway does not accept (TOP, WINDOW, QUALIFY, …)",
            "write SELECT … FROM … [WHERE] [GROUP BY] [HAVING] [ORDER BY] [LIMIT]",
        );
    }
    if matches!(s.distinct, Some(Distinct::On(_))) {
        return refuse("distinct-on", rules::RAW_DATA, "DISTINCT ON picks single rows", "aggregate instead");
    }
    Ok(s)
}

/// Adds the workspace relation `factor` names to the scope, refusing anything else.
fn relation<'a>(
    factor: &TableFactor,
    relations: &'a [Relation],
    scope: &mut Vec<(String, &'a Relation)>,
) -> Result<(), Refusal> {
    let TableFactor::Table { name, alias, args: None, .. } = factor else {
        return refuse(
            "relation",
            rules::CHANNEL,
            format!(
                "`{factor}` is not a workspace relation (derived tables, functions and lateral joins are not accepted)"
            ),
            "read the workspace relations by name",
        );
    };
    let plain = match &alias {
        Some(a) => format!("{name} {a}").replace(" AS ", " "),
        None => name.to_string(),
    };
    if factor.to_string().replace(" AS ", " ") != plain {
        return refuse(
            "relation",
            rules::CHANNEL,
            format!("`{factor}` carries table options the gateway does not accept"),
            "name the relation and, optionally, an alias",
        );
    }
    let rel = match name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => relations.iter().find(|r| ident_is(id, &r.name)),
        _ => None,
    };
    let Some(rel) = rel else {
        let names: Vec<&str> = relations.iter().map(|r| r.name.as_str()).collect();
        return refuse(
            "relation",
            rules::RAW_DATA,
            format!("`{name}` is not a relation of this workspace"),
            format!("the workspace holds: {}", names.join(", ")),
        );
    };
    if let Some(a) = alias
        && !a.columns.is_empty()
    {
        return refuse(
            "relation",
            rules::CHANNEL,
            "column aliases on a relation are not accepted",
            "alias the relation only",
        );
    }
    let key = alias.as_ref().map(|a| a.name.value.to_lowercase()).unwrap_or_else(|| rel.name.clone());
    scope.push((key, rel));
    Ok(())
}

/// Checks `sql` against the workspace `relations` and rewrites it to run with at most
/// `max_rows` rows (see the module documentation).
pub fn check(sql: &str, relations: &[Relation], max_rows: u64) -> Result<Checked, Refusal> {
    check_with(sql, relations, max_rows, true)
}

/// As [`check`]; `row_ids = false` leaves out the groups' row ids that overlap control needs:
/// the statement the gateway ran before it had overlap control, for `make bench` to measure
/// what that control costs. The gateway itself always asks for them.
pub fn check_with(sql: &str, relations: &[Relation], max_rows: u64, row_ids: bool) -> Result<Checked, Refusal> {
    let mut q = statement_shape(sql)?;
    let user_limit = limit_of(&q)?;
    let s = select_shape(&q)?;

    let mut scope = Vec::new();
    let mut joins = Vec::new();
    for twj in &s.from {
        relation(&twj.relation, relations, &mut scope)?;
        for j in &twj.joins {
            relation(&j.relation, relations, &mut scope)?;
            let constraint = match &j.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c) => c,
                other => {
                    return refuse(
                        "join",
                        rules::CHANNEL,
                        format!("the join `{other:?}` is not accepted"),
                        "use [INNER|LEFT|RIGHT|FULL] JOIN … ON",
                    );
                }
            };
            joins.push(constraint);
        }
    }
    let mut w = Walker { scope, output_aliases: Vec::new(), fields: BTreeSet::new(), aggregates: 0 };
    for c in joins {
        match c {
            JoinConstraint::On(e) => w.expr(e, Place::Filter)?,
            JoinConstraint::None => {}
            JoinConstraint::Using(cols) => {
                for c in cols {
                    let parts: Vec<Ident> = c.0.iter().filter_map(|p| p.as_ident().cloned()).collect();
                    w.plain_column(&parts, Place::Filter)?;
                }
            }
            JoinConstraint::Natural => {
                return refuse(
                    "join",
                    rules::RAW_DATA,
                    "NATURAL JOIN compares every same-named field",
                    "join ON named fields",
                );
            }
        }
    }
    let mut names: Vec<String> = Vec::new();
    for (i, item) in s.projection.iter().enumerate() {
        let e = match item {
            SelectItem::UnnamedExpr(e) => e,
            SelectItem::ExprWithAlias { expr, alias } => {
                if alias.value.to_lowercase().starts_with(RESERVED_PREFIX) {
                    return refuse(
                        "alias",
                        rules::CHANNEL,
                        format!("alias `{alias}` is reserved"),
                        "choose another alias",
                    );
                }
                expr
            }
            _ => {
                return refuse(
                    "wildcard",
                    rules::RAW_DATA,
                    "`*` would return every field",
                    "name the columns or aggregates you need",
                );
            }
        };
        w.expr(e, Place::Output)?;
        let mut n = output_name(item, i + 1);
        if names.contains(&n) {
            n = format!("{n}_{}", i + 1);
        }
        names.push(n);
    }
    if s.from.is_empty() {
        return refuse("relation", rules::CHANNEL, "the query reads no workspace relation", "add FROM <relation>");
    }
    w.output_aliases = names.clone();
    if let Some(e) = &s.selection {
        w.expr(e, Place::Filter)?;
        if conjuncts(e).len() > MAX_CONJUNCTS {
            return refuse(
                "where",
                rules::RAW_DATA,
                format!("the WHERE has more than {MAX_CONJUNCTS} conditions joined by AND"),
                "narrow with fewer conditions, or group instead",
            );
        }
    }
    let grouped = match &s.group_by {
        GroupByExpr::Expressions(exprs, modifiers) => {
            if !modifiers.is_empty() {
                return refuse(
                    "totals",
                    rules::RAW_DATA,
                    "GROUP BY … WITH ROLLUP/CUBE/TOTALS returns totals from which suppressed groups can be derived",
                    "query the totals separately",
                );
            }
            for e in exprs {
                w.expr(e, Place::Group)?;
            }
            !exprs.is_empty()
        }
        GroupByExpr::All(_) => {
            return refuse("group-by", rules::CHANNEL, "GROUP BY ALL is not accepted", "name the groups");
        }
    };
    if let Some(h) = &s.having {
        w.expr(h, Place::Having)?;
    }
    if let Some(ob) = &q.order_by {
        match &ob.kind {
            OrderByKind::Expressions(list) => {
                for o in list {
                    w.expr(&o.expr, Place::Order)?;
                }
            }
            OrderByKind::All(_) => {
                return refuse("order-by", rules::CHANNEL, "ORDER BY ALL is not accepted", "name the order");
            }
        }
    }

    let aggregate = grouped || s.having.is_some() || w.aggregates > 0;
    let shape = if aggregate {
        Shape::Aggregate { grouped }
    } else if w.scope.iter().all(|(_, r)| r.unconditional) {
        Shape::Rows
    } else {
        let conditional: Vec<&str> =
            w.scope.iter().filter(|(_, r)| !r.unconditional).map(|(_, r)| r.name.as_str()).collect();
        return refuse(
            "aggregate-only",
            rules::RAW_DATA,
            format!("rows of {} would leave as they are (not unconditionally open)", conditional.join(", ")),
            "return aggregates over groups (GROUP BY with count, sum, avg …)",
        );
    };
    let relations_used: BTreeSet<String> = w.scope.iter().map(|(_, r)| r.name.clone()).collect();
    let fields = w.fields.into_iter().collect();

    let plain_groups = match &s.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.iter().all(|e| match e {
            Expr::Value(_) => false,
            Expr::Identifier(id) => w.scope.iter().any(|(_, r)| r.columns.iter().any(|c| ident_is(id, &c.name))),
            _ => true,
        }),
        GroupByExpr::All(_) => false,
    };
    // The rows behind each group, per relation read (self-joins read one relation twice).
    let scope_rows: Vec<(String, u32)> = w
        .scope
        .iter()
        .map(|(key, rel)| (key.clone(), relations.iter().position(|r| r.name == rel.name).unwrap_or(0) as u32))
        .filter(|_| row_ids)
        .collect();
    let totals = rewrite(&mut q, &names, shape, plain_groups, &scope_rows)?;
    let fetch = user_limit.unwrap_or(max_rows).min(max_rows) + 1;
    let (wrapped, row_id_slots) = match shape {
        Shape::Aggregate { .. } if scope_rows.is_empty() => {
            (format!("SELECT row_to_json(q)::text FROM ({q}) AS q WHERE q.{GROUP_ROWS} > 0 LIMIT {fetch}"), Vec::new())
        }
        Shape::Aggregate { .. } => {
            // The JSON text carries every column but the row ids, which follow it as arrays.
            let SetExpr::Select(s) = q.body.as_ref() else {
                return refuse("rewrite", rules::CHANNEL, "not a SELECT", "write one SELECT");
            };
            let shown: Vec<String> = s
                .projection
                .iter()
                .filter_map(|item| match item {
                    SelectItem::ExprWithAlias { alias, .. } if !alias.value.starts_with(GROUP_ROW_IDS) => {
                        let quoted = Ident::with_quote('"', alias.value.clone());
                        Some(format!("q.{quoted} AS {quoted}"))
                    }
                    _ => None,
                })
                .collect();
            let ids: Vec<String> = (0..scope_rows.len()).map(|i| format!("q.{GROUP_ROW_IDS}{i}")).collect();
            let sql = format!(
                "SELECT row_to_json(o)::text, {} FROM ({q}) AS q CROSS JOIN LATERAL (SELECT {}) AS o \
                 WHERE q.{GROUP_ROWS} > 0 LIMIT {fetch}",
                ids.join(", "),
                shown.join(", ")
            );
            (sql, scope_rows.iter().map(|(_, slot)| *slot).collect())
        }
        Shape::Rows => (format!("SELECT row_to_json(q)::text FROM ({q}) AS q LIMIT {fetch}"), Vec::new()),
    };
    Ok(Checked {
        sql: wrapped,
        shape,
        columns: names,
        relations: relations_used.into_iter().collect(),
        fields,
        fetch,
        totals,
        row_id_slots,
    })
}

fn parse_expr(text: &str) -> Result<Expr, Refusal> {
    Parser::new(&PostgreSqlDialect {}).try_with_sql(text).and_then(|mut p| p.parse_expr()).map_err(|e| Refusal {
        check: "rewrite",
        rule: rules::CHANNEL,
        message: e.to_string(),
        hint: String::new(),
    })
}

/// The query the checks accepted, in the form that runs.
fn rewrite(
    q: &mut Query,
    names: &[String],
    shape: Shape,
    plain_groups: bool,
    scope_rows: &[(String, u32)],
) -> Result<Option<Totals>, Refusal> {
    q.limit_clause = None;
    let SetExpr::Select(s) = q.body.as_mut() else {
        return refuse("rewrite", rules::CHANNEL, "not a SELECT", "write one SELECT");
    };
    for (item, name) in s.projection.iter_mut().zip(names) {
        let expr = match std::mem::replace(item, SelectItem::UnnamedExpr(Expr::value(Value::Null))) {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            other => return refuse("rewrite", rules::CHANNEL, format!("unexpected item {other}"), ""),
        };
        *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', name) };
    }
    if shape == Shape::Rows {
        return Ok(None);
    }
    let parts = s.selection.as_ref().map(conjuncts).unwrap_or_default();
    if parts.len() == 1 && plain_groups {
        // One condition: the query keeps its WHERE (as fast as the caller's own); the group
        // totals without it come from a statement of their own, reusable per data version.
        let groups = match &s.group_by {
            GroupByExpr::Expressions(exprs, _) => exprs.clone(),
            GroupByExpr::All(_) => Vec::new(),
        };
        s.projection.push(SelectItem::ExprWithAlias { expr: parse_expr("count(*)")?, alias: Ident::new(GROUP_ROWS) });
        push_row_ids(s, scope_rows, None)?;
        let mut keys = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            s.projection
                .push(SelectItem::ExprWithAlias { expr: g.clone(), alias: Ident::new(format!("{GROUP_KEY}{i}")) });
            keys.push(format!("{g} AS {GROUP_KEY}{i}"));
        }
        let from: Vec<String> = s.from.iter().map(|t| t.to_string()).collect();
        let group_list: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let group_by =
            if group_list.is_empty() { String::new() } else { format!(" GROUP BY {}", group_list.join(", ")) };
        keys.push(format!("count(*) AS {GROUP_TOTAL}"));
        let inner = format!("SELECT {} FROM {}{group_by}", keys.join(", "), from.join(", "));
        return Ok(Some(Totals {
            sql: format!("SELECT row_to_json(t)::text FROM ({inner}) AS t"),
            key: format!("{}{group_by}", from.join(", ")),
            groups: groups.len(),
        }));
    }
    let condition = s.selection.take();
    if let Some(cond) = &condition {
        let _ = sqlparser::ast::visit_expressions_mut(&mut s.projection, |e| add_filter(e, cond));
        let _ = sqlparser::ast::visit_expressions_mut(&mut s.having, |e| add_filter(e, cond));
        let _ = sqlparser::ast::visit_expressions_mut(&mut q.order_by, |e| add_filter(e, cond));
    }
    let SetExpr::Select(s) = q.body.as_mut() else {
        return refuse("rewrite", rules::CHANNEL, "not a SELECT", "write one SELECT");
    };
    let n = match &condition {
        Some(c) => parse_expr(&format!("count(*) FILTER (WHERE {c})"))?,
        None => parse_expr("count(*)")?,
    };
    s.projection.push(SelectItem::ExprWithAlias { expr: n, alias: Ident::new(GROUP_ROWS) });
    push_row_ids(s, scope_rows, condition.as_ref())?;
    // Each conjunct left out in turn: the rows it alone removes must be none or at least the
    // minimum, or the difference of two queries would single them out.
    if parts.len() > 1 {
        for i in 0..parts.len() {
            let others: Vec<String> =
                parts.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, e)| format!("({e})")).collect();
            let expr = parse_expr(&format!("count(*) FILTER (WHERE {})", others.join(" AND ")))?;
            s.projection.push(SelectItem::ExprWithAlias { expr, alias: Ident::new(format!("{GROUP_WITHOUT}{i}")) });
        }
    }
    s.projection.push(SelectItem::ExprWithAlias { expr: parse_expr("count(*)")?, alias: Ident::new(GROUP_TOTAL) });
    Ok(None)
}

/// Adds a group's row ids per relation read (`array_agg` of `__sbx_rid`, under the caller's
/// condition where it moved into `FILTER`).
fn push_row_ids(s: &mut Select, scope_rows: &[(String, u32)], condition: Option<&Expr>) -> Result<(), Refusal> {
    for (i, (key, _)) in scope_rows.iter().enumerate() {
        let column = format!("{}.{ROW_ID}", Ident::with_quote('"', key.clone()));
        let expr = match condition {
            Some(c) => parse_expr(&format!("array_agg({column}) FILTER (WHERE {c})"))?,
            None => parse_expr(&format!("array_agg({column})"))?,
        };
        s.projection.push(SelectItem::ExprWithAlias { expr, alias: Ident::new(format!("{GROUP_ROW_IDS}{i}")) });
    }
    Ok(())
}

/// The top-level `AND` terms of a condition.
pub fn conjuncts(e: &Expr) -> Vec<Expr> {
    match e {
        Expr::BinaryOp { left, op: sqlparser::ast::BinaryOperator::And, right } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        Expr::Nested(inner)
            if matches!(inner.as_ref(), Expr::BinaryOp { op: sqlparser::ast::BinaryOperator::And, .. }) =>
        {
            conjuncts(inner)
        }
        other => vec![other.clone()],
    }
}

/// Moves the caller's `WHERE` into the `FILTER` of an aggregate call.
fn add_filter(e: &mut Expr, cond: &Expr) -> ControlFlow<()> {
    if let Expr::Function(f) = e
        && function_name(&f.name).is_ok_and(|n| AGGREGATES.contains(&n.as_str()))
    {
        f.filter = Some(Box::new(match f.filter.take() {
            None => cond.clone(),
            Some(existing) => Expr::BinaryOp {
                left: Box::new(Expr::Nested(existing)),
                op: sqlparser::ast::BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(cond.clone()))),
            },
        }));
    }
    ControlFlow::Continue(())
}
