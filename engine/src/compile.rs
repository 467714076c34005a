//! Compiles a parsed condition into a [`Pred`]: expands macros and lists, resolves every
//! field once with [`FieldRef::parse`], parses constants for the field's kind, and works
//! out which event types can satisfy the condition (for the `evt.type` index).
//!
//! A field the accessor does not know is collected in [`Compiled::missing`] (the rule is
//! then disabled alone); a macro that does not exist, or a constant the field cannot
//! hold (`user.uid = root`), is an error.

use std::collections::{BTreeSet, HashMap};

use lanner_contract::{Field, FieldArg, FieldRef, Kind};

use crate::condition::{Expr, Literal, Op, Operand, Rhs, Transformer, list_item_text};
use crate::evttype::TypeSet;
use crate::predicate::{Const, Getter, Pred, Test, ValueSet};

/// Deepest macro/list nesting accepted.
const MAX_NESTING: usize = 64;

/// Macros and lists a condition may use.
#[derive(Default)]
pub struct Scope<'a> {
    /// Parsed macro conditions by name.
    pub macros: HashMap<&'a str, &'a Expr>,
    /// List items (already expanded for earlier lists) by name.
    pub lists: HashMap<&'a str, &'a [String]>,
}

/// A compiled condition.
#[derive(Debug)]
pub struct Compiled {
    /// The predicate.
    pub pred: Pred,
    /// Field names the accessor does not know (the rule must be disabled).
    pub missing: BTreeSet<String>,
    /// Event types for which the condition can be true.
    pub evttypes: TypeSet,
    /// Macros used (for "unused macro" reporting).
    pub used_macros: BTreeSet<String>,
}

/// Why a condition does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// Byte offset in the condition that contains it (the top-level condition, or the
    /// macro named in `in_macro`).
    pub at: usize,
    /// The macro whose condition holds the error, if not the top level.
    pub in_macro: Option<String>,
    /// What is wrong.
    pub message: String,
}

struct Ctx<'s, 'a> {
    scope: &'s Scope<'a>,
    missing: BTreeSet<String>,
    used_macros: BTreeSet<String>,
    macro_stack: Vec<String>,
}

/// Compiles `expr` in `scope`.
pub fn compile(expr: &Expr, scope: &Scope<'_>) -> Result<Compiled, CompileError> {
    let mut ctx = Ctx {
        scope,
        missing: BTreeSet::new(),
        used_macros: BTreeSet::new(),
        macro_stack: Vec::new(),
    };
    let (mut pred, types) = ctx.expr(expr)?;
    pred.optimize();
    Ok(Compiled {
        pred,
        missing: ctx.missing,
        evttypes: types.may_true,
        used_macros: ctx.used_macros,
    })
}

/// Event types for which a sub-condition may be true and may be false.
struct Types {
    may_true: TypeSet,
    may_false: TypeSet,
}

impl Types {
    fn any() -> Types {
        Types {
            may_true: TypeSet::all(),
            may_false: TypeSet::all(),
        }
    }
}

/// What kind of values a getter yields, for validating constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VKind {
    Str,
    Num,
    Bool,
    Ip,
    Other,
}

fn field_vkind(r: &FieldRef) -> VKind {
    let name = r.field.name();
    if matches!(name, "fd.ip" | "fd.net") {
        return VKind::Ip;
    }
    if name == "fd.port" {
        return VKind::Num;
    }
    match r.field.kind() {
        Kind::Str | Kind::StrList => VKind::Str,
        Kind::U64 | Kind::I64 | Kind::Ts | Kind::U64List => VKind::Num,
        Kind::Bool => VKind::Bool,
        Kind::Ip => VKind::Ip,
        Kind::Map => VKind::Other,
    }
}

impl Ctx<'_, '_> {
    fn err(&self, at: usize, message: String) -> CompileError {
        CompileError {
            at,
            in_macro: self.macro_stack.last().cloned(),
            message,
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<(Pred, Types), CompileError> {
        match e {
            Expr::And(children) => {
                let mut preds = Vec::with_capacity(children.len());
                let mut t = Types {
                    may_true: TypeSet::all(),
                    may_false: TypeSet::none(),
                };
                for c in children {
                    let (p, ct) = self.expr(c)?;
                    t.may_true = t.may_true.intersect(&ct.may_true);
                    t.may_false = t.may_false.union(&ct.may_false);
                    preds.push(p);
                }
                Ok((Pred::And(preds.into_boxed_slice()), t))
            }
            Expr::Or(children) => {
                let mut preds = Vec::with_capacity(children.len());
                let mut t = Types {
                    may_true: TypeSet::none(),
                    may_false: TypeSet::all(),
                };
                for c in children {
                    let (p, ct) = self.expr(c)?;
                    t.may_true = t.may_true.union(&ct.may_true);
                    t.may_false = t.may_false.intersect(&ct.may_false);
                    preds.push(p);
                }
                Ok((Pred::Or(preds.into_boxed_slice()), t))
            }
            Expr::Not(inner) => {
                let (p, t) = self.expr(inner)?;
                Ok((
                    Pred::Not(Box::new(p)),
                    Types {
                        may_true: t.may_false,
                        may_false: t.may_true,
                    },
                ))
            }
            Expr::Macro { name, at } => {
                let Some(body) = self.scope.macros.get(name.as_str()).copied() else {
                    return Err(self.err(*at, format!("undefined macro '{name}' used in filter")));
                };
                if self.macro_stack.len() >= MAX_NESTING
                    || self.macro_stack.iter().any(|m| m == name)
                {
                    return Err(self.err(
                        *at,
                        format!("macro '{name}' refers to itself (or nests too deep)"),
                    ));
                }
                self.used_macros.insert(name.clone());
                self.macro_stack.push(name.clone());
                let r = self.expr(body);
                self.macro_stack.pop();
                r
            }
            Expr::Check { lhs, op, rhs, at } => self.check(lhs, *op, rhs, *at),
        }
    }

    fn getter(&mut self, o: &Operand) -> Result<(Option<Getter>, VKind), CompileError> {
        match o {
            Operand::Field { name, arg, at } => {
                let text = match arg {
                    Some(a) => format!("{name}[{a}]"),
                    None => name.clone(),
                };
                match FieldRef::parse(&text) {
                    Ok(r) => {
                        let mut k = field_vkind(&r);
                        if let (Field::Stored(_), Some(FieldArg::Index(_))) = (r.field, &r.arg) {
                            k = if r.field.kind() == Kind::U64List {
                                VKind::Num
                            } else {
                                VKind::Str
                            };
                        }
                        Ok((Some(Getter::field(r)), k))
                    }
                    Err(lanner_contract::FieldError::Unknown(_)) => {
                        self.missing.insert(name.clone());
                        Ok((None, VKind::Other))
                    }
                    Err(e) => Err(self.err(*at, e.to_string())),
                }
            }
            Operand::Transform { func, arg, at } => {
                let (inner, k) = self.getter(arg)?;
                let out = match func {
                    Transformer::Len => VKind::Num,
                    _ if matches!(k, VKind::Str | VKind::Other) => VKind::Str,
                    _ => {
                        return Err(self.err(
                            *at,
                            format!(
                                "transformer '{}' does not apply to field '{}'",
                                func.as_str(),
                                arg.to_text()
                            ),
                        ));
                    }
                };
                Ok((inner.map(|g| Getter::Transform(*func, Box::new(g))), out))
            }
        }
    }

    fn check_const(
        &self,
        kind: VKind,
        op: Op,
        text: &str,
        field: &Operand,
        at: usize,
    ) -> Result<(), CompileError> {
        let bad = |what: &str| {
            Err(self.err(
                at,
                format!(
                    "field '{}' holds {what}: '{text}' is not one (operator '{}')",
                    field.to_text(),
                    op.as_str()
                ),
            ))
        };
        let ordered_or_eq = matches!(
            op,
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::In | Op::Intersects
        );
        match kind {
            VKind::Num if ordered_or_eq && crate::predicate::parse_num(text).is_none() => {
                bad("numbers")
            }
            VKind::Bool if ordered_or_eq && !matches!(text, "true" | "false") => {
                bad("booleans (true/false)")
            }
            VKind::Ip if ordered_or_eq && crate::matchers::Net::parse(text).is_none() => {
                bad("IP addresses (compared as networks)")
            }
            VKind::Str if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) => Err(self.err(
                at,
                format!(
                    "operator '{}' needs a numeric field, '{}' is text",
                    op.as_str(),
                    field.to_text()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn expand_list(&self, items: &[Literal], out: &mut Vec<String>) {
        for it in items {
            if !it.quoted
                && let Some(list) = self.scope.lists.get(it.text.as_str())
            {
                self.expand_raw(list, out, 0);
            } else {
                out.push(it.text.clone());
            }
        }
    }

    fn expand_raw(&self, list: &[String], out: &mut Vec<String>, depth: usize) {
        for raw in list {
            match self.scope.lists.get(raw.as_str()) {
                Some(inner) if depth < MAX_NESTING => self.expand_raw(inner, out, depth + 1),
                _ => out.push(list_item_text(raw)),
            }
        }
    }

    fn check(
        &mut self,
        lhs: &Operand,
        op: Op,
        rhs: &Rhs,
        at: usize,
    ) -> Result<(Pred, Types), CompileError> {
        let (getter, kind) = self.getter(lhs)?;
        let is_evt_type =
            matches!(lhs, Operand::Field { name, arg: None, .. } if name == "evt.type");
        let mut types = Types::any();
        let test = match (op, rhs) {
            (Op::Exists, _) => Test::Exists,
            (_, Rhs::Operand(o)) => {
                let (g, _) = self.getter(o)?;
                match g {
                    Some(g) => Test::Field(op, g),
                    None => Test::Exists,
                }
            }
            (Op::In | Op::Intersects | Op::PMatch, rhs) => {
                let mut items = Vec::new();
                match rhs {
                    Rhs::List(l) => self.expand_list(l, &mut items),
                    Rhs::ListRef(name) => match self.scope.lists.get(name.as_str()) {
                        Some(list) => self.expand_raw(list, &mut items, 0),
                        None => {
                            return Err(
                                self.err(at, format!("undefined list '{name}' used in filter"))
                            );
                        }
                    },
                    Rhs::Value(v) => items.push(v.text.clone()),
                    Rhs::None | Rhs::Operand(_) => {}
                }
                for it in &items {
                    self.check_const(kind, op, it, lhs, at)?;
                }
                if is_evt_type && op != Op::PMatch {
                    let set = TypeSet::only(items.iter().map(String::as_str));
                    types = Types {
                        may_false: set.complement(),
                        may_true: set,
                    };
                }
                if op == Op::PMatch {
                    Test::PMatch(items.iter().map(|s| s.as_str().into()).collect())
                } else {
                    Test::In(ValueSet::new(items.iter().map(String::as_str)))
                }
            }
            (_, Rhs::Value(v)) => {
                self.check_const(kind, op, &v.text, lhs, at)?;
                if is_evt_type && matches!(op, Op::Eq | Op::Ne) {
                    let set = TypeSet::only([v.text.as_str()]);
                    types = if op == Op::Eq {
                        Types {
                            may_false: set.complement(),
                            may_true: set,
                        }
                    } else {
                        Types {
                            may_true: set.complement(),
                            may_false: set,
                        }
                    };
                }
                Test::Cmp(op, Const::new(&v.text, op).map_err(|m| self.err(at, m))?)
            }
            (_, Rhs::List(_) | Rhs::ListRef(_)) => {
                return Err(self.err(
                    at,
                    format!("operator '{}' does not take a list", op.as_str()),
                ));
            }
            (_, Rhs::None) => {
                return Err(self.err(at, format!("operator '{}' needs a value", op.as_str())));
            }
        };
        let pred = match getter {
            Some(lhs) => Pred::check(lhs, test),
            None => Pred::Or(Box::new([])),
        };
        Ok((pred, types))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::parse;
    use lanner_contract::Event;

    fn eval(cond: &str, ev: &Event) -> bool {
        let e = parse(cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
        let c = compile(&e, &Scope::default()).unwrap_or_else(|e| panic!("{cond}: {e}"));
        assert!(c.missing.is_empty(), "{cond}: missing {:?}", c.missing);
        c.pred.eval(ev)
    }

    fn shell() -> Event {
        Event {
            evt_type: Some("execve".into()),
            proc_name: Some("bash".into()),
            proc_args: Some("-c 'echo hi'".into()),
            proc_aname: Some(vec!["sshd".into(), "systemd".into()].into()),
            proc_tty: Some(34816),
            user_uid: Some(0),
            fd_num: Some(-1),
            fd_sip: Some("10.1.2.3".parse().expect("ip")),
            fd_cip: Some("192.168.1.5".parse().expect("ip")),
            evt_arg_flags: Some("O_RDONLY|O_CLOEXEC".into()),
            container_privileged: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn operator_semantics() {
        let ev = shell();
        for (cond, want) in [
            ("proc.name = bash", true),
            ("proc.name == bash", true),
            ("proc.name != bash", false),
            ("proc.name = Bash", false),
            ("proc.name icontains BA", true),
            ("proc.name contains as", true),
            ("proc.name startswith ba", true),
            ("proc.name endswith sh", true),
            ("proc.name glob 'b*h'", true),
            ("proc.name iglob 'B?SH'", true),
            ("proc.name regex 'ba.h'", true),
            ("proc.name regex 'ba'", false),
            ("proc.name bcontains 6173", true),
            ("proc.name bstartswith 6261", true),
            ("proc.name bstartswith 6173", false),
            ("proc.name in (zsh, bash)", true),
            ("proc.name in (zsh, 'bash ')", false),
            ("proc.name intersects (bash)", true),
            ("proc.name exists", true),
            ("proc.exepath exists", false),
            ("not proc.exepath exists", true),
            ("proc.exepath = x", false),
            ("proc.exepath != x", false),
            ("not proc.exepath = x", true),
            ("user.uid = 0", true),
            ("user.uid < 1", true),
            ("user.uid >= 0x1", false),
            ("user.uid in (0, 1000)", true),
            ("fd.num = -1", true),
            ("fd.num >= 0", false),
            ("proc.tty != 0", true),
            ("container.privileged = false", true),
            ("container.privileged = true", false),
            ("proc.aname = systemd", true),
            ("proc.aname in (init, sshd)", true),
            ("proc.aname[1] = sshd", true),
            ("proc.aname[2] = sshd", false),
            ("proc.aname[2] = systemd", true),
            ("proc.pname = sshd", true),
            ("proc.aname contains yste", true),
            ("fd.snet = 10.0.0.0/8", true),
            ("fd.cnet = 10.0.0.0/8", false),
            ("fd.net = 192.168.0.0/16", true),
            ("fd.ip = 10.1.2.3", true),
            ("fd.ip in (1.1.1.1, 10.1.2.3)", true),
            ("fd.sip = 10.1.2.4", false),
            ("fd.snet in (172.16.0.0/12, 10.0.0.0/8)", true),
            ("evt.arg.flags contains O_RDONLY", true),
            ("tolower(proc.name) = bash", true),
            ("toupper(proc.name) = BASH", true),
            ("len(proc.name) = 4", true),
            ("len(proc.aname) > 1", true),
            ("basename(proc.name) = bash", true),
            ("proc.name = val(proc.pname)", false),
            ("proc.name != val(proc.pname)", true),
            ("proc.pname = val(proc.aname[1])", true),
            ("proc.cmdline = \"bash -c 'echo hi'\"", true),
            ("proc.cmdline contains \"'echo\"", true),
            (
                "(proc.name = bash or proc.name = zsh) and not (user.uid = 1)",
                true,
            ),
            (
                "evt.type in (execve, execveat) and proc.name in (ash, bash, csh)",
                true,
            ),
        ] {
            assert_eq!(eval(cond, &ev), want, "{cond}");
        }
    }

    #[test]
    fn b64_transformer() {
        let ev = Event {
            proc_args: Some("aGVsbG8=".into()),
            ..Default::default()
        };
        assert!(eval("b64(proc.args) = hello", &ev));
    }

    #[test]
    fn bad_constants_are_errors() {
        for cond in [
            "user.uid = root",
            "container.privileged = yes",
            "fd.snet = notanet",
            "proc.name < 3",
            "proc.name regex '('",
            "proc.name bcontains zz",
        ] {
            let e = parse(cond).expect("parses");
            assert!(compile(&e, &Scope::default()).is_err(), "{cond}");
        }
    }

    #[test]
    fn unknown_fields_are_collected_not_errors() {
        let e = parse("proc.name = x and evt.buffer bcontains cafe and k8s.nope exists")
            .expect("parses");
        let c = compile(&e, &Scope::default()).expect("compiles");
        assert_eq!(
            c.missing.into_iter().collect::<Vec<_>>(),
            vec!["evt.buffer".to_string(), "k8s.nope".to_string()]
        );
    }

    #[test]
    fn macros_and_lists_expand() {
        let shells: Vec<String> = vec![
            "bash".into(),
            "'\"(weird name)\"'".into(),
            "\"sh -c x\"".into(),
        ];
        let more: Vec<String> = vec!["shells".into(), "ksh".into()];
        let m = parse("proc.name in (more_shells)").expect("parses");
        let mut scope = Scope::default();
        scope.lists.insert("shells", &shells);
        scope.lists.insert("more_shells", &more);
        scope.macros.insert("shell_procs", &m);
        let e = parse("shell_procs and not proc.name in (\"shells\")").expect("parses");
        let c = compile(&e, &scope).expect("compiles");
        assert!(c.used_macros.contains("shell_procs"));
        assert!(c.pred.eval(&Event {
            proc_name: Some("bash".into()),
            ..Default::default()
        }));
        assert!(c.pred.eval(&Event {
            proc_name: Some("ksh".into()),
            ..Default::default()
        }));
        assert!(c.pred.eval(&Event {
            proc_name: Some("sh -c x".into()),
            ..Default::default()
        }));
        assert!(!c.pred.eval(&Event {
            proc_name: Some("shells".into()),
            ..Default::default()
        }));
        let e = parse("undefined_macro").expect("parses");
        assert!(compile(&e, &scope).is_err());
    }

    #[test]
    fn event_type_sets() {
        let types = |cond: &str| {
            compile(&parse(cond).expect("parses"), &Scope::default())
                .expect("compiles")
                .evttypes
        };
        assert_eq!(
            types("evt.type = execve and proc.name = x"),
            TypeSet::only(["execve"])
        );
        assert_eq!(
            types("evt.type in (open, openat) or evt.type = execve"),
            TypeSet::only(["open", "openat", "execve"])
        );
        assert_eq!(types("proc.name = x"), TypeSet::all());
        assert_eq!(
            types("evt.type != execve"),
            TypeSet::only(["execve"]).complement()
        );
        assert_eq!(
            types("not (evt.type = execve and proc.name = x)"),
            TypeSet::all()
        );
        assert_eq!(
            types("not evt.type in (a, b) and evt.type in (b, c)"),
            TypeSet::only(["c"])
        );
        assert_eq!(types("evt.type = a and evt.type = b"), TypeSet::none());
    }
}
