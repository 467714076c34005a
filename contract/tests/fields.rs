//! The model, the accessor and the archive schema agree: every stored field has its
//! Arrow column, every Falco field the upstream rules need resolves, and
//! `docs/fields.md` lists exactly the fields the registry has.

use lanner_contract::arrow::{
    DICTIONARY_COLUMNS, MATERIALIZED, SCHEMA_VERSION, column_name, dictionary_type, schema,
    to_record_batch,
};
use lanner_contract::field::{DERIVED_FIELDS, FieldError, all_field_names};
use lanner_contract::model::STORED_FIELDS;
use lanner_contract::{Event, FieldRef, Kind, Value};

/// The 64 fields the upstream stable rules use in conditions and outputs (DESIGN.md).
const STABLE_RULE_FIELDS: &str =
    "container.id container.image.repository container.privileged container.start_ts
evt.arg.domain evt.arg.flags evt.arg.linkpath evt.arg.newpath evt.arg.oldpath
evt.arg.request evt.arg.target evt.args evt.is_open_read evt.is_open_write evt.num
evt.rawres evt.res evt.type fd.connected fd.directory fd.filename fd.ip fd.l4proto
fd.lport fd.name fd.name_changed fd.nameraw fd.net fd.num fd.rport fd.sip fd.sip.name
fd.snet fd.sport fd.type fd.typechar group.gid group.name k8s.ns.name proc.aexepath
proc.aname proc.args proc.cmdline proc.cwd proc.duration proc.exe proc.exe_ino.ctime
proc.exe_ino.ctime_duration_proc_start proc.exe_ino.mtime proc.exepath
proc.is_exe_from_memfd proc.is_exe_upper_layer proc.name proc.pcmdline proc.pexe
proc.pexepath proc.pname proc.sname proc.tty thread.cap_effective user.loginname
user.loginuid user.name user.uid";

#[test]
fn every_stored_field_has_its_arrow_column() {
    let schema = schema();
    for f in STORED_FIELDS {
        let col = schema
            .field_with_name(f.column)
            .unwrap_or_else(|_| panic!("no column {} for {}", f.column, f.name));
        use arrow_schema::DataType as D;
        let ok = match f.kind {
            Kind::Str | Kind::Ip if DICTIONARY_COLUMNS.contains(&f.column) => {
                col.data_type() == &dictionary_type()
            }
            Kind::Str | Kind::Ip => col.data_type() == &D::Utf8,
            Kind::U64 => col.data_type() == &D::UInt64,
            Kind::I64 => col.data_type() == &D::Int64,
            Kind::Bool => col.data_type() == &D::Boolean,
            Kind::Ts => {
                matches!(col.data_type(), D::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some(tz)) if tz.as_ref() == "UTC")
            }
            Kind::StrList => matches!(col.data_type(), D::List(i) if i.data_type() == &D::Utf8),
            Kind::U64List => matches!(col.data_type(), D::List(i) if i.data_type() == &D::UInt64),
            Kind::Map => matches!(col.data_type(), D::Map(..)),
        };
        assert!(
            ok,
            "{}: kind {:?} but column type {}",
            f.name,
            f.kind,
            col.data_type()
        );
    }
    for name in MATERIALIZED {
        let col = schema.field_with_name(&column_name(name)).expect(name);
        let text = match DICTIONARY_COLUMNS.contains(&col.name().as_str()) {
            true => dictionary_type(),
            false => arrow_schema::DataType::Utf8,
        };
        assert_eq!(col.data_type(), &text, "{name}");
    }
    // Every dictionary column is a text column of the schema.
    for name in DICTIONARY_COLUMNS {
        let col = schema.field_with_name(name).expect(name);
        assert_eq!(col.data_type(), &dictionary_type(), "{name}");
    }
    assert_eq!(
        schema.fields().len(),
        STORED_FIELDS.len() + MATERIALIZED.len()
    );
    assert_eq!(
        schema
            .metadata()
            .get("lanner.schema_version")
            .map(String::as_str),
        Some(SCHEMA_VERSION)
    );
}

#[test]
fn record_batches_carry_the_values() {
    let ev: Event = lanner_contract::jsonl::parse_line(
        r#"{"evt.type":"openat","proc.name":"cat","proc.args":"/etc/shadow","fd.name":"/etc/shadow","fd.type":"file","proc.aname":["bash","sshd"],"container.labels":{"app":"web"},"fd.sip":"10.0.0.1"}"#,
    )
    .expect("valid");
    let batch = to_record_batch(&[ev, Event::default()]).expect("batch");
    assert_eq!(batch.num_rows(), 2);
    let text = |col: &str| {
        let a = batch.column_by_name(col).expect(col);
        let a = arrow_cast::cast(a, &arrow_schema::DataType::Utf8).expect("text");
        arrow_array::cast::AsArray::as_string::<i32>(&a)
            .value(0)
            .to_owned()
    };
    assert_eq!(text("proc_cmdline"), "cat /etc/shadow");
    assert_eq!(text("proc_pname"), "bash");
    assert_eq!(text("fd_directory"), "/etc");
    assert_eq!(text("fd_sip"), "10.0.0.1");
    assert!(batch.column_by_name("proc_name").expect("col").is_null(1));
}

#[test]
fn every_field_the_stable_rules_use_resolves() {
    for name in STABLE_RULE_FIELDS.split_whitespace() {
        FieldRef::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in [
        "proc.aname[2]",
        "proc.aname[7]",
        "proc.aexepath[2]",
        "proc.aexe[2]",
        "container.label[app]",
        "k8s.pod.label.app",
    ] {
        FieldRef::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn derived_fields_follow_falco() {
    let ev: Event = lanner_contract::jsonl::parse_line(
        r#"{"evt.type":"openat","evt.rawres":-13,"evt.arg.flags":"O_WRONLY|O_CREAT","proc.name":"bash","proc.pid":42,
            "proc.aname":["sshd","systemd"],"proc.apid":[7,1],"proc.acmdline":["sshd -D","systemd"],
            "fd.name":"/etc/passwd","fd.type":"file","fd.cip":"10.1.1.1","fd.cport":5555,"fd.sip":"10.2.2.2","fd.sport":443,
            "evt.time":2000,"proc.pid.ts":500}"#,
    )
    .expect("valid");
    let get = |n: &str| ev.get(&FieldRef::parse(n).expect(n)).map(|v| v.to_string());
    assert_eq!(get("evt.res").as_deref(), Some("EACCES"));
    assert_eq!(get("evt.is_open_write").as_deref(), Some("true"));
    assert_eq!(get("evt.is_open_read").as_deref(), Some("false"));
    assert_eq!(get("proc.aname[0]").as_deref(), Some("bash"));
    assert_eq!(get("proc.aname[1]").as_deref(), Some("sshd"));
    assert_eq!(get("proc.aname[2]").as_deref(), Some("systemd"));
    assert_eq!(get("proc.aname[3]"), None);
    assert_eq!(get("proc.apid[1]").as_deref(), Some("7"));
    assert_eq!(get("proc.pcmdline").as_deref(), Some("sshd -D"));
    assert_eq!(get("proc.aname").as_deref(), Some("sshd,systemd"));
    assert_eq!(get("fd.directory").as_deref(), Some("/etc"));
    assert_eq!(get("fd.filename").as_deref(), Some("passwd"));
    assert_eq!(get("fd.typechar").as_deref(), Some("f"));
    assert_eq!(get("fd.lport").as_deref(), Some("5555"));
    assert_eq!(get("fd.rport").as_deref(), Some("443"));
    assert_eq!(get("fd.rip").as_deref(), Some("10.2.2.2"));
    assert_eq!(get("fd.ip").as_deref(), Some("10.1.1.1,10.2.2.2"));
    assert_eq!(get("proc.duration").as_deref(), Some("1500"));
    assert_eq!(get("container.id"), None);
    assert_eq!(
        ev.get(&FieldRef::parse("proc.pname").expect("field")),
        Some(Value::Str("sshd".into()))
    );
}

fn fields_doc() -> String {
    let mut out = String::from(
        "# Event fields\n\n<!-- Generated from contract/src/model.rs and contract/src/field.rs by \
         `UPDATE_DOCS=1 cargo test -p lanner-contract --features arrow --test fields`; do not edit. -->\n\n\
         Every event carries these fields (Falco names). The Parquet column is the name with `_` for `.`.\n\n\
         ## Stored fields\n\n| field | column | kind | meaning |\n|---|---|---|---|\n",
    );
    for f in STORED_FIELDS {
        out.push_str(&format!(
            "| `{}` | `{}` | {:?} | {} |\n",
            f.name,
            f.column,
            f.kind,
            f.doc.replace('|', "\\|")
        ));
    }
    out.push_str(
        "\n## Derived fields\n\nComputed from the stored fields with Falco's meaning; the ones marked \
         *column* are also materialized in the archive.\n\n| field | kind | meaning |\n|---|---|---|\n",
    );
    for (_, name, kind, doc) in DERIVED_FIELDS {
        let col = if MATERIALIZED.contains(name) {
            format!(" *column* `{}`.", column_name(name))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| `{name}` | {kind:?} | {}{col} |\n",
            doc.replace('|', "\\|")
        ));
    }
    out
}

#[test]
fn fields_doc_is_current_and_every_documented_field_resolves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/fields.md");
    let want = fields_doc();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).expect("write docs/fields.md");
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/fields.md is stale: run UPDATE_DOCS=1 cargo test -p lanner-contract --features arrow --test fields"
    );
    let documented: Vec<&str> = have
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert_eq!(documented.len(), all_field_names().count());
    for name in documented {
        match FieldRef::parse(name) {
            Ok(_) | Err(FieldError::MissingArg(_)) => {}
            Err(e) => panic!("documented field {name}: {e}"),
        }
    }
}
