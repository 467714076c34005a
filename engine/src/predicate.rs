//! Compiled conditions and their evaluation against events.
//!
//! A [`Pred`] holds resolved [`FieldRef`]s and pre-parsed constants (numbers, networks,
//! globs, regexes, sorted sets), so judging an event only reads fields and compares.
//! Semantics follow Falco: a check on an unset field is false (so `not` of it is
//! true); a multi-valued field (`proc.aname`, `fd.ip`) matches when any value does;
//! `regex` must match the whole value; network fields (`fd.net`, `fd.snet`, ...)
//! compare as CIDR containment.

use std::borrow::Cow;
use std::net::IpAddr;

use base64::Engine as _;
use lanner_contract::{Event, Field, FieldRef, Kind, StoredField, TextField, Value};

use crate::condition::{Op, Transformer};
use crate::matchers::{Glob, Net, icontains, path_prefix_match, same_text};

/// A compiled condition.
#[derive(Clone, Debug)]
pub enum Pred {
    /// All hold.
    And(Box<[Pred]>),
    /// Any holds.
    Or(Box<[Pred]>),
    /// Negation.
    Not(Box<Pred>),
    /// A field check.
    Check(Box<Check>),
    /// A check on a field that reads as one text (a stored text field, an ancestor's
    /// (`proc.aname[2]`), `fd.directory`, `proc.pname`, ...), read without building a
    /// [`Value`]: the most common check in Falco rules, so it has its own lean path.
    Text(Box<TextCheck>),
    /// A comparison of a stored integer field with an integer constant.
    Int(Box<IntCheck>),
    /// `evt.is_open_read` (`_write`, `_exec`) `=` or `!=` a boolean, read without
    /// building a [`Value`].
    Flag(Box<FlagCheck>),
    /// `proc.cmdline` `=` or `startswith` a constant, compared with its two pieces
    /// (name, arguments) instead of joining them for every check.
    Cmdline(Box<CmdlineCheck>),
}

/// A boolean derived field compared with a constant (see [`Pred::Flag`]).
#[derive(Clone, Debug)]
pub struct FlagCheck {
    /// `evt.is_open_read`, `evt.is_open_write` or `evt.is_open_exec`.
    pub field: lanner_contract::field::DerivedField,
    /// The value that makes the check hold (`!= true` holds on `false`); an unset
    /// field never does.
    pub holds_on: bool,
}

/// A test of `proc.cmdline` (see [`Pred::Cmdline`]).
#[derive(Clone, Debug)]
pub enum CmdlineCheck {
    /// `=`.
    Eq(Box<str>),
    /// `startswith`.
    StartsWith(Box<str>),
}

/// A test on a field that reads as one text (see [`Pred::Text`]); same semantics as
/// the general [`Check`] it replaces.
#[derive(Clone, Debug)]
pub struct TextCheck {
    /// The field: a stored text, an ancestor's, or a piece of a stored text.
    pub field: TextField,
    /// The test.
    pub test: TextTest,
}

/// What a [`TextCheck`] tests.
#[derive(Clone, Debug)]
pub enum TextTest {
    /// `exists`.
    Exists,
    /// `=`.
    Eq(Box<str>),
    /// `!=`.
    Ne(Box<str>),
    /// `startswith`.
    StartsWith(Box<str>),
    /// `endswith`.
    EndsWith(Box<str>),
    /// `contains`, with its searcher built once.
    Contains(memchr::memmem::Finder<'static>),
    /// `in`/`intersects`.
    In(ValueSet),
    /// `pmatch`.
    PMatch(Vec<Box<str>>),
    /// Any other comparison with a constant.
    Cmp(Op, Const),
}

impl TextTest {
    /// The lean form of a test on a text field; a comparison with another field has
    /// none and comes back as it was. (Runs once per check when rules are compiled, so
    /// the size of the returned test does not matter.)
    #[allow(clippy::result_large_err)]
    fn from_test(test: Test) -> Result<TextTest, Test> {
        Ok(match test {
            Test::Exists => TextTest::Exists,
            Test::In(set) => TextTest::In(set),
            Test::PMatch(p) => TextTest::PMatch(p),
            Test::Cmp(op, c) => match op {
                Op::Eq => TextTest::Eq(c.text),
                Op::Ne => TextTest::Ne(c.text),
                Op::StartsWith => TextTest::StartsWith(c.text),
                Op::EndsWith => TextTest::EndsWith(c.text),
                Op::Contains => {
                    TextTest::Contains(memchr::memmem::Finder::new(c.text.as_bytes()).into_owned())
                }
                _ => TextTest::Cmp(op, c),
            },
            field @ Test::Field(..) => return Err(field),
        })
    }
}

/// A comparison of a stored integer field with an integer constant (see [`Pred::Int`]).
#[derive(Clone, Debug)]
pub struct IntCheck {
    /// The field (its kind is an integer).
    pub field: StoredField,
    /// `=`, `!=`, `<`, `<=`, `>` or `>=`.
    pub op: Op,
    /// The constant.
    pub k: i128,
}

/// Reads a value from an event: a field, possibly transformed.
#[derive(Clone, Debug)]
pub enum Getter {
    /// A stored field without argument, read directly.
    Stored(StoredField),
    /// A field.
    Field(FieldRef),
    /// A transformer over a getter.
    Transform(Transformer, Box<Getter>),
}

/// One check: a getter and a test on its value.
#[derive(Clone, Debug)]
pub struct Check {
    /// The left side.
    pub lhs: Getter,
    /// The test.
    pub test: Test,
}

/// A constant right-hand side, parsed every way it may be needed.
#[derive(Clone, Debug)]
pub struct Const {
    /// The text.
    pub text: Box<str>,
    /// Lowercased text (for `icontains`).
    pub lower: Box<str>,
    /// As an integer, if it is one.
    pub num: Option<i128>,
    /// As a boolean, if it is one.
    pub boolean: Option<bool>,
    /// As an IP network or address, if it is one.
    pub net: Option<Net>,
    /// Hex-decoded bytes (for `bcontains`/`bstartswith`).
    pub bytes: Option<Box<[u8]>>,
    /// Compiled glob (for `glob`/`iglob`).
    pub glob: Option<Glob>,
    /// Compiled regex (for `regex`).
    pub regex: Option<regex::Regex>,
}

/// A set of constants for `in`/`intersects`.
#[derive(Clone, Debug, Default)]
pub struct ValueSet {
    /// The texts, sorted by length, then bytes: most steps of a search then compare
    /// two lengths instead of two texts.
    pub strs: Vec<Box<str>>,
    /// For each of `strs`, in the same order: its length and its first 8 bytes as a
    /// big-endian number (zero-padded), which sort as the texts do; a search compares
    /// these integers and reads a text's remaining bytes only for an equal key.
    keys: Vec<(usize, u64)>,
    /// A one-hash Bloom filter of the texts' (length, first byte, last byte): most
    /// values that are not in the set are rejected by one bit (see [`filter_bit`]).
    filter: [u64; 4],
    /// Integers among them.
    pub nums: Vec<i128>,
    /// Networks/addresses among them.
    pub nets: Vec<Net>,
    /// Booleans among them.
    pub bools: Vec<bool>,
}

/// The test a check applies.
#[derive(Clone, Debug)]
pub enum Test {
    /// `exists`.
    Exists,
    /// A comparison with one constant.
    Cmp(Op, Const),
    /// `in`/`intersects`.
    In(ValueSet),
    /// `pmatch`.
    PMatch(Vec<Box<str>>),
    /// A comparison with another field (`val(...)` or a transformer).
    Field(Op, Getter),
}

impl Pred {
    /// Adds the stored fields the predicate reads to `out`.
    pub fn stored_deps(&self, out: &mut Vec<StoredField>) {
        match self {
            Pred::And(ps) | Pred::Or(ps) => ps.iter().for_each(|p| p.stored_deps(out)),
            Pred::Not(p) => p.stored_deps(out),
            Pred::Check(c) => {
                c.lhs.stored_deps(out);
                if let Test::Field(_, g) = &c.test {
                    g.stored_deps(out);
                }
            }
            Pred::Text(c) => FieldRef::from(c.field).stored_deps(out),
            Pred::Int(c) => out.push(c.field),
            Pred::Flag(c) => FieldRef {
                field: Field::Derived(c.field),
                arg: None,
            }
            .stored_deps(out),
            Pred::Cmdline(_) => out.extend([StoredField::proc_name, StoredField::proc_args]),
        }
    }

    /// A check, in its lean form when it has one ([`Pred::Text`], [`Pred::Int`],
    /// [`Pred::Flag`], [`Pred::Cmdline`]).
    pub fn check(lhs: Getter, test: Test) -> Pred {
        use lanner_contract::field::DerivedField as D;
        if let Getter::Field(FieldRef {
            field: Field::Derived(d),
            arg: None,
        }) = &lhs
        {
            match (d, &test) {
                (
                    D::EvtIsOpenRead | D::EvtIsOpenWrite | D::EvtIsOpenExec,
                    Test::Cmp(op @ (Op::Eq | Op::Ne), c),
                ) => {
                    if let Some(k) = c.boolean {
                        return Pred::Flag(Box::new(FlagCheck {
                            field: *d,
                            holds_on: if *op == Op::Eq { k } else { !k },
                        }));
                    }
                }
                (D::ProcCmdline, Test::Cmp(Op::Eq, c)) => {
                    return Pred::Cmdline(Box::new(CmdlineCheck::Eq(c.text.clone())));
                }
                (D::ProcCmdline, Test::Cmp(Op::StartsWith, c)) => {
                    return Pred::Cmdline(Box::new(CmdlineCheck::StartsWith(c.text.clone())));
                }
                _ => {}
            }
        }
        let text = match &lhs {
            Getter::Stored(f) => (f.info().kind == Kind::Str).then_some(TextField::Stored(*f)),
            Getter::Field(r) => r.as_text(),
            Getter::Transform(..) => None,
        };
        if let Some(field) = text {
            return match TextTest::from_test(test) {
                Ok(test) => Pred::Text(Box::new(TextCheck { field, test })),
                Err(test) => Pred::Check(Box::new(Check { lhs, test })),
            };
        }
        let Getter::Stored(field) = lhs else {
            return Pred::Check(Box::new(Check { lhs, test }));
        };
        match (field.info().kind, test) {
            (
                Kind::U64 | Kind::I64,
                Test::Cmp(op @ (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge), c),
            ) if c.num.is_some() => Pred::Int(Box::new(IntCheck {
                field,
                op,
                k: c.num.unwrap_or_default(),
            })),
            (_, test) => Pred::Check(Box::new(Check { lhs, test })),
        }
    }
}

impl Getter {
    /// Adds the stored fields the getter reads to `out`.
    pub fn stored_deps(&self, out: &mut Vec<StoredField>) {
        match self {
            Getter::Stored(f) => out.push(*f),
            Getter::Field(r) => r.stored_deps(out),
            Getter::Transform(_, inner) => inner.stored_deps(out),
        }
    }

    /// Reads the value; `None` when unset or when a transformer cannot apply.
    pub fn get<'e>(&self, ev: &'e Event) -> Option<Value<'e>> {
        match self {
            Getter::Stored(f) => ev.get_stored(*f),
            Getter::Field(r) => ev.get(r),
            Getter::Transform(t, inner) => transform(*t, inner.get(ev)?),
        }
    }
}

fn transform<'e>(t: Transformer, v: Value<'e>) -> Option<Value<'e>> {
    match t {
        Transformer::Len => Some(Value::U64(match &v {
            Value::Str(s) => s.len() as u64,
            Value::StrList(l) => l.len() as u64,
            Value::U64List(l) => l.len() as u64,
            Value::IpList(l) => l.len() as u64,
            Value::Map(m) => m.len() as u64,
            _ => return None,
        })),
        Transformer::ToLower | Transformer::ToUpper | Transformer::B64 | Transformer::Basename => {
            let s = match v {
                Value::Str(s) => s,
                other => Cow::Owned(other.to_string()),
            };
            Some(Value::Str(match t {
                Transformer::ToLower => Cow::Owned(s.to_lowercase()),
                Transformer::ToUpper => Cow::Owned(s.to_uppercase()),
                Transformer::B64 => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(s.as_bytes())
                        .ok()?;
                    Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => match s {
                    Cow::Borrowed(b) => Cow::Borrowed(b.rsplit('/').next().unwrap_or(b)),
                    Cow::Owned(o) => Cow::Owned(o.rsplit('/').next().unwrap_or(&o).to_owned()),
                },
            }))
        }
    }
}

impl Getter {
    /// A getter for a resolved field (stored fields without argument skip the
    /// accessor's dispatch).
    pub fn field(r: FieldRef) -> Getter {
        match (r.field, &r.arg) {
            (Field::Stored(f), None) => Getter::Stored(f),
            _ => Getter::Field(r),
        }
    }

    /// Rough cost of reading the value: stored fields are cheap, derived fields that
    /// compute or allocate (command lines, `evt.args`, IP lists) are not.
    pub fn cost(&self) -> u32 {
        match self {
            Getter::Stored(_) => 1,
            Getter::Field(r) => match r.field.name() {
                "proc.cmdline" | "proc.pcmdline" | "evt.args" | "fd.ip" | "fd.net" | "fd.port"
                | "evt.datetime" => 12,
                _ if matches!(r.field, Field::Stored(_)) => 2,
                _ => 4,
            },
            Getter::Transform(_, g) => 8 + g.cost(),
        }
    }
}

impl Pred {
    /// Estimated evaluation cost, for ordering `and`/`or` children: the expected cost
    /// with short-circuiting, given the children's current order.
    pub fn cost(&self) -> f64 {
        self.estimate().0
    }

    /// Expected cost and a guess at the probability of holding on a typical event.
    ///
    /// Positive checks (`=`, `in`, `startswith`, ...) rarely hold: rules look for the
    /// unusual. Negated ones (`!=`, `not ...`, the exceptions) almost always hold.
    fn estimate(&self) -> (f64, f64) {
        match self {
            Pred::And(v) => in_order(true, v.iter().map(Pred::estimate)),
            Pred::Or(v) => in_order(false, v.iter().map(Pred::estimate)),
            Pred::Not(p) => {
                let (c, pt) = p.estimate();
                (c, 1.0 - pt)
            }
            Pred::Text(c) => {
                let (cost, p_true) = match &c.test {
                    TextTest::Exists => (0, 0.9),
                    TextTest::Ne(_) => (1, 0.9),
                    TextTest::Cmp(Op::Regex | Op::Glob | Op::IGlob, _) => (6, 0.1),
                    TextTest::Cmp(Op::Lt | Op::Le | Op::Gt | Op::Ge, _) => (1, 0.5),
                    TextTest::In(s) => (1 + s.strs.len() as u32 / 16, 0.1),
                    TextTest::PMatch(p) => (1 + p.len() as u32 / 4, 0.1),
                    _ => (1, 0.1),
                };
                (f64::from(1 + cost), p_true)
            }
            Pred::Int(c) => (
                2.0,
                match c.op {
                    Op::Eq => 0.1,
                    Op::Ne => 0.9,
                    _ => 0.5,
                },
            ),
            Pred::Flag(_) => (3.0, 0.5),
            Pred::Cmdline(_) => (3.0, 0.1),
            Pred::Check(c) => {
                let test_cost = match &c.test {
                    Test::Exists => 0,
                    Test::Cmp(Op::Regex | Op::Glob | Op::IGlob, _) => 6,
                    Test::Cmp(_, _) => 1,
                    Test::In(s) => 1 + (s.strs.len() as u32 / 16),
                    Test::PMatch(p) => 1 + p.len() as u32 / 4,
                    Test::Field(_, g) => g.cost() + 2,
                };
                let p_true = match &c.test {
                    Test::Exists => 0.9,
                    Test::Cmp(Op::Eq, k) if k.boolean.is_some() => 0.5,
                    Test::Cmp(Op::Ne, _) => 0.9,
                    Test::Cmp(Op::Lt | Op::Le | Op::Gt | Op::Ge, _) | Test::Field(..) => 0.5,
                    Test::Cmp(..) | Test::In(_) | Test::PMatch(_) => 0.1,
                };
                (f64::from(c.lhs.cost() + test_cost), p_true)
            }
        }
    }

    /// Reorders `and`/`or` children so that the expected cost is lowest: an `and`
    /// tries first what is cheap and likely false, an `or` what is cheap and likely
    /// true (ordering by cost over the chance of deciding). The sort is stable, so
    /// equal ranks keep the rule's order. Checks have no side effects, so the result
    /// is unchanged.
    pub fn optimize(&mut self) {
        let and = matches!(self, Pred::And(_));
        match self {
            Pred::And(v) | Pred::Or(v) => {
                v.iter_mut().for_each(Pred::optimize);
                v.sort_by(|a, b| rank(and, a.estimate()).total_cmp(&rank(and, b.estimate())));
            }
            Pred::Not(p) => p.optimize(),
            Pred::Check(_) | Pred::Text(_) | Pred::Int(_) | Pred::Flag(_) | Pred::Cmdline(_) => {}
        }
    }

    /// Reorders `and`/`or` children by what they measure on `sample` (events this
    /// condition is judged on): how often each child holds, with the estimated costs.
    /// Like [`Pred::optimize`] it never changes the result, only how soon an `and`
    /// finds a false child or an `or` a true one. Returns the expected cost in the new
    /// order and the measured chance of holding.
    pub fn calibrate(&mut self, sample: &[&Event]) -> (f64, f64) {
        let (cost, p, _) = self.calibrate_bits(sample);
        (cost, p)
    }

    /// [`Pred::calibrate`], also returning which events of `sample` the predicate
    /// holds on (one bit each): every leaf is evaluated once per event, and each
    /// `and`/`or`/`not` combines its children's bits instead of evaluating its whole
    /// subtree again.
    fn calibrate_bits(&mut self, sample: &[&Event]) -> (f64, f64, Vec<u64>) {
        let n = sample.len();
        // Laplace's rule keeps a child never seen true (or false) from ranking as
        // certain.
        let chance = |bits: &[u64]| {
            let hits: u32 = bits.iter().map(|w| w.count_ones()).sum();
            (f64::from(hits) + 1.0) / (n as f64 + 2.0)
        };
        let and = matches!(self, Pred::And(_));
        match self {
            Pred::And(v) | Pred::Or(v) => {
                let mut bits = vec![if and { !0 } else { 0 }; n.div_ceil(64)];
                let mut ranked: Vec<((f64, f64), Pred)> = Vec::with_capacity(v.len());
                for mut c in std::mem::take(v).into_vec() {
                    let (cost, p, held) = c.calibrate_bits(sample);
                    for (w, h) in bits.iter_mut().zip(held) {
                        *w = if and { *w & h } else { *w | h };
                    }
                    ranked.push(((cost, p), c));
                }
                keep_first_bits(&mut bits, n);
                ranked.sort_by(|a, b| rank(and, a.0).total_cmp(&rank(and, b.0)));
                let (cost, _) = in_order(and, ranked.iter().map(|r| r.0));
                *v = ranked.into_iter().map(|(_, c)| c).collect();
                (cost, chance(&bits), bits)
            }
            Pred::Not(inner) => {
                let (cost, p, mut bits) = inner.calibrate_bits(sample);
                bits.iter_mut().for_each(|w| *w = !*w);
                keep_first_bits(&mut bits, n);
                (cost, 1.0 - p, bits)
            }
            Pred::Check(_) | Pred::Text(_) | Pred::Int(_) | Pred::Flag(_) | Pred::Cmdline(_) => {
                let mut bits = vec![0u64; n.div_ceil(64)];
                for (i, e) in sample.iter().enumerate() {
                    if self.eval(e) {
                        bits[i / 64] |= 1 << (i % 64);
                    }
                }
                (self.estimate().0, chance(&bits), bits)
            }
        }
    }

    /// Evaluates the condition on an event.
    pub fn eval(&self, ev: &Event) -> bool {
        match self {
            Pred::And(v) => v.iter().all(|p| p.eval_child(ev)),
            Pred::Or(v) => v.iter().any(|p| p.eval_child(ev)),
            Pred::Not(p) => !p.eval_child(ev),
            Pred::Check(c) => c.eval(ev),
            Pred::Text(c) => c.eval(ev),
            Pred::Int(c) => c.eval(ev),
            Pred::Flag(c) => ev.open_flag(c.field) == Some(c.holds_on),
            Pred::Cmdline(c) => c.eval(ev),
        }
    }

    /// [`Pred::eval`] of a child: the commonest leaves, lean text and integer checks,
    /// are evaluated in the parent's loop instead of through a call.
    #[inline(always)]
    fn eval_child(&self, ev: &Event) -> bool {
        match self {
            Pred::Text(c) => c.eval(ev),
            Pred::Int(c) => c.eval(ev),
            _ => self.eval(ev),
        }
    }
}

/// The expected cost of children evaluated in order with short-circuiting (an `and`
/// goes on while they hold, an `or` while they do not), and the chance the whole holds,
/// from each child's (expected cost, chance of holding), taken as independent.
fn in_order(and: bool, children: impl Iterator<Item = (f64, f64)>) -> (f64, f64) {
    let (mut cost, mut reach) = (0.0, 1.0);
    for (c, p) in children {
        cost += reach * c;
        reach *= if and { p } else { 1.0 - p };
    }
    (cost, if and { reach } else { 1.0 - reach })
}

/// Clears the bits past the first `n` (the last word's padding).
fn keep_first_bits(bits: &mut [u64], n: usize) {
    if let Some(last) = bits.last_mut()
        && !n.is_multiple_of(64)
    {
        *last &= (1u64 << (n % 64)) - 1;
    }
}

/// Where a child with (expected cost, chance of holding) goes among its siblings: an
/// `and` wants what is cheap and likely false first, an `or` what is cheap and likely
/// true (cost over the chance of deciding; lowest first).
fn rank(and: bool, (cost, p): (f64, f64)) -> f64 {
    let decides = if and { 1.0 - p } else { p };
    cost / decides.max(1e-6)
}

impl TextCheck {
    #[inline]
    pub(crate) fn eval(&self, ev: &Event) -> bool {
        let Some(s) = ev.get_text_field(self.field) else {
            return false;
        };
        match &self.test {
            TextTest::Exists => true,
            TextTest::Eq(k) => same_text(s, k),
            TextTest::Ne(k) => !same_text(s, k),
            TextTest::StartsWith(k) => s.starts_with(&**k),
            TextTest::EndsWith(k) => s.ends_with(&**k),
            TextTest::Contains(f) => f.find(s.as_bytes()).is_some(),
            TextTest::In(set) => set.has_text(s),
            TextTest::PMatch(p) => path_prefix_match(p, s),
            TextTest::Cmp(op, c) => cmp_str(s, *op, c),
        }
    }
}

impl CmdlineCheck {
    pub(crate) fn eval(&self, ev: &Event) -> bool {
        let Some((name, args)) = ev.cmdline_parts() else {
            return false;
        };
        // The command line is `name`, or `name` + ' ' + `args`.
        let (k, whole) = match self {
            CmdlineCheck::Eq(k) => (&**k, true),
            CmdlineCheck::StartsWith(k) => (&**k, false),
        };
        let Some(args) = args else {
            return if whole {
                name == k
            } else {
                name.starts_with(k)
            };
        };
        if !whole && k.len() <= name.len() {
            return name.starts_with(k);
        }
        let rest = match k.strip_prefix(name).and_then(|r| r.strip_prefix(' ')) {
            Some(rest) => rest,
            None => return false,
        };
        if whole {
            rest == args
        } else {
            args.starts_with(rest)
        }
    }
}

impl IntCheck {
    #[inline]
    pub(crate) fn eval(&self, ev: &Event) -> bool {
        let Some(n) = ev.get_int(self.field) else {
            return false;
        };
        match self.op {
            Op::Eq => n == self.k,
            Op::Ne => n != self.k,
            Op::Lt => n < self.k,
            Op::Le => n <= self.k,
            Op::Gt => n > self.k,
            _ => n >= self.k,
        }
    }
}

impl Check {
    pub(crate) fn eval(&self, ev: &Event) -> bool {
        let Some(v) = self.lhs.get(ev) else {
            return false;
        };
        match &self.test {
            Test::Exists => true,
            Test::Cmp(op, c) => any_value(&v, |x| cmp_scalar(x, *op, c)),
            Test::In(set) => any_value(&v, |x| in_set(x, set)),
            Test::PMatch(prefixes) => any_value(&v, |x| match x {
                Scalar::Str(s) => path_prefix_match(prefixes, s),
                _ => false,
            }),
            Test::Field(op, rhs) => {
                let Some(r) = rhs.get(ev) else {
                    return false;
                };
                cmp_values(&v, *op, &r)
            }
        }
    }
}

/// One value out of a possibly multi-valued field.
enum Scalar<'a> {
    Str(&'a str),
    Num(i128),
    Bool(bool),
    Ip(IpAddr),
}

fn any_value(v: &Value<'_>, mut f: impl FnMut(Scalar<'_>) -> bool) -> bool {
    match v {
        Value::Str(s) => f(Scalar::Str(s)),
        Value::U64(n) => f(Scalar::Num(*n as i128)),
        Value::I64(n) => f(Scalar::Num(*n as i128)),
        Value::Ts(t) => f(Scalar::Num(t.0 as i128)),
        Value::Bool(b) => f(Scalar::Bool(*b)),
        Value::Ip(ip) => f(Scalar::Ip(*ip)),
        Value::StrList(l) => l.iter().any(|s| f(Scalar::Str(s))),
        Value::U64List(l) => l.iter().any(|n| f(Scalar::Num(*n as i128))),
        Value::IpList(l) => l.iter().any(|ip| f(Scalar::Ip(*ip))),
        Value::Map(_) => f(Scalar::Str(&v.to_string())),
    }
}

fn cmp_scalar(x: Scalar<'_>, op: Op, c: &Const) -> bool {
    match x {
        Scalar::Str(s) => cmp_str(s, op, c),
        Scalar::Num(n) => match (op, c.num) {
            (Op::Eq, Some(k)) => n == k,
            (Op::Ne, Some(k)) => n != k,
            (Op::Lt, Some(k)) => n < k,
            (Op::Le, Some(k)) => n <= k,
            (Op::Gt, Some(k)) => n > k,
            (Op::Ge, Some(k)) => n >= k,
            _ => cmp_str(&n.to_string(), op, c),
        },
        Scalar::Bool(b) => match (op, c.boolean) {
            (Op::Eq, Some(k)) => b == k,
            (Op::Ne, Some(k)) => b != k,
            _ => false,
        },
        Scalar::Ip(ip) => match (op, c.net) {
            (Op::Eq, Some(n)) => n.contains(ip),
            (Op::Ne, Some(n)) => !n.contains(ip),
            _ => cmp_str(&ip.to_string(), op, c),
        },
    }
}

fn cmp_str(s: &str, op: Op, c: &Const) -> bool {
    let k: &str = &c.text;
    match op {
        Op::Eq => s == k,
        Op::Ne => s != k,
        Op::Lt => s < k,
        Op::Le => s <= k,
        Op::Gt => s > k,
        Op::Ge => s >= k,
        Op::Contains => s.contains(k),
        Op::IContains => icontains(s, &c.lower),
        Op::StartsWith => s.starts_with(k),
        Op::EndsWith => s.ends_with(k),
        Op::BContains => c
            .bytes
            .as_ref()
            .is_some_and(|b| b.is_empty() || s.as_bytes().windows(b.len()).any(|w| w == &b[..])),
        Op::BStartsWith => c
            .bytes
            .as_ref()
            .is_some_and(|b| s.as_bytes().starts_with(b)),
        Op::Glob => c.glob.as_ref().is_some_and(|g| g.matches(s)),
        Op::IGlob => c
            .glob
            .as_ref()
            .is_some_and(|g| g.matches(&s.to_lowercase())),
        Op::Regex => c.regex.as_ref().is_some_and(|r| r.is_match(s)),
        Op::In | Op::Intersects | Op::PMatch | Op::Exists => false,
    }
}

fn in_set(x: Scalar<'_>, set: &ValueSet) -> bool {
    match x {
        Scalar::Str(s) => set.has_text(s),
        Scalar::Num(n) => set.nums.contains(&n),
        Scalar::Bool(b) => set.bools.contains(&b),
        Scalar::Ip(ip) => set.nets.iter().any(|n| n.contains(ip)),
    }
}

/// Which of the 256 bits of [`ValueSet`]'s filter stands for a text: a hash of its
/// length, first and last byte (cheap to read, and they differ among a set's texts).
fn filter_bit(b: &[u8]) -> usize {
    let (first, last) = (b.first().copied(), b.last().copied());
    let x =
        (b.len() as u64) | u64::from(first.unwrap_or(0)) << 32 | u64::from(last.unwrap_or(0)) << 40;
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize
}

/// The first 8 bytes of `b` as a big-endian number, zero-padded: numbers of texts of
/// one length sort as the texts do.
fn prefix_key(b: &[u8]) -> u64 {
    match b.first_chunk::<8>() {
        Some(head) => u64::from_be_bytes(*head),
        None => {
            let mut head = [0u8; 8];
            head[..b.len()].copy_from_slice(b);
            u64::from_be_bytes(head)
        }
    }
}

/// The order of [`ValueSet::strs`].
fn by_len_then_bytes(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn cmp_values(l: &Value<'_>, op: Op, r: &Value<'_>) -> bool {
    // Compare as numbers when both are numeric, otherwise by rendered text.
    if let (Some(a), Some(b)) = (l.as_i128(), r.as_i128()) {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            _ => false,
        };
    }
    let rs: Vec<String> = match r {
        Value::StrList(l) => l.iter().map(|s| s.to_string()).collect(),
        other => vec![other.to_string()],
    };
    match op {
        Op::In | Op::Intersects => any_value(l, |x| rs.iter().any(|k| scalar_text(&x) == *k)),
        Op::PMatch => {
            let p: Vec<Box<str>> = rs.iter().map(|s| s.as_str().into()).collect();
            any_value(l, |x| path_prefix_match(&p, &scalar_text(&x)))
        }
        _ => {
            let c = Const::new(&rs[0], op).ok();
            c.is_some_and(|c| any_value(l, |x| cmp_scalar(x, op, &c)))
        }
    }
}

fn scalar_text(x: &Scalar<'_>) -> String {
    match x {
        Scalar::Str(s) => (*s).to_owned(),
        Scalar::Num(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::Ip(ip) => ip.to_string(),
    }
}

/// Parses a number as Falco does: decimal, `0x` hex, optionally signed.
pub fn parse_num(s: &str) -> Option<i128> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i128::from_str_radix(h, 16).ok();
    }
    t.parse::<i128>().ok()
}

impl Const {
    /// Prepares a constant for `op`; errors for a bad regex or hex string.
    pub fn new(text: &str, op: Op) -> Result<Const, String> {
        let bytes = match op {
            Op::BContains | Op::BStartsWith => Some(
                crate::matchers::decode_hex(text)
                    .ok_or_else(|| {
                        format!(
                            "'{text}' is not a valid hex byte string for '{}'",
                            op.as_str()
                        )
                    })?
                    .into_boxed_slice(),
            ),
            _ => None,
        };
        let regex = match op {
            Op::Regex => Some(
                regex::Regex::new(&format!("^(?:{text})$"))
                    .map_err(|e| format!("invalid regex '{text}': {e}"))?,
            ),
            _ => None,
        };
        let glob = match op {
            Op::Glob => Some(Glob::new(text, false)),
            Op::IGlob => Some(Glob::new(text, true)),
            _ => None,
        };
        Ok(Const {
            text: text.into(),
            lower: text.to_ascii_lowercase().into(),
            num: parse_num(text),
            boolean: match text {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            net: Net::parse(text),
            bytes,
            glob,
            regex,
        })
    }
}

impl ValueSet {
    /// Whether `s` is one of the set's texts.
    #[inline]
    fn has_text(&self, s: &str) -> bool {
        let bit = filter_bit(s.as_bytes());
        if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
            return false;
        }
        if self.strs.len() <= 8 {
            return self.strs.iter().any(|k| same_text(k, s));
        }
        let key = (s.len(), prefix_key(s.as_bytes()));
        let at = self.keys.partition_point(|k| *k < key);
        // Texts with the same key differ, if at all, after their 8th byte.
        let tail = s.as_bytes().get(8..).unwrap_or_default();
        self.keys[at..]
            .iter()
            .zip(&self.strs[at..])
            .take_while(|(k, _)| **k == key)
            .any(|(_, t)| t.as_bytes().get(8..).unwrap_or_default() == tail)
    }

    /// Builds a set from texts.
    pub fn new<'a>(items: impl IntoIterator<Item = &'a str>) -> ValueSet {
        let mut set = ValueSet::default();
        for s in items {
            set.strs.push(s.into());
            if let Some(n) = parse_num(s) {
                set.nums.push(n);
            }
            if let Some(n) = Net::parse(s) {
                set.nets.push(n);
            }
            match s {
                "true" => set.bools.push(true),
                "false" => set.bools.push(false),
                _ => {}
            }
        }
        set.strs.sort_by(|a, b| by_len_then_bytes(a, b));
        set.strs.dedup();
        set.keys = set
            .strs
            .iter()
            .map(|s| (s.len(), prefix_key(s.as_bytes())))
            .collect();
        for s in &set.strs {
            let bit = filter_bit(s.as_bytes());
            set.filter[bit / 64] |= 1 << (bit % 64);
        }
        set
    }
}

#[cfg(test)]
mod lean_tests {
    use super::*;
    use proptest::prelude::*;

    fn both(field: &str, op: Op, k: &str) -> (Pred, Pred) {
        let lhs = Getter::Field(FieldRef::parse(field).expect("field"));
        let test = Test::Cmp(op, Const::new(k, op).expect("constant"));
        let lean = Pred::check(lhs.clone(), test.clone());
        (lean, Pred::Check(Box::new(Check { lhs, test })))
    }

    proptest! {
        /// Membership by key search is membership: sets large enough to be searched,
        /// with texts around 8 bytes that share their first bytes.
        #[test]
        fn in_set_is_membership(items in prop::collection::vec("(/etc/|ab)[ab]{0,6}", 0..40), probe in "(/etc/|ab)[ab]{0,6}", member in any::<prop::sample::Index>(), pick in any::<bool>()) {
            let probe = if pick && !items.is_empty() { items[member.index(items.len())].clone() } else { probe };
            let set = ValueSet::new(items.iter().map(String::as_str));
            prop_assert_eq!(in_set(Scalar::Str(&probe), &set), items.contains(&probe));
        }
    }

    proptest! {
        /// `proc.cmdline` checks on its pieces hold exactly when the general check on
        /// the joined line does (names and arguments with spaces, empty or unset).
        #[test]
        fn cmdline_checks_agree(name in proptest::option::of("[ab ]{0,4}"), args in proptest::option::of("[ab ]{0,5}"), other in "[ab ]{0,7}", cut in proptest::option::of(0..12usize), starts in any::<bool>()) {
            // The constant is most often a piece of the line itself, where the two
            // forms could disagree.
            let line = match (&name, &args) {
                (Some(n), Some(a)) if !a.is_empty() => format!("{n} {a}"),
                (Some(n), _) => n.clone(),
                _ => String::new(),
            };
            let k = match cut {
                Some(c) => line.get(..c.min(line.len())).unwrap_or_default().to_owned() + if c > 10 { "b" } else { "" },
                None => other,
            };
            let ev = Event { proc_name: name.map(Into::into), proc_args: args.map(Into::into), ..Default::default() };
            let op = if starts { Op::StartsWith } else { Op::Eq };
            let (lean, general) = both("proc.cmdline", op, &k);
            prop_assert!(matches!(lean, Pred::Cmdline(_)));
            prop_assert_eq!(lean.eval(&ev), general.eval(&ev));
        }

        /// `evt.is_open_*` checks agree with the general check.
        #[test]
        fn open_flag_checks_agree(ty in proptest::option::of("open|openat|execve"), flags in proptest::option::of("(O_RDONLY|O_WRONLY|O_RDWR|O_CREAT)(\\|O_CLOEXEC)?"), mode in proptest::option::of("S_IXUSR|0644"), field in 0..3usize, eq in any::<bool>(), k in any::<bool>()) {
            let ev = Event { evt_type: ty.map(Into::into), evt_arg_flags: flags.map(Into::into), evt_arg_mode: mode.map(Into::into), ..Default::default() };
            let name = ["evt.is_open_read", "evt.is_open_write", "evt.is_open_exec"][field];
            let (lean, general) = both(name, if eq { Op::Eq } else { Op::Ne }, if k { "true" } else { "false" });
            prop_assert!(matches!(lean, Pred::Flag(_)));
            prop_assert_eq!(lean.eval(&ev), general.eval(&ev));
        }
    }
}

#[cfg(test)]
mod calibrate_tests {
    use super::*;

    /// Calibration as it was first written: every `and`/`or` evaluates its whole
    /// subtree on the sample again to measure itself. The reference for the bitwise
    /// version.
    fn calibrate_by_evaluating(p: &mut Pred, sample: &[&Event]) -> (f64, f64) {
        let measured = |p: &Pred| {
            let hits = sample.iter().filter(|e| p.eval(e)).count();
            (hits as f64 + 1.0) / (sample.len() as f64 + 2.0)
        };
        let and = matches!(p, Pred::And(_));
        match p {
            Pred::And(v) | Pred::Or(v) => {
                let mut ranked: Vec<((f64, f64), Pred)> = std::mem::take(v)
                    .into_vec()
                    .into_iter()
                    .map(|mut c| (calibrate_by_evaluating(&mut c, sample), c))
                    .collect();
                ranked.sort_by(|a, b| rank(and, a.0).total_cmp(&rank(and, b.0)));
                let (cost, _) = in_order(and, ranked.iter().map(|r| r.0));
                *v = ranked.into_iter().map(|(_, c)| c).collect();
                (cost, measured(p))
            }
            Pred::Not(inner) => {
                let (cost, q) = calibrate_by_evaluating(inner, sample);
                (cost, 1.0 - q)
            }
            _ => (p.estimate().0, measured(p)),
        }
    }

    /// On the upstream stable rules, over the events of their cases (each rule's
    /// firing event and near miss, where conditions hold in part) and a realistic mix,
    /// the bitwise calibration orders every condition as evaluating does, with the same
    /// figures.
    #[test]
    fn bits_calibrate_as_evaluating_does() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/falco-rules/falco_rules.yaml");
        let mut loader = crate::rules::Loader::new();
        loader.add_file(&path);
        let (rules, report) = loader.finish();
        assert!(report.errors.is_empty(), "{:#?}", report.errors);
        let rules = rules.expect("the stable rules load");
        let mut events: Vec<Event> = crate::cases::stable_rule_cases()
            .into_iter()
            .flat_map(|c| [c.fires, c.misses])
            .collect();
        events.extend(crate::mix::realistic_mix(200));
        // Sizes around a word of bits, and the whole.
        for n in [1, 63, 64, 65, events.len()] {
            let sample: Vec<&Event> = events.iter().take(n).collect();
            for rule in rules.rules() {
                let (mut bits, mut evaluated) = (rule.pred.clone(), rule.pred.clone());
                let by_bits = bits.calibrate(&sample);
                let by_eval = calibrate_by_evaluating(&mut evaluated, &sample);
                assert_eq!(
                    format!("{bits:?}"),
                    format!("{evaluated:?}"),
                    "{}",
                    rule.name
                );
                assert!(
                    (by_bits.0 - by_eval.0).abs() < 1e-9 && (by_bits.1 - by_eval.1).abs() < 1e-9,
                    "{}: {by_bits:?} against {by_eval:?}",
                    rule.name
                );
            }
        }
    }
}
