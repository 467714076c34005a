//! Falco's condition language: the syntax tree ([`Expr`]) and its parser ([`parse`]).
//!
//! The grammar follows libsinsp's filter parser: `or` binds loosest, then `and`, then
//! `not`; a check is a field (optionally with an argument, `proc.aname[2]`, or wrapped in
//! transformers, `tolower(proc.name)`) followed by a unary operator (`exists`), a
//! comparison with a value (`=`, `contains`, `glob`, ...; the value may be `val(field)`
//! or a transformed field) or a list operator with a list (`in (a, "b c")`); a bare
//! identifier is a macro reference (or, right of a list operator, a list name).

mod parser;

pub use parser::{ParseError, list_item_text, parse};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `=` or `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `contains`.
    Contains,
    /// `icontains` (ASCII case-insensitive).
    IContains,
    /// `bcontains` (hex bytes).
    BContains,
    /// `startswith`.
    StartsWith,
    /// `bstartswith` (hex bytes).
    BStartsWith,
    /// `endswith`.
    EndsWith,
    /// `glob`.
    Glob,
    /// `iglob`.
    IGlob,
    /// `regex` (whole value must match).
    Regex,
    /// `in`.
    In,
    /// `intersects`.
    Intersects,
    /// `pmatch` (path prefix).
    PMatch,
    /// `exists`.
    Exists,
}

impl Op {
    /// The operator as written in conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::PMatch => "pmatch",
            Op::Exists => "exists",
        }
    }

    /// Parses an operator name as used in exception `comps`.
    pub fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "regex" => Op::Regex,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "pmatch" => Op::PMatch,
            "exists" => Op::Exists,
            _ => return None,
        })
    }

    /// Whether the operator takes a list on its right.
    pub fn is_list_op(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

/// A field transformer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transformer {
    /// `tolower(...)`.
    ToLower,
    /// `toupper(...)`.
    ToUpper,
    /// `b64(...)`: base64-decodes.
    B64,
    /// `basename(...)`: the last path component.
    Basename,
    /// `len(...)`: length of a string or list.
    Len,
}

impl Transformer {
    /// The transformer's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Transformer::ToLower => "tolower",
            Transformer::ToUpper => "toupper",
            Transformer::B64 => "b64",
            Transformer::Basename => "basename",
            Transformer::Len => "len",
        }
    }
}

/// The left side of a check (or the right side, with `val()`): a field or a
/// transformed field.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A field with an optional argument.
    Field {
        /// Field name (`proc.aname`).
        name: String,
        /// Argument (`2` in `proc.aname[2]`).
        arg: Option<String>,
        /// Byte offset in the condition.
        at: usize,
    },
    /// A transformer applied to an operand.
    Transform {
        /// The transformer.
        func: Transformer,
        /// Its argument.
        arg: Box<Operand>,
        /// Byte offset in the condition.
        at: usize,
    },
}

impl Operand {
    /// Canonical text (`tolower(proc.aname[2])`).
    pub fn to_text(&self) -> String {
        match self {
            Operand::Field {
                name, arg: None, ..
            } => name.clone(),
            Operand::Field {
                name, arg: Some(a), ..
            } => format!("{name}[{a}]"),
            Operand::Transform { func, arg, .. } => format!("{}({})", func.as_str(), arg.to_text()),
        }
    }
}

/// A literal value: its text (unquoted and unescaped) and whether it was quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Literal {
    /// The value.
    pub text: String,
    /// It was written in quotes (a quoted name is never a list reference).
    pub quoted: bool,
}

/// The right side of a check.
#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    /// None (`exists`).
    None,
    /// One value.
    Value(Literal),
    /// A parenthesised list of values.
    List(Vec<Literal>),
    /// A bare identifier right of a list operator: a list name.
    ListRef(String),
    /// Another field (`val(proc.pname)`) or a transformed field.
    Operand(Operand),
}

/// A condition's syntax tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// All children hold.
    And(Vec<Expr>),
    /// Any child holds.
    Or(Vec<Expr>),
    /// The child does not hold.
    Not(Box<Expr>),
    /// A macro reference.
    Macro {
        /// Macro name.
        name: String,
        /// Byte offset in the condition.
        at: usize,
    },
    /// A field check.
    Check {
        /// Left side.
        lhs: Operand,
        /// Operator.
        op: Op,
        /// Right side.
        rhs: Rhs,
        /// Byte offset in the condition.
        at: usize,
    },
}

/// 1-based line and column of a byte offset in `text`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => at - nl,
        None => at + 1,
    };
    (line, col)
}
