//! An optimizer rule: a `LIKE` pattern that needs a regular expression is compiled
//! once per query, not once per batch.
//!
//! arrow's `like` kernel turns simple patterns into comparisons (`'/etc/%'` is a
//! prefix test, `'%shadow%'` a substring search) and everything else into a regular
//! expression, which it compiles again on every call: once per batch and per row
//! group of every file. In `evt_arg_flags LIKE '%O_WRONLY%'` (`_` matches any one
//! character) compiling took ~12 % of the query's CPU. In `WHERE` clauses (filters,
//! including those pushed into the scan) this rule replaces such a `[NOT] [I]LIKE`
//! with [`CompiledLike`], a function holding the compiled expression; it evaluates a
//! dictionary column on its values and maps the answers through the keys, as arrow
//! does. Patterns arrow does not compile, and custom escape characters, are left
//! alone. On unless the session's `lanner.compile_like_patterns` is off.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, StringArrayType,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::expr::{Like, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, lit,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use regex::{Regex, RegexBuilder};

use crate::prune::LannerOptions;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct CompileLikePatterns;

impl OptimizerRule for CompileLikePatterns {
    fn name(&self) -> &str {
        "lanner_compile_like_patterns"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if !LannerOptions::on(&config.options(), |o| o.compile_like_patterns) {
            return Ok(Transformed::no(plan));
        }
        plan.transform_up(|p| match p {
            LogicalPlan::Filter(_) | LogicalPlan::TableScan(_) => {
                p.map_expressions(|e| e.transform_up(compile))
            }
            other => Ok(Transformed::no(other)),
        })
    }
}

/// Replaces `e` when it is a `LIKE` the kernel would compile.
fn compile(e: Expr) -> Result<Transformed<Expr>> {
    let Expr::Like(Like {
        negated,
        expr,
        pattern,
        escape_char,
        case_insensitive,
    }) = &e
    else {
        return Ok(Transformed::no(e));
    };
    let Expr::Literal(
        ScalarValue::Utf8(Some(p))
        | ScalarValue::LargeUtf8(Some(p))
        | ScalarValue::Utf8View(Some(p)),
        _,
    ) = pattern.as_ref()
    else {
        return Ok(Transformed::no(e));
    };
    if !matches!(escape_char, None | Some('\\')) || !needs_regex(p, *case_insensitive) {
        return Ok(Transformed::no(e));
    }
    let Some(udf) = CompiledLike::new(p, *case_insensitive) else {
        // Not a valid pattern for a regular expression: the kernel reports it.
        return Ok(Transformed::no(e));
    };
    let call = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(udf)),
        vec![expr.as_ref().clone(), lit(p.clone())],
    ));
    Ok(Transformed::yes(if *negated {
        Expr::Not(Box::new(call))
    } else {
        call
    }))
}

/// Whether arrow's `like`/`ilike` kernels would evaluate `pattern` with a regular
/// expression (rather than an equality, prefix, suffix or substring test).
pub fn needs_regex(pattern: &str, case_insensitive: bool) -> bool {
    let plain = |s: &str| !s.contains(['%', '_', '\\']);
    if case_insensitive {
        let simple_ascii = pattern.is_ascii()
            && (plain(pattern)
                || (pattern.ends_with('%')
                    && !pattern.ends_with("\\%")
                    && plain(&pattern[..pattern.len() - 1]))
                || (pattern.starts_with('%') && plain(&pattern[1..])));
        return !simple_ascii;
    }
    let n = pattern.len();
    !(plain(pattern)
        || (pattern.ends_with('%') && plain(&pattern[..n - 1]))
        || (pattern.starts_with('%') && plain(&pattern[1..]))
        || (n >= 2
            && pattern.starts_with('%')
            && pattern.ends_with('%')
            && plain(&pattern[1..n - 1])))
}

/// The regular expression matching what `pattern` matches under SQL `LIKE` with `\`
/// as the escape character: `%` any run of characters, `_` any one character.
pub fn like_regex(pattern: &str) -> String {
    let mut re = String::with_capacity(pattern.len() * 2 + 2);
    re.push('^');
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            '\\' => match chars.next() {
                Some(next) => push_literal(&mut re, next),
                // A trailing backslash stands for itself, as in arrow's kernel.
                None => push_literal(&mut re, '\\'),
            },
            c => push_literal(&mut re, c),
        }
    }
    re.push('$');
    re
}

fn push_literal(re: &mut String, c: char) {
    re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
}

/// `text [I]LIKE pattern` with the pattern compiled once (see the module docs). The
/// function takes the text and the pattern (shown in plans); it matches with the
/// expression it was built with.
#[derive(Debug)]
pub struct CompiledLike {
    pattern: String,
    case_insensitive: bool,
    regex: Regex,
    signature: Signature,
}

impl CompiledLike {
    /// The function for `pattern`, or `None` when it does not compile.
    pub fn new(pattern: &str, case_insensitive: bool) -> Option<Self> {
        let regex = RegexBuilder::new(&like_regex(pattern))
            .case_insensitive(case_insensitive)
            .dot_matches_new_line(true)
            .build()
            .ok()?;
        Some(CompiledLike {
            pattern: pattern.to_owned(),
            case_insensitive,
            regex,
            signature: Signature::any(2, Volatility::Immutable),
        })
    }

    /// Whether each value of `array` matches (null stays null).
    pub fn matches(&self, array: &dyn Array) -> Result<BooleanArray> {
        Ok(match array.data_type() {
            DataType::Utf8 => self.match_strings(array.as_string::<i32>()),
            DataType::LargeUtf8 => self.match_strings(array.as_string::<i64>()),
            DataType::Utf8View => self.match_strings(array.as_string_view()),
            DataType::Dictionary(k, _) if k.as_ref() == &DataType::Int32 => {
                let dict: &DictionaryArray<Int32Type> = array.as_dictionary();
                let on_values = self.matches(dict.values().as_ref())?;
                take(&on_values, dict.keys(), None)?.as_boolean().clone()
            }
            DataType::Dictionary(_, _) | DataType::Null => {
                self.matches(cast(array, &DataType::Utf8)?.as_ref())?
            }
            other => return exec_err!("LIKE on {other}: expected text"),
        })
    }

    fn match_strings<'a>(&self, strings: impl StringArrayType<'a>) -> BooleanArray {
        strings
            .iter()
            .map(|s| s.map(|s| self.regex.is_match(s)))
            .collect()
    }
}

impl PartialEq for CompiledLike {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.case_insensitive == other.case_insensitive
    }
}

impl Eq for CompiledLike {}

impl Hash for CompiledLike {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
        self.case_insensitive.hash(state);
    }
}

impl ScalarUDFImpl for CompiledLike {
    fn name(&self) -> &str {
        if self.case_insensitive {
            "lanner_ilike"
        } else {
            "lanner_like"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(text) = args.args.first() else {
            return exec_err!("{}: expected the text to match", self.name());
        };
        match text {
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(
                Arc::new(self.matches(a.as_ref())?) as ArrayRef,
            )),
            ColumnarValue::Scalar(s) => {
                let a = s.to_array()?;
                let m = self.matches(a.as_ref())?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&m, 0)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{StringArray, StringViewArray};
    use datafusion::arrow::compute::kernels::comparison::{ilike, like};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    const PATTERNS: &[&str] = &[
        "%O_WRONLY%",
        "a_c",
        "_",
        "%",
        "%%",
        "a%b%c",
        "%.%",
        "x\\_y",
        "100\\%",
        "%\\\\%",
        "tail\\",
        "(a|b)%",
        "[x]%_",
        "%é_",
        "/etc/%",
        "%shadow%",
        "%.log",
        "exact",
        "a#b&c-d~e%",
    ];

    const TEXTS: &[Option<&str>] = &[
        Some("O_WRONLY|O_CREAT"),
        Some("O-WRONLY"),
        Some("O_RDONLY"),
        Some("abc"),
        Some("a\nc"),
        Some("ac"),
        Some(""),
        Some("x_y"),
        Some("xzy"),
        Some("100%"),
        Some("1000"),
        Some("back\\slash"),
        Some("tail\\"),
        Some("(a|b)zz"),
        Some("[x]q"),
        Some("caféz"),
        Some("CAFÉZ"),
        Some("/etc/shadow"),
        Some("/ETC/Passwd"),
        Some("a.log"),
        Some("EXACT"),
        Some("a#b&c-d~e"),
        None,
    ];

    /// What arrow's kernel says, for every pattern and text (both cases).
    fn check(array: &dyn Array, texts: &StringArray) {
        for p in PATTERNS {
            for ci in [false, true] {
                let f = CompiledLike::new(p, ci).expect("pattern compiles");
                let ours = f.matches(array).unwrap();
                let pattern = StringArray::new_scalar(*p);
                let theirs = if ci {
                    ilike(texts, &pattern).unwrap()
                } else {
                    like(texts, &pattern).unwrap()
                };
                assert_eq!(ours, theirs, "pattern {p:?}, case-insensitive {ci}");
            }
        }
    }

    #[test]
    fn matches_what_the_kernel_matches() {
        let texts = StringArray::from(TEXTS.to_vec());
        check(&texts, &texts);
        check(&StringViewArray::from(TEXTS.to_vec()), &texts);
        check(&cast(&texts, &DataType::LargeUtf8).unwrap(), &texts);
        let dict = cast(
            &texts,
            &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        )
        .unwrap();
        check(dict.as_ref(), &texts);
        let dict16 = cast(
            &texts,
            &DataType::Dictionary(Box::new(DataType::Int16), Box::new(DataType::Utf8)),
        )
        .unwrap();
        check(dict16.as_ref(), &texts);
    }

    #[test]
    fn only_patterns_the_kernel_compiles_are_replaced() {
        for p in ["%O_WRONLY%", "a_c", "a%b%c", "x\\_y", "%\\\\%"] {
            assert!(needs_regex(p, false), "{p}");
        }
        for p in ["/etc/%", "%shadow%", "%.log", "exact", "%", "%%"] {
            assert!(!needs_regex(p, false), "{p}");
        }
        assert!(!needs_regex("/etc/%", true));
        assert!(needs_regex("%shadow%", true));
        assert!(needs_regex("café%", true));
    }

    /// A session with a table `t` of one text column `s` (a dictionary column `d`
    /// beside it), with the rule or without.
    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_batch_size(4)
            .with_option_extension(LannerOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_optimizer_rule(Arc::new(CompileLikePatterns));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let texts = StringArray::from(TEXTS.to_vec());
        let dict_type = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("d", dict_type.clone(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(texts.clone()), cast(&texts, &dict_type).unwrap()],
        )
        .unwrap();
        let table = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out = Vec::new();
        for b in &batches {
            for c in b.columns() {
                let col = cast(c, &DataType::Utf8).unwrap();
                out.extend(col.as_string::<i32>().iter().map(|v| format!("{v:?}")));
            }
        }
        out
    }

    #[tokio::test]
    async fn filters_return_what_like_returns() {
        let (with, without) = (context(true), context(false));
        for p in PATTERNS {
            let p = p.replace('\'', "''");
            for (col, op) in [
                ("s", "LIKE"),
                ("d", "LIKE"),
                ("s", "NOT ILIKE"),
                ("d", "ILIKE"),
            ] {
                let sql = format!("SELECT {col} FROM t WHERE {col} {op} '{p}' ORDER BY s");
                assert_eq!(rows(&with, &sql).await, rows(&without, &sql).await, "{sql}");
            }
        }
        let plan = rows(
            &with,
            "EXPLAIN SELECT s FROM t WHERE d LIKE '%O_WRONLY%' AND s NOT LIKE 'a_c'",
        )
        .await
        .join("\n");
        assert!(plan.contains("lanner_like(t.d"), "{plan}");
        assert!(plan.contains("NOT lanner_like(t.s"), "{plan}");
        let plain = rows(&with, "EXPLAIN SELECT s FROM t WHERE s LIKE '/etc/%'").await;
        assert!(!plain.join("\n").contains("lanner_like"), "{plain:?}");
    }
}
