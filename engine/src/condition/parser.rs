//! Recursive-descent parser for conditions, following libsinsp's grammar and lexing
//! rules (field names need a dot, bare strings stop at blanks, parentheses, quotes,
//! `=` and `,`; word operators need a blank after them).

use super::{Expr, Literal, Op, Operand, Rhs, Transformer, line_col};

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 500;

/// A syntax error: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {line}:{col}: {message}")]
pub struct ParseError {
    /// 1-based line within the condition.
    pub line: usize,
    /// 1-based column within the condition.
    pub col: usize,
    /// Byte offset within the condition.
    pub at: usize,
    /// What went wrong.
    pub message: String,
}

/// Parses a condition.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
        last: String::new(),
    };
    if text.trim().is_empty() {
        return Err(p.err_at(0, "condition is empty".into()));
    }
    let e = p.parse_or()?;
    p.blank();
    if p.i != p.s.len() {
        let near = p.near();
        return Err(p.err(format!(
            "unexpected token {near}, expecting 'or', 'and' or the end"
        )));
    }
    Ok(e)
}

/// Reads a list item as Falco does after substituting it into a condition: an item
/// written in quotes (`'"(systemd)"'` in YAML) is unquoted and unescaped; any other item
/// is taken as is.
pub fn list_item_text(item: &str) -> String {
    if item.starts_with('"') || item.starts_with('\'') {
        let mut p = Parser {
            s: item.as_bytes(),
            text: item,
            i: 0,
            depth: 0,
            last: String::new(),
        };
        if let Ok(Some(t)) = p.lex_quoted_str()
            && p.i == item.len()
        {
            return t;
        }
    }
    item.to_owned()
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
    last: String,
}

const STR_OPS: &[(&str, Op, bool)] = &[
    ("==", Op::Eq, false),
    ("=", Op::Eq, false),
    ("!=", Op::Ne, false),
    ("glob", Op::Glob, true),
    ("iglob", Op::IGlob, true),
    ("contains", Op::Contains, true),
    ("icontains", Op::IContains, true),
    ("bcontains", Op::BContains, true),
    ("startswith", Op::StartsWith, true),
    ("bstartswith", Op::BStartsWith, true),
    ("endswith", Op::EndsWith, true),
    ("regex", Op::Regex, true),
];
const NUM_OPS: &[(&str, Op)] = &[("<=", Op::Le), ("<", Op::Lt), (">=", Op::Ge), (">", Op::Gt)];
const LIST_OPS: &[(&str, Op)] = &[
    ("intersects", Op::Intersects),
    ("in", Op::In),
    ("pmatch", Op::PMatch),
];
const TRANSFORMERS: &[(&str, Transformer)] = &[
    ("tolower(", Transformer::ToLower),
    ("toupper(", Transformer::ToUpper),
    ("b64(", Transformer::B64),
    ("basename(", Transformer::Basename),
    ("len(", Transformer::Len),
];

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 8 | b'\r' | b'\n')
}

impl<'a> Parser<'a> {
    fn err_at(&self, at: usize, message: String) -> ParseError {
        let (line, col) = line_col(self.text, at);
        ParseError {
            line,
            col,
            at,
            message,
        }
    }

    fn err(&self, message: String) -> ParseError {
        self.err_at(self.i, message)
    }

    fn near(&self) -> String {
        let rest: String = self.text[self.i..].chars().take(20).collect();
        if rest.is_empty() {
            "end of condition".into()
        } else {
            format!("'{rest}'")
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("exceeded max depth limit of {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn blank(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
        self.i > start
    }

    fn lit(&mut self, s: &str) -> bool {
        if self.s[self.i..].starts_with(s.as_bytes()) {
            self.i += s.len();
            self.last = s.to_owned();
            true
        } else {
            false
        }
    }

    /// `[a-zA-Z][a-zA-Z0-9_]*` at `i`; returns its end.
    fn ident_end(&self, i: usize) -> Option<usize> {
        if !self.s.get(i)?.is_ascii_alphabetic() {
            return None;
        }
        let mut j = i + 1;
        while self
            .s
            .get(j)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            j += 1;
        }
        Some(j)
    }

    fn lex_identifier(&mut self) -> Option<String> {
        let end = self.ident_end(self.i)?;
        let t = self.text[self.i..end].to_owned();
        self.i = end;
        self.last = t.clone();
        Some(t)
    }

    fn lex_field_name(&mut self) -> Option<String> {
        let mut end = self.ident_end(self.i)?;
        let mut dots = 0;
        while self.s.get(end) == Some(&b'.') {
            match self.ident_end(end + 1) {
                Some(e) => {
                    end = e;
                    dots += 1;
                }
                None => break,
            }
        }
        if dots == 0 {
            return None;
        }
        let t = self.text[self.i..end].to_owned();
        self.i = end;
        self.last = t.clone();
        Some(t)
    }

    fn lex_while(&mut self, ok: impl Fn(u8) -> bool) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(&ok) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        let t = self.text[start..self.i].to_owned();
        self.last = t.clone();
        Some(t)
    }

    fn lex_bare_str(&mut self) -> Option<String> {
        self.lex_while(|b| !is_blank(b) && !matches!(b, b'(' | b')' | b'"' | b'\'' | b'=' | b','))
    }

    fn lex_quoted_str(&mut self) -> Result<Option<String>, ParseError> {
        let Some(delim) = self.peek().filter(|b| *b == b'"' || *b == b'\'') else {
            return Ok(None);
        };
        let start = self.i;
        let mut out = String::new();
        let mut j = self.i + 1;
        let mut chars = self.text[j..].char_indices();
        while let Some((off, c)) = chars.next() {
            if c as u32 == delim as u32 {
                self.i = j + off + 1;
                self.last = self.text[start..self.i].to_owned();
                return Ok(Some(out));
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, e)) => match e {
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        '\'' => out.push('\''),
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    None => break,
                }
                continue;
            }
            out.push(c);
        }
        j = start;
        Err(self.err_at(j, "unterminated quoted string".into()))
    }

    fn lex_number(&mut self) -> Option<String> {
        let s = self.s;
        let start = self.i;
        // hex
        if s[start..].len() > 2 && s[start] == b'0' && (s[start + 1] | 0x20) == b'x' {
            let mut j = start + 2;
            while s.get(j).is_some_and(|b| b.is_ascii_hexdigit()) {
                j += 1;
            }
            if j > start + 2 {
                self.i = j;
                self.last = self.text[start..j].to_owned();
                return Some(self.last.clone());
            }
        }
        let mut j = start;
        if matches!(s.get(j), Some(b'+') | Some(b'-')) {
            j += 1;
        }
        let digits = j;
        while s.get(j).is_some_and(|b| b.is_ascii_digit()) {
            j += 1;
        }
        if j == digits {
            return None;
        }
        if s.get(j) == Some(&b'.') {
            j += 1;
            while s.get(j).is_some_and(|b| b.is_ascii_digit()) {
                j += 1;
            }
        }
        if matches!(s.get(j), Some(b'e') | Some(b'E'))
            && matches!(s.get(j + 1), Some(b'+') | Some(b'-'))
        {
            let mut k = j + 2;
            while s.get(k).is_some_and(|b| b.is_ascii_digit()) {
                k += 1;
            }
            if k > j + 2 {
                j = k;
            }
        }
        self.i = j;
        self.last = self.text[start..j].to_owned();
        Some(self.last.clone())
    }

    fn lex_transformer(&mut self) -> Option<Transformer> {
        for (name, t) in TRANSFORMERS {
            if self.lit(name) {
                return Some(*t);
            }
        }
        None
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.parse_and()?];
        self.blank();
        while self.lit("or") {
            let child = if self.blank() {
                self.parse_and()?
            } else if self.lit("(") {
                self.parse_embedded()?
            } else {
                return Err(self.err("expected blank or '(' after 'or'".into()));
            };
            children.push(child);
            self.blank();
        }
        self.depth -= 1;
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Expr::Or(children)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.parse_not()?];
        self.blank();
        while self.lit("and") {
            let child = if self.blank() {
                self.parse_not()?
            } else if self.lit("(") {
                self.parse_embedded()?
            } else {
                return Err(self.err("expected blank or '(' after 'and'".into()));
            };
            children.push(child);
            self.blank();
        }
        self.depth -= 1;
        Ok(if children.len() == 1 {
            children.remove(0)
        } else {
            Expr::And(children)
        })
    }

    fn lex_not_blank(&mut self) -> bool {
        if self.s[self.i..].starts_with(b"not")
            && self.s.get(self.i + 3).is_some_and(|b| is_blank(*b))
        {
            self.i += 3;
            self.blank();
            true
        } else {
            false
        }
    }

    fn parse_not(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let mut negate = false;
        while self.lex_not_blank() {
            negate = !negate;
        }
        let child = if self.lit("not(") {
            negate = !negate;
            self.parse_embedded()?
        } else {
            self.parse_check()?
        };
        self.depth -= 1;
        Ok(if negate {
            Expr::Not(Box::new(child))
        } else {
            child
        })
    }

    /// After a '(' has been consumed.
    fn parse_embedded(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let e = self.parse_or()?;
        self.blank();
        if !self.lit(")") {
            let near = self.near();
            return Err(self.err(format!("expected a ')' token, found {near}")));
        }
        self.depth -= 1;
        Ok(e)
    }

    fn parse_check(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let at = self.i;
        let e = if self.lit("(") {
            self.parse_embedded()?
        } else if let Some(name) = self.lex_field_name() {
            let lhs = self.parse_field_rest(name, at)?;
            self.parse_comparison(lhs, at)?
        } else if let Some(t) = self.lex_transformer() {
            let lhs = self.parse_transformer_rest(t, at)?;
            self.parse_comparison(lhs, at)?
        } else if let Some(name) = self.lex_identifier() {
            Expr::Macro { name, at }
        } else {
            let near = self.near();
            return Err(self.err(format!(
                "expected a '(' token, a field check, or an identifier, found {near}"
            )));
        };
        self.depth -= 1;
        Ok(e)
    }

    fn parse_field_rest(&mut self, name: String, at: usize) -> Result<Operand, ParseError> {
        let mut arg = None;
        if self.lit("[") {
            let a = match self.lex_quoted_str()? {
                Some(q) => q,
                None => self
                    .lex_while(|b| !is_blank(b) && !matches!(b, b'[' | b']' | b'"' | b'\''))
                    .ok_or_else(|| {
                        self.err(
                            "expected a valid field argument: a quoted string or a bare string"
                                .into(),
                        )
                    })?,
            };
            if !self.lit("]") {
                return Err(self.err("expected a ']' token".into()));
            }
            arg = Some(a);
        }
        Ok(Operand::Field { name, arg, at })
    }

    /// After `name(` has been consumed.
    fn parse_transformer_rest(
        &mut self,
        func: Transformer,
        at: usize,
    ) -> Result<Operand, ParseError> {
        self.enter()?;
        self.blank();
        let arg_at = self.i;
        let arg = if let Some(t) = self.lex_transformer() {
            self.parse_transformer_rest(t, arg_at)?
        } else if let Some(name) = self.lex_field_name() {
            self.parse_field_rest(name, arg_at)?
        } else {
            return Err(self.err(format!(
                "expected a field or a nested transformer inside '{}('",
                func.as_str()
            )));
        };
        self.blank();
        if !self.lit(")") {
            return Err(self.err("expected a ')' token closing the transformer".into()));
        }
        self.depth -= 1;
        Ok(Operand::Transform {
            func,
            arg: Box::new(arg),
            at,
        })
    }

    /// `val(field)` or a transformer; `None` when neither starts here.
    fn try_operand_rhs(&mut self) -> Result<Option<Operand>, ParseError> {
        self.blank();
        let at = self.i;
        if self.lit("val(") {
            self.blank();
            let fat = self.i;
            let Some(name) = self.lex_field_name() else {
                return Err(self.err("expected a field within 'val' transformer".into()));
            };
            let f = self.parse_field_rest(name, fat)?;
            self.blank();
            if !self.lit(")") {
                return Err(self.err("expected a ')' token closing the transformer".into()));
            }
            return Ok(Some(f));
        }
        if let Some(t) = self.lex_transformer() {
            return Ok(Some(self.parse_transformer_rest(t, at)?));
        }
        Ok(None)
    }

    fn lex_op(&mut self) -> Option<Op> {
        if self.lit("exists") {
            return Some(Op::Exists);
        }
        for (s, op) in NUM_OPS {
            if self.lit(s) {
                return Some(*op);
            }
        }
        for (s, op, needs_blank) in STR_OPS {
            let save = self.i;
            if self.lit(s) {
                if !needs_blank || self.blank() {
                    return Some(*op);
                }
                self.i = save;
                return None;
            }
        }
        for (s, op) in LIST_OPS {
            if self.lit(s) {
                return Some(*op);
            }
        }
        None
    }

    fn parse_comparison(&mut self, lhs: Operand, at: usize) -> Result<Expr, ParseError> {
        self.enter()?;
        self.blank();
        let op_at = self.i;
        let Some(op) = self.lex_op() else {
            let near = self.near();
            return Err(self.err(format!(
                "expected a valid check operator (one of 'exists', '=', '==', '!=', '<', '<=', '>', '>=', 'contains', 'icontains', 'bcontains', 'startswith', 'bstartswith', 'endswith', 'glob', 'iglob', 'regex', 'in', 'intersects', 'pmatch'), found {near}"
            )));
        };
        let rhs = match op {
            Op::Exists => Rhs::None,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                if let Some(o) = self.try_operand_rhs()? {
                    Rhs::Operand(o)
                } else if let Some(n) = self.lex_number() {
                    Rhs::Value(Literal {
                        text: n,
                        quoted: false,
                    })
                } else {
                    return Err(self.err(format!("expected a number after '{}'", op.as_str())));
                }
            }
            Op::In | Op::Intersects | Op::PMatch => self.parse_list_rhs(op)?,
            _ => {
                if let Some(o) = self.try_operand_rhs()? {
                    Rhs::Operand(o)
                } else {
                    self.parse_str_value()?.map(Rhs::Value).ok_or_else(|| {
                        self.err(format!("expected a string value after '{}'", op.as_str()))
                    })?
                }
            }
        };
        let _ = op_at;
        self.depth -= 1;
        Ok(Expr::Check { lhs, op, rhs, at })
    }

    fn parse_str_value(&mut self) -> Result<Option<Literal>, ParseError> {
        self.blank();
        if let Some(q) = self.lex_quoted_str()? {
            return Ok(Some(Literal {
                text: q,
                quoted: true,
            }));
        }
        Ok(self.lex_bare_str().map(|t| Literal {
            text: t,
            quoted: false,
        }))
    }

    fn parse_list_rhs(&mut self, op: Op) -> Result<Rhs, ParseError> {
        self.blank();
        if self.lit("(") {
            let mut items = Vec::new();
            self.blank();
            if let Some(first) = self.parse_str_value()? {
                items.push(first);
                self.blank();
                while self.lit(",") {
                    let item = self
                        .parse_str_value()?
                        .ok_or_else(|| self.err("expected a string value in the list".into()))?;
                    items.push(item);
                    self.blank();
                }
            }
            if !self.lit(")") {
                let near = self.near();
                return Err(self.err(format!(
                    "expected a ')' token closing the list, found {near}"
                )));
            }
            return Ok(Rhs::List(items));
        }
        if let Some(o) = self.try_operand_rhs()? {
            return Ok(Rhs::Operand(o));
        }
        if let Some(name) = self.lex_identifier() {
            return Ok(Rhs::ListRef(name));
        }
        Err(self.err(format!(
            "expected a list, a list name, or a field with a transformer after '{}'",
            op.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Operand {
        Operand::Field {
            name: name.into(),
            arg: None,
            at: 0,
        }
    }

    fn strip(e: Expr) -> Expr {
        fn op(o: Operand) -> Operand {
            match o {
                Operand::Field { name, arg, .. } => Operand::Field { name, arg, at: 0 },
                Operand::Transform { func, arg, .. } => Operand::Transform {
                    func,
                    arg: Box::new(op(*arg)),
                    at: 0,
                },
            }
        }
        match e {
            Expr::And(v) => Expr::And(v.into_iter().map(strip).collect()),
            Expr::Or(v) => Expr::Or(v.into_iter().map(strip).collect()),
            Expr::Not(b) => Expr::Not(Box::new(strip(*b))),
            Expr::Macro { name, .. } => Expr::Macro { name, at: 0 },
            Expr::Check {
                lhs, op: o, rhs, ..
            } => Expr::Check {
                lhs: op(lhs),
                op: o,
                rhs: match rhs {
                    Rhs::Operand(x) => Rhs::Operand(op(x)),
                    r => r,
                },
                at: 0,
            },
        }
    }

    fn p(s: &str) -> Expr {
        strip(parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}")))
    }

    fn lit(s: &str, quoted: bool) -> Literal {
        Literal {
            text: s.into(),
            quoted,
        }
    }

    fn check(f: &str, op: Op, v: &str) -> Expr {
        Expr::Check {
            lhs: field(f),
            op,
            rhs: Rhs::Value(lit(v, false)),
            at: 0,
        }
    }

    #[test]
    fn precedence_and_or_not() {
        let m = |n: &str| Expr::Macro {
            name: n.into(),
            at: 0,
        };
        assert_eq!(
            p("a or b and not c"),
            Expr::Or(vec![
                m("a"),
                Expr::And(vec![m("b"), Expr::Not(Box::new(m("c")))])
            ])
        );
        assert_eq!(p("not not a"), m("a"));
        assert_eq!(p("not(a)"), Expr::Not(Box::new(m("a"))));
        assert_eq!(
            p("(a or b) and c"),
            Expr::And(vec![Expr::Or(vec![m("a"), m("b")]), m("c")])
        );
        assert_eq!(p("a and(b)"), Expr::And(vec![m("a"), m("b")]));
        assert_eq!(p("  \n\t a \n or\n b  "), Expr::Or(vec![m("a"), m("b")]));
    }

    #[test]
    fn operators_and_values() {
        assert_eq!(p("proc.name=bash"), check("proc.name", Op::Eq, "bash"));
        assert_eq!(p("proc.name == bash"), check("proc.name", Op::Eq, "bash"));
        assert_eq!(p("fd.num>=0"), check("fd.num", Op::Ge, "0"));
        assert_eq!(p("fd.num<-1"), check("fd.num", Op::Lt, "-1"));
        assert_eq!(p("fd.num != 0x10"), check("fd.num", Op::Ne, "0x10"));
        assert_eq!(
            p("fd.name startswith /etc/"),
            check("fd.name", Op::StartsWith, "/etc/")
        );
        assert_eq!(
            p("evt.res startswith E"),
            check("evt.res", Op::StartsWith, "E")
        );
        assert_eq!(
            p("proc.name exists"),
            Expr::Check {
                lhs: field("proc.name"),
                op: Op::Exists,
                rhs: Rhs::None,
                at: 0
            }
        );
        assert_eq!(
            p("proc.cmdline contains \"a \\\"b\\\" c\""),
            Expr::Check {
                lhs: field("proc.cmdline"),
                op: Op::Contains,
                rhs: Rhs::Value(lit("a \"b\" c", true)),
                at: 0
            }
        );
        assert_eq!(
            p("fd.name = 'a \\\\ b'"),
            Expr::Check {
                lhs: field("fd.name"),
                op: Op::Eq,
                rhs: Rhs::Value(lit("a \\ b", true)),
                at: 0
            }
        );
        assert!(parse("fd.name = 'it''s'").is_err());
    }

    #[test]
    fn word_operators_need_a_blank() {
        assert!(parse("proc.name containsx").is_err());
        assert!(parse("proc.name contains").is_err());
        assert!(parse("proc.name bogus x").is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(
            p("proc.name in (bash, 'sh', \"(systemd)\" ,zsh)"),
            Expr::Check {
                lhs: field("proc.name"),
                op: Op::In,
                rhs: Rhs::List(vec![
                    lit("bash", false),
                    lit("sh", true),
                    lit("(systemd)", true),
                    lit("zsh", false)
                ]),
                at: 0
            }
        );
        assert_eq!(
            p("proc.name in()"),
            Expr::Check {
                lhs: field("proc.name"),
                op: Op::In,
                rhs: Rhs::List(vec![]),
                at: 0
            }
        );
        assert_eq!(
            p("proc.name in shell_binaries"),
            Expr::Check {
                lhs: field("proc.name"),
                op: Op::In,
                rhs: Rhs::ListRef("shell_binaries".into()),
                at: 0
            }
        );
        assert_eq!(
            p("proc.pname in (runc:[0:PARENT], runc)"),
            Expr::Check {
                lhs: field("proc.pname"),
                op: Op::In,
                rhs: Rhs::List(vec![lit("runc:[0:PARENT]", false), lit("runc", false)]),
                at: 0
            }
        );
        assert!(parse("proc.name in (a, b").is_err());
        assert!(parse("proc.name in (a,)").is_err());
    }

    #[test]
    fn field_arguments_and_transformers() {
        assert_eq!(
            p("proc.aname[2]=sshd"),
            Expr::Check {
                lhs: Operand::Field {
                    name: "proc.aname".into(),
                    arg: Some("2".into()),
                    at: 0
                },
                op: Op::Eq,
                rhs: Rhs::Value(lit("sshd", false)),
                at: 0
            }
        );
        assert_eq!(
            p("tolower(proc.name) = bash"),
            Expr::Check {
                lhs: Operand::Transform {
                    func: Transformer::ToLower,
                    arg: Box::new(field("proc.name")),
                    at: 0
                },
                op: Op::Eq,
                rhs: Rhs::Value(lit("bash", false)),
                at: 0
            }
        );
        assert_eq!(
            p("proc.name = val(proc.pname)"),
            Expr::Check {
                lhs: field("proc.name"),
                op: Op::Eq,
                rhs: Rhs::Operand(field("proc.pname")),
                at: 0
            }
        );
        assert_eq!(
            p("len(proc.aname) > 3"),
            Expr::Check {
                lhs: Operand::Transform {
                    func: Transformer::Len,
                    arg: Box::new(field("proc.aname")),
                    at: 0
                },
                op: Op::Gt,
                rhs: Rhs::Value(lit("3", false)),
                at: 0
            }
        );
        assert!(parse("proc.aname[2 = x").is_err());
        assert!(parse("tolower(proc.name = x").is_err());
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("proc.name = bash and\n  (fd.name = x").expect_err("unclosed");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("')'"), "{e}");
        let e = parse("proc.name = bash garbage").expect_err("trailing");
        assert_eq!((e.line, e.col), (1, 18));
        assert!(parse("").is_err());
        assert!(parse("'unterminated").is_err());
        assert!(parse("proc.name = 'unterminated").is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse(&s).is_err());
        let s = format!("{}a{}", "(".repeat(60), ")".repeat(60));
        assert!(parse(&s).is_ok());
    }
}
