//! The field accessor: resolve a Falco field name once, then read it from any event.
//!
//! [`FieldRef::parse`] turns `proc.name`, `proc.aname[2]`, `evt.arg.flags` or
//! `container.label[app]` into a resolved reference; [`Event::get`] returns its typed
//! [`Value`] or `None` when unset (Falco prints `<NA>`). Stored fields come straight from
//! the [`Event`]; derived fields (`proc.pname`, `fd.directory`, `evt.res`, ...) are
//! computed with Falco's meaning.
//!
//! ```
//! use lanner_contract::{Event, FieldRef, Value};
//! let ev = Event {
//!     proc_name: Some("bash".into()),
//!     proc_aname: Some(vec!["sshd".into(), "systemd".into()].into()),
//!     ..Default::default()
//! };
//! let parent = FieldRef::parse("proc.aname[1]").unwrap();
//! assert_eq!(ev.get(&parent), Some(Value::Str("sshd".into())));
//! assert_eq!(ev.get(&FieldRef::parse("proc.pname").unwrap()), Some(Value::Str("sshd".into())));
//! ```

use std::borrow::Cow;
use std::net::IpAddr;

use crate::model::{ALL_STORED, Event, STORED_FIELDS, StoredField, StrList, Text};
use crate::value::{Kind, Value};

macro_rules! derived_fields {
    ($( $variant:ident = $name:literal : $kind:ident, $doc:literal; )*) => {
        /// Fields computed from stored ones.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DerivedField {
            $(
                #[doc = $doc]
                $variant,
            )*
        }

        /// Registry of derived fields: (Falco name, kind, doc).
        pub const DERIVED_FIELDS: &[(DerivedField, &str, Kind, &str)] = &[
            $((DerivedField::$variant, $name, Kind::$kind, $doc),)*
        ];
    };
}

derived_fields! {
    EvtRawtime = "evt.rawtime": U64, "Event time as nanoseconds since the epoch.";
    EvtDatetime = "evt.datetime": Str, "Event time as RFC 3339 text.";
    EvtRes = "evt.res": Str, "`SUCCESS`, or the errno name (`ENOENT`) when the call failed.";
    EvtFailed = "evt.failed": Bool, "The call failed.";
    EvtDir = "evt.dir": Str, "Direction: always `<` (lanner emits one event per call, at exit).";
    EvtSource = "evt.source": Str, "Event source: `syscall`.";
    EvtCategory = "evt.category": Str, "Category: process, file, net, ipc, security, ...";
    EvtArgs = "evt.args": Str, "All arguments rendered as `name=value` pairs.";
    EvtIsOpenRead = "evt.is_open_read": Bool, "An open call with read access.";
    EvtIsOpenWrite = "evt.is_open_write": Bool, "An open call with write access.";
    EvtIsOpenExec = "evt.is_open_exec": Bool, "An open call that creates an executable file.";
    ProcCmdline = "proc.cmdline": Str, "`proc.name` followed by the arguments.";
    ProcPname = "proc.pname": Str, "Parent process name.";
    ProcPexe = "proc.pexe": Str, "Parent's argv[0].";
    ProcPexepath = "proc.pexepath": Str, "Parent's executable path.";
    ProcPcmdline = "proc.pcmdline": Str, "Parent's command line.";
    ProcDuration = "proc.duration": I64, "Nanoseconds since the process started.";
    ProcExeInoCtimeDurationProcStart = "proc.exe_ino.ctime_duration_proc_start": I64, "Nanoseconds between the executable's ctime and the process start.";
    ProcIsVpgidLeader = "proc.is_vpgid_leader": Bool, "The process leads its process group.";
    FdTypechar = "fd.typechar": Str, "One-letter fd type: f, 4, 6, u, p, e, s, l, i, b, m, d, o.";
    FdDirectory = "fd.directory": Str, "Directory of a file fd (or the path itself for a directory).";
    FdFilename = "fd.filename": Str, "File name of a file fd, without its directory.";
    FdSockfamily = "fd.sockfamily": Str, "Socket family: ip or unix.";
    FdIp = "fd.ip": Str, "Either IP of the connection (client or server).";
    FdPort = "fd.port": Str, "Either port of the connection (client or server).";
    FdLip = "fd.lip": Ip, "Local IP.";
    FdRip = "fd.rip": Ip, "Remote IP.";
    FdLport = "fd.lport": U64, "Local port.";
    FdRport = "fd.rport": U64, "Remote port.";
    FdNet = "fd.net": Str, "Either IP, compared as a network (`fd.net = 10.0.0.0/8`).";
    FdCnet = "fd.cnet": Ip, "Client IP, compared as a network.";
    FdSnet = "fd.snet": Ip, "Server IP, compared as a network.";
    FdLnet = "fd.lnet": Ip, "Local IP, compared as a network.";
    FdRnet = "fd.rnet": Ip, "Remote IP, compared as a network.";
    FdLipName = "fd.lip.name": Str, "Domain name the local IP was resolved from.";
    FdRipName = "fd.rip.name": Str, "Domain name the remote IP was resolved from.";
    FsPathName = "fs.path.name": Str, "Path a file-system call acts on, whatever the syscall.";
    FsPathSource = "fs.path.source": Str, "Source path of rename/link/symlink.";
    FsPathTarget = "fs.path.target": Str, "Target path of rename/link/symlink.";
    ContainerLabel = "container.label": Str, "One container label: `container.label[key]` or `container.label.key`.";
    K8sPodLabel = "k8s.pod.label": Str, "One pod label: `k8s.pod.label[key]`.";
}

/// A field, stored or derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// Read directly from the [`Event`].
    Stored(StoredField),
    /// Computed from stored fields.
    Derived(DerivedField),
}

impl Field {
    /// Falco name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Field::Stored(f) => f.info().name,
            Field::Derived(d) => derived_info(d).1,
        }
    }

    /// Kind of the values (lists for `proc.aname` without an index, etc.).
    pub fn kind(self) -> Kind {
        match self {
            Field::Stored(f) => f.info().kind,
            Field::Derived(d) => derived_info(d).2,
        }
    }
}

fn derived_info(d: DerivedField) -> &'static (DerivedField, &'static str, Kind, &'static str) {
    DERIVED_FIELDS
        .iter()
        .find(|e| e.0 == d)
        .unwrap_or(&DERIVED_FIELDS[0])
}

/// Argument of a field: `proc.aname[2]` (index) or `container.label[app]` (key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldArg {
    /// Numeric index.
    Index(usize),
    /// Key.
    Key(String),
}

/// A resolved field reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldRef {
    /// The field.
    pub field: Field,
    /// Its argument, if any.
    pub arg: Option<FieldArg>,
}

/// Why a field name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// No such field.
    #[error("unknown field {0:?}")]
    Unknown(String),
    /// The field takes no argument, or the argument has the wrong form.
    #[error("field {field} does not accept the argument {arg:?}")]
    BadArg {
        /// Field name.
        field: String,
        /// The argument as written.
        arg: String,
    },
    /// The field needs an argument.
    #[error("field {0} needs an argument, e.g. {0}[key]")]
    MissingArg(String),
}

/// Ancestor-list fields: index 0 is the process itself, 1 the parent, ...
const ANCESTOR_FIELDS: &[(StoredField, StoredField)] = &[
    (StoredField::proc_aname, StoredField::proc_name),
    (StoredField::proc_apid, StoredField::proc_pid),
    (StoredField::proc_aexe, StoredField::proc_exe),
    (StoredField::proc_aexepath, StoredField::proc_exepath),
    (StoredField::proc_acmdline, StoredField::proc_args),
];

fn lookup_name(name: &str) -> Option<Field> {
    if let Some(i) = STORED_FIELDS.iter().position(|f| f.name == name) {
        return Some(Field::Stored(ALL_STORED[i]));
    }
    DERIVED_FIELDS
        .iter()
        .find(|e| e.1 == name)
        .map(|e| Field::Derived(e.0))
}

fn accepts_index(f: Field) -> bool {
    matches!(f, Field::Stored(s) if ANCESTOR_FIELDS.iter().any(|a| a.0 == s))
}

fn accepts_key(f: Field) -> bool {
    matches!(
        f,
        Field::Derived(DerivedField::ContainerLabel) | Field::Derived(DerivedField::K8sPodLabel)
    )
}

/// A field that reads as one borrowed text ([`FieldRef::as_text`],
/// [`Event::get_text_field`]): what the detector's most common checks read, without
/// building a [`Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextField {
    /// A stored text field (`proc.name`, `fd.name`, ...).
    Stored(StoredField),
    /// Ancestor `n` (1: the parent) in a list of ancestors' texts (`proc.aname[2]`).
    Ancestor(StoredField, usize),
    /// A derived field that is a piece of a stored one: `fd.directory`, `fd.filename`,
    /// `fd.typechar`, `proc.pname`, `proc.pexe`, `proc.pexepath`, `proc.pcmdline`.
    Derived(DerivedField),
}

impl From<TextField> for FieldRef {
    fn from(t: TextField) -> FieldRef {
        let (field, arg) = match t {
            TextField::Stored(f) => (Field::Stored(f), None),
            TextField::Ancestor(list, n) => (Field::Stored(list), Some(FieldArg::Index(n))),
            TextField::Derived(d) => (Field::Derived(d), None),
        };
        FieldRef { field, arg }
    }
}

impl FieldRef {
    /// This field as one borrowed text, when it reads as one: its value is then
    /// `Value::Str` of [`Event::get_text_field`], or unset when that is `None`.
    pub fn as_text(&self) -> Option<TextField> {
        use DerivedField as D;
        match (self.field, &self.arg) {
            (Field::Stored(f), None) => {
                (f.info().kind == Kind::Str).then_some(TextField::Stored(f))
            }
            (Field::Stored(list), Some(FieldArg::Index(n))) => {
                let &(_, own) = ANCESTOR_FIELDS.iter().find(|a| a.0 == list)?;
                match *n {
                    // `proc.acmdline[0]` is the joined command line: not a borrow.
                    0 if list == StoredField::proc_acmdline => None,
                    0 => (own.info().kind == Kind::Str).then_some(TextField::Stored(own)),
                    n => {
                        (list.info().kind == Kind::StrList).then_some(TextField::Ancestor(list, n))
                    }
                }
            }
            (
                Field::Derived(
                    d @ (D::FdDirectory
                    | D::FdFilename
                    | D::FdTypechar
                    | D::ProcPname
                    | D::ProcPexe
                    | D::ProcPexepath
                    | D::ProcPcmdline),
                ),
                None,
            ) => Some(TextField::Derived(d)),
            _ => None,
        }
    }

    /// Resolves a Falco field name, with an optional `[arg]` or `.key` argument.
    pub fn parse(text: &str) -> Result<FieldRef, FieldError> {
        let text = text.trim();
        if let Some(field) = lookup_name(text) {
            if accepts_key(field) {
                return Err(FieldError::MissingArg(text.to_owned()));
            }
            return Ok(FieldRef { field, arg: None });
        }
        if let Some(open) = text.find('[')
            && text.ends_with(']')
        {
            let (base, arg) = (&text[..open], &text[open + 1..text.len() - 1]);
            let field = lookup_name(base).ok_or_else(|| FieldError::Unknown(text.to_owned()))?;
            let bad = || FieldError::BadArg {
                field: base.to_owned(),
                arg: arg.to_owned(),
            };
            if accepts_index(field) {
                let i = arg.trim().parse::<usize>().map_err(|_| bad())?;
                return Ok(FieldRef {
                    field,
                    arg: Some(FieldArg::Index(i)),
                });
            }
            if accepts_key(field) && !arg.is_empty() {
                return Ok(FieldRef {
                    field,
                    arg: Some(FieldArg::Key(arg.to_owned())),
                });
            }
            return Err(bad());
        }
        for (prefix, d) in [
            ("container.label.", DerivedField::ContainerLabel),
            ("k8s.pod.label.", DerivedField::K8sPodLabel),
        ] {
            if let Some(key) = text.strip_prefix(prefix)
                && !key.is_empty()
            {
                return Ok(FieldRef {
                    field: Field::Derived(d),
                    arg: Some(FieldArg::Key(key.to_owned())),
                });
            }
        }
        Err(FieldError::Unknown(text.to_owned()))
    }

    /// The canonical text of this reference (`proc.aname[2]`).
    pub fn to_text(&self) -> String {
        match &self.arg {
            None => self.field.name().to_owned(),
            Some(FieldArg::Index(i)) => format!("{}[{i}]", self.field.name()),
            Some(FieldArg::Key(k)) => format!("{}[{k}]", self.field.name()),
        }
    }
}

/// Every field name the accessor knows (stored and derived), for docs and tests.
pub fn all_field_names() -> impl Iterator<Item = &'static str> {
    STORED_FIELDS
        .iter()
        .map(|f| f.name)
        .chain(DERIVED_FIELDS.iter().map(|e| e.1))
}

fn s(v: &Option<Text>) -> Option<Value<'_>> {
    v.as_deref().map(|s| Value::Str(Cow::Borrowed(s)))
}

fn first_text(list: &Option<StrList>) -> Option<&str> {
    list.as_ref().and_then(|l| l.first()).map(|s| &**s)
}

/// `cmdline` of a process from the pieces [`Event::cmdline_parts`] gives (arguments,
/// when present, are not empty), as Falco renders it.
fn cmdline<'a>(name: &'a str, args: Option<&'a str>) -> Cow<'a, str> {
    match args {
        Some(a) => {
            // Judged often (rule exceptions test it): no formatting machinery.
            let mut line = String::with_capacity(name.len() + 1 + a.len());
            line.push_str(name);
            line.push(' ');
            line.push_str(a);
            Cow::Owned(line)
        }
        None => Cow::Borrowed(name),
    }
}

impl FieldRef {
    /// Adds to `out` the stored fields this field is read from: the field itself (and
    /// the process's own field, for an ancestor index), the inputs of a derived field,
    /// every stored field for `evt.args`. An event that has only these fields set gives
    /// the same value, so a reader of the archive may read only their columns.
    pub fn stored_deps(&self, out: &mut Vec<StoredField>) {
        use DerivedField as D;
        use StoredField as S;
        let deps: &[StoredField] = match self.field {
            Field::Stored(f) => {
                out.push(f);
                if let Some(&(_, own)) = ANCESTOR_FIELDS.iter().find(|a| a.0 == f) {
                    out.push(own);
                    if f == S::proc_acmdline {
                        out.push(S::proc_name);
                    }
                }
                return;
            }
            Field::Derived(d) => match d {
                D::EvtRawtime | D::EvtDatetime => &[S::evt_time],
                D::EvtRes | D::EvtFailed => &[S::evt_rawres],
                D::EvtDir | D::EvtSource => &[],
                D::EvtCategory => &[S::evt_type],
                D::EvtArgs => ALL_STORED,
                D::EvtIsOpenRead | D::EvtIsOpenWrite | D::EvtIsOpenExec => {
                    &[S::evt_type, S::evt_arg_flags, S::evt_arg_mode]
                }
                D::ProcCmdline => &[S::proc_name, S::proc_args],
                D::ProcPname => &[S::proc_aname],
                D::ProcPexe => &[S::proc_aexe],
                D::ProcPexepath => &[S::proc_aexepath],
                D::ProcPcmdline => &[S::proc_acmdline],
                D::ProcDuration => &[S::evt_time, S::proc_pid_ts],
                D::ProcExeInoCtimeDurationProcStart => &[S::proc_pid_ts, S::proc_exe_ino_ctime],
                D::ProcIsVpgidLeader => &[S::proc_vpgid, S::proc_vpid],
                D::FdTypechar | D::FdSockfamily => &[S::fd_type],
                D::FdDirectory | D::FdFilename => &[S::fd_name, S::fd_type],
                D::FdIp
                | D::FdNet
                | D::FdCnet
                | D::FdSnet
                | D::FdLip
                | D::FdRip
                | D::FdLnet
                | D::FdRnet => &[S::fd_cip, S::fd_sip, S::fd_is_server],
                D::FdPort | D::FdLport | D::FdRport => &[S::fd_cport, S::fd_sport, S::fd_is_server],
                D::FdLipName | D::FdRipName => &[S::fd_cip_name, S::fd_sip_name, S::fd_is_server],
                D::FsPathName => &[S::fd_name, S::evt_arg_path, S::evt_arg_name],
                D::FsPathSource => &[S::evt_arg_oldpath, S::evt_arg_target],
                D::FsPathTarget => &[S::evt_arg_newpath, S::evt_arg_linkpath],
                D::ContainerLabel => &[S::container_labels],
                D::K8sPodLabel => &[S::k8s_pod_labels],
            },
        };
        out.extend_from_slice(deps);
    }
}

impl Event {
    /// Reads a field; `None` when unset (rendered `<NA>`).
    pub fn get(&self, r: &FieldRef) -> Option<Value<'_>> {
        match r.field {
            Field::Stored(f) => match (&r.arg, ANCESTOR_FIELDS.iter().find(|a| a.0 == f)) {
                (Some(FieldArg::Index(i)), Some(&(_, own))) => self.ancestor(f, own, *i),
                _ => self.get_stored(f),
            },
            Field::Derived(d) => self.get_derived(d, r.arg.as_ref()),
        }
    }

    fn ancestor(&self, list: StoredField, own: StoredField, i: usize) -> Option<Value<'_>> {
        if i == 0 {
            if list == StoredField::proc_acmdline {
                return self.get_derived(DerivedField::ProcCmdline, None);
            }
            return self.get_stored(own);
        }
        match self.get_stored(list)? {
            Value::StrList(l) => l.get(i - 1).map(|s| Value::Str(Cow::Borrowed(&**s))),
            Value::U64List(l) => l.get(i - 1).map(|v| Value::U64(*v)),
            _ => None,
        }
    }

    fn is_server(&self) -> bool {
        self.fd_is_server.unwrap_or(false)
    }

    /// The text of a [`TextField`]; `None` when unset.
    #[inline]
    pub fn get_text_field(&self, f: TextField) -> Option<&str> {
        match f {
            TextField::Stored(s) => self.get_text(s),
            TextField::Ancestor(list, n) => {
                let list = match list {
                    StoredField::proc_aname => &self.proc_aname,
                    StoredField::proc_aexe => &self.proc_aexe,
                    StoredField::proc_aexepath => &self.proc_aexepath,
                    StoredField::proc_acmdline => &self.proc_acmdline,
                    _ => return None,
                };
                list.as_ref()?.get(n.checked_sub(1)?).map(|s| &**s)
            }
            TextField::Derived(d) => self.derived_text(d),
        }
    }

    /// `evt.is_open_read`, `evt.is_open_write` or `evt.is_open_exec` (`None` for any
    /// other field, or without an event type): read without building a [`Value`].
    pub fn open_flag(&self, d: DerivedField) -> Option<bool> {
        if !OpenFlags::reads(d) {
            return None;
        }
        self.open_flags()?.get(d)
    }

    /// The three `evt.is_open_*` of this event at once (`None` without an event type),
    /// for a reader that tests them many times, as the rules of one event do.
    pub fn open_flags(&self) -> Option<OpenFlags> {
        let ty = self.evt_type.as_deref()?;
        if !crate::render::is_open_call(ty) {
            return Some(OpenFlags::default());
        }
        let bits = open_bits(self.evt_arg_flags.as_deref().unwrap_or(""));
        Some(OpenFlags {
            read: bits & OPEN_READ != 0,
            write: bits & OPEN_WRITE != 0,
            exec: bits & OPEN_CREAT != 0
                && self.evt_arg_mode.as_deref().is_some_and(|m| {
                    m.contains("S_IXUSR") || m.contains("S_IXGRP") || m.contains("S_IXOTH")
                }),
        })
    }

    /// `proc.cmdline` in its two pieces: the name, and the arguments when there are
    /// any (the command line is the two joined by a space). `None` without a name.
    pub fn cmdline_parts(&self) -> Option<(&str, Option<&str>)> {
        let name = self.proc_name.as_deref()?;
        let args = self.proc_args.as_deref().filter(|a| !a.is_empty());
        Some((name, args))
    }

    /// The derived fields that are a piece of a stored one (see [`TextField::Derived`]).
    fn derived_text(&self, d: DerivedField) -> Option<&str> {
        use DerivedField as D;
        match d {
            D::FdDirectory => {
                let name = self.fd_name.as_deref()?;
                if self.fd_type.as_deref() == Some("directory") {
                    return Some(name);
                }
                crate::render::split_path(name).map(|(dir, _)| dir)
            }
            D::FdFilename => {
                let name = self.fd_name.as_deref()?;
                if self.fd_type.as_deref() == Some("directory") {
                    return None;
                }
                crate::render::split_path(name).map(|(_, file)| file)
            }
            D::FdTypechar => self.fd_type.as_deref().map(crate::render::typechar),
            D::ProcPname => first_text(&self.proc_aname),
            D::ProcPexe => first_text(&self.proc_aexe),
            D::ProcPexepath => first_text(&self.proc_aexepath),
            D::ProcPcmdline => first_text(&self.proc_acmdline),
            _ => None,
        }
    }

    fn get_derived(&self, d: DerivedField, arg: Option<&FieldArg>) -> Option<Value<'_>> {
        use DerivedField as D;
        let ip = |v: &Option<IpAddr>| v.map(Value::Ip);
        let port = |v: &Option<u64>| v.map(Value::U64);
        match d {
            D::EvtRawtime => self.evt_time.map(|t| Value::U64(t.0.max(0) as u64)),
            D::EvtDatetime => self.evt_time.map(|t| Value::Str(t.to_rfc3339().into())),
            D::EvtRes => self
                .evt_rawres
                .map(|r| Value::Str(crate::render::res_name(r).into())),
            D::EvtFailed => self.evt_rawres.map(|r| Value::Bool(r < 0)),
            D::EvtDir => Some(Value::Str("<".into())),
            D::EvtSource => Some(Value::Str("syscall".into())),
            D::EvtCategory => self
                .evt_type
                .as_deref()
                .map(|t| Value::Str(crate::render::category(t).into())),
            D::EvtArgs => Some(Value::Str(crate::render::args(self).into())),
            D::EvtIsOpenRead | D::EvtIsOpenWrite | D::EvtIsOpenExec => {
                self.open_flag(d).map(Value::Bool)
            }
            D::ProcCmdline => {
                let (name, args) = self.cmdline_parts()?;
                Some(Value::Str(cmdline(name, args)))
            }
            D::ProcPname
            | D::ProcPexe
            | D::ProcPexepath
            | D::ProcPcmdline
            | D::FdTypechar
            | D::FdDirectory
            | D::FdFilename => self.derived_text(d).map(|s| Value::Str(Cow::Borrowed(s))),
            D::ProcDuration => {
                let (now, start) = (self.evt_time?, self.proc_pid_ts?);
                Some(Value::I64(now.0.saturating_sub(start.0)))
            }
            D::ProcExeInoCtimeDurationProcStart => {
                let (start, ctime) = (self.proc_pid_ts?, self.proc_exe_ino_ctime?);
                Some(Value::I64(start.0.saturating_sub(ctime.0)))
            }
            D::ProcIsVpgidLeader => {
                let (pgid, vpid) = (self.proc_vpgid?, self.proc_vpid?);
                Some(Value::Bool(pgid == vpid))
            }
            D::FdSockfamily => match self.fd_type.as_deref()? {
                "ipv4" | "ipv6" => Some(Value::Str("ip".into())),
                "unix" => Some(Value::Str("unix".into())),
                _ => None,
            },
            D::FdIp | D::FdNet => {
                let ips: Vec<IpAddr> = [self.fd_cip, self.fd_sip].into_iter().flatten().collect();
                (!ips.is_empty()).then_some(Value::IpList(ips))
            }
            D::FdPort => {
                let ports: Vec<u64> = [self.fd_cport, self.fd_sport]
                    .into_iter()
                    .flatten()
                    .collect();
                (!ports.is_empty()).then_some(Value::U64List(ports.into()))
            }
            D::FdCnet => ip(&self.fd_cip),
            D::FdSnet => ip(&self.fd_sip),
            D::FdLip | D::FdLnet => ip(if self.is_server() {
                &self.fd_sip
            } else {
                &self.fd_cip
            }),
            D::FdRip | D::FdRnet => ip(if self.is_server() {
                &self.fd_cip
            } else {
                &self.fd_sip
            }),
            D::FdLport => port(if self.is_server() {
                &self.fd_sport
            } else {
                &self.fd_cport
            }),
            D::FdRport => port(if self.is_server() {
                &self.fd_cport
            } else {
                &self.fd_sport
            }),
            D::FdLipName => s(if self.is_server() {
                &self.fd_sip_name
            } else {
                &self.fd_cip_name
            }),
            D::FdRipName => s(if self.is_server() {
                &self.fd_cip_name
            } else {
                &self.fd_sip_name
            }),
            D::FsPathName => s(&self.fd_name)
                .or_else(|| s(&self.evt_arg_path))
                .or_else(|| s(&self.evt_arg_name)),
            D::FsPathSource => s(&self.evt_arg_oldpath).or_else(|| s(&self.evt_arg_target)),
            D::FsPathTarget => s(&self.evt_arg_newpath).or_else(|| s(&self.evt_arg_linkpath)),
            D::ContainerLabel | D::K8sPodLabel => {
                let Some(FieldArg::Key(key)) = arg else {
                    return None;
                };
                let map = if d == D::ContainerLabel {
                    &self.container_labels
                } else {
                    &self.k8s_pod_labels
                };
                map.as_ref()?
                    .get(key.as_str())
                    .map(|v| Value::Str(Cow::Borrowed(&**v)))
            }
        }
    }

    /// Reads a field by name; `None` when the name is unknown or the field unset.
    pub fn get_by_name(&self, name: &str) -> Option<Value<'_>> {
        self.get(&FieldRef::parse(name).ok()?)
    }
}

/// `evt.is_open_read`, `evt.is_open_write` and `evt.is_open_exec` of one event
/// ([`Event::open_flags`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// `evt.is_open_read`: an open call whose flags allow reading.
    pub read: bool,
    /// `evt.is_open_write`: an open call whose flags allow writing.
    pub write: bool,
    /// `evt.is_open_exec`: an open call that creates an executable file.
    pub exec: bool,
}

impl OpenFlags {
    /// Whether `d` is one of the three.
    pub fn reads(d: DerivedField) -> bool {
        use DerivedField as D;
        matches!(d, D::EvtIsOpenRead | D::EvtIsOpenWrite | D::EvtIsOpenExec)
    }

    /// The value of `d` (`None` for any other field).
    pub fn get(self, d: DerivedField) -> Option<bool> {
        use DerivedField as D;
        match d {
            D::EvtIsOpenRead => Some(self.read),
            D::EvtIsOpenWrite => Some(self.write),
            D::EvtIsOpenExec => Some(self.exec),
            _ => None,
        }
    }
}

/// [`open_bits`]: the flags allow reading (`O_RDONLY` or `O_RDWR`).
const OPEN_READ: u8 = 1;
/// [`open_bits`]: the flags allow writing (`O_WRONLY` or `O_RDWR`).
const OPEN_WRITE: u8 = 2;
/// [`open_bits`]: `O_CREAT`.
const OPEN_CREAT: u8 = 4;

/// What `evt.is_open_*` read of an open's flags text (`O_RDWR|O_CREAT|O_CLOEXEC`),
/// in one pass over its `|`-separated names: many rules test these on every open.
fn open_bits(flags: &str) -> u8 {
    flags
        .as_bytes()
        .split(|&b| b == b'|')
        .fold(0, |bits, name| {
            bits | match name {
                b"O_RDONLY" => OPEN_READ,
                b"O_WRONLY" => OPEN_WRITE,
                b"O_RDWR" => OPEN_READ | OPEN_WRITE,
                b"O_CREAT" => OPEN_CREAT,
                _ => 0,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_name_parses_back_to_itself() {
        for name in all_field_names() {
            match FieldRef::parse(name) {
                Ok(r) => assert_eq!(r.field.name(), name),
                Err(FieldError::MissingArg(_)) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }

    #[test]
    fn arguments() {
        let r = FieldRef::parse("proc.aname[3]").unwrap();
        assert_eq!(r.arg, Some(FieldArg::Index(3)));
        let r = FieldRef::parse("container.label.com.docker.compose.service").unwrap();
        assert_eq!(
            r.arg,
            Some(FieldArg::Key("com.docker.compose.service".into()))
        );
        assert!(FieldRef::parse("proc.name[2]").is_err());
        assert!(FieldRef::parse("proc.aname[x]").is_err());
        assert!(FieldRef::parse("proc.nope").is_err());
        assert!(matches!(
            FieldRef::parse("container.label"),
            Err(FieldError::MissingArg(_))
        ));
    }

    proptest::proptest! {
        /// One pass over the flags reads what testing each name among the `|`-separated
        /// ones reads (Falco's definition of `evt.is_open_read`, `_write`, `O_CREAT`).
        #[test]
        fn open_bits_is_a_test_of_each_name(names in proptest::collection::vec("O_RDONLY|O_WRONLY|O_RDWR|O_CREAT|O_CLOEXEC|O_RDONLYX|O_RDW|", 0..5)) {
            let flags = names.join("|");
            let has = |f: &str| flags.split('|').any(|t| t == f);
            let bits = open_bits(&flags);
            proptest::prop_assert_eq!(bits & OPEN_READ != 0, has("O_RDONLY") || has("O_RDWR"));
            proptest::prop_assert_eq!(bits & OPEN_WRITE != 0, has("O_WRONLY") || has("O_RDWR"));
            proptest::prop_assert_eq!(bits & OPEN_CREAT != 0, has("O_CREAT"));
        }
    }
}
