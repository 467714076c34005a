//! The event model: one flat record per syscall, named in Falco's vocabulary.
//!
//! Every stored field is declared once, in the [`event_fields!`] table below. From that
//! table the macro derives the [`Event`] struct, the [`StoredField`] enum, the registry
//! [`STORED_FIELDS`] (Falco name, Parquet column, kind, doc), the wire codec, the JSON
//! form and the Arrow columns, so the model, the accessor and the archive schema cannot
//! drift apart. Fields Falco computes from others (`proc.pname`, `fd.directory`,
//! `evt.res`, ...) are in [`crate::field`].
//!
//! Events are self-contained: each carries its process, its ancestry (nearest first),
//! its user, and its container and Kubernetes context, so any detector replica can
//! judge any event without shared state.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::value::{Kind, Timestamp};

/// Immutable text: up to 23 bytes are stored inline (cloning copies them: no
/// allocation, no reference count), longer text is shared (cloning is one atomic
/// increment), so events that share a process, container or ancestry share its long
/// strings. `"bash".into()` and `String::into()` build one; it derefs to `&str`.
pub type Text = smol_str::SmolStr;
/// A list of text values (ancestry, DNS answers): `vec!["a".into()].into()`.
pub type StrList = Arc<[Text]>;
/// A list of unsigned integers (ancestor pids): `vec![7, 1].into()`.
pub type U64List = Arc<[u64]>;
/// Labels: a sorted text map, shared: `Arc::new(BTreeMap::from([...]))`.
pub type Labels = Arc<BTreeMap<Text, Text>>;

/// Registry entry for one stored field.
#[derive(Clone, Copy, Debug)]
pub struct StoredFieldInfo {
    /// Falco field name, e.g. `proc.name`.
    pub name: &'static str,
    /// Parquet/Arrow column name, e.g. `proc_name`.
    pub column: &'static str,
    /// Value kind.
    pub kind: Kind,
    /// One-line description.
    pub doc: &'static str,
}

/// Maps a Rust field type to its [`Kind`].
pub trait FieldKind {
    /// The kind of the type.
    const KIND: Kind;

    /// The value as text, for text fields.
    fn text(&self) -> Option<&str> {
        None
    }

    /// The value as an integer, for integer fields.
    fn int(&self) -> Option<i128> {
        None
    }
}
impl FieldKind for Text {
    const KIND: Kind = Kind::Str;
    fn text(&self) -> Option<&str> {
        Some(self.as_str())
    }
}
impl FieldKind for u64 {
    const KIND: Kind = Kind::U64;
    fn int(&self) -> Option<i128> {
        Some(i128::from(*self))
    }
}
impl FieldKind for i64 {
    const KIND: Kind = Kind::I64;
    fn int(&self) -> Option<i128> {
        Some(i128::from(*self))
    }
}
impl FieldKind for bool {
    const KIND: Kind = Kind::Bool;
}
impl FieldKind for Timestamp {
    const KIND: Kind = Kind::Ts;
}
impl FieldKind for IpAddr {
    const KIND: Kind = Kind::Ip;
}
impl FieldKind for StrList {
    const KIND: Kind = Kind::StrList;
}
impl FieldKind for U64List {
    const KIND: Kind = Kind::U64List;
}
impl FieldKind for Labels {
    const KIND: Kind = Kind::Map;
}

/// Declares the stored fields. Each line: `ident: RustType = "falco.name", "doc"`.
/// The column name is the ident, which must equal the Falco name with `_` for `.`
/// (a unit test checks it).
macro_rules! event_fields {
    ($( $ident:ident : $ty:ty = $name:literal, $doc:literal; )*) => {
        /// One event: a flat record, every field optional. See the module docs.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Event {
            $(
                #[doc = $doc]
                #[doc = concat!("\n\nFalco field `", $name, "`.")]
                pub $ident: Option<$ty>,
            )*
        }

        /// The stored fields, in declaration (and wire, and column) order.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum StoredField {
            $(
                #[doc = $doc]
                $ident,
            )*
        }

        /// Registry of the stored fields, indexed by `StoredField as usize`.
        pub const STORED_FIELDS: &[StoredFieldInfo] = &[
            $(
                StoredFieldInfo {
                    name: $name,
                    column: stringify!($ident),
                    kind: <$ty as FieldKind>::KIND,
                    doc: $doc,
                },
            )*
        ];

        /// Bytes of an event's presence bitmap, one bit per stored field.
        const PRESENCE_BYTES: usize = STORED_FIELDS.len().div_ceil(8);

        /// The fields a decoder keeps, in the presence bitmap's layout (see
        /// [`Event::keep_mask`]).
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub(crate) struct KeepMask([u8; PRESENCE_BYTES]);

        /// The most bytes one event takes in a batch: its bitmap and every field at its
        /// largest.
        pub(crate) const MAX_EVENT_BYTES: usize =
            PRESENCE_BYTES + STORED_FIELDS.len() * crate::wire::MAX_VALUE_BYTES;

        /// Every stored field, in order.
        pub const ALL_STORED: &[StoredField] = &[$(StoredField::$ident,)*];

        impl StoredField {
            /// The stored field of a Falco name.
            pub fn from_name(name: &str) -> Option<StoredField> {
                match name {
                    $($name => Some(StoredField::$ident),)*
                    _ => None,
                }
            }

            /// Registry entry of this field.
            pub fn info(self) -> &'static StoredFieldInfo {
                &STORED_FIELDS[self as usize]
            }
        }

        impl Event {
            /// The text of a stored text field; `None` when unset or not text. Cheaper
            /// than [`Event::get_stored`] for the detector's text checks.
            #[inline]
            pub fn get_text(&self, field: StoredField) -> Option<&str> {
                match field {
                    $(StoredField::$ident => self.$ident.as_ref().and_then(FieldKind::text),)*
                }
            }

            /// The value of a stored integer field; `None` when unset or not an integer.
            #[inline]
            pub fn get_int(&self, field: StoredField) -> Option<i128> {
                match field {
                    $(StoredField::$ident => self.$ident.as_ref().and_then(FieldKind::int),)*
                }
            }

            /// The value of a stored field, if set.
            pub fn get_stored(&self, field: StoredField) -> Option<crate::value::Value<'_>> {
                use crate::wire::AsValue;
                match field {
                    $(StoredField::$ident => self.$ident.as_ref().map(AsValue::as_value),)*
                }
            }

            /// Reads a field's value on the JSON fast path (see [`crate::json_fast`]).
            pub(crate) fn parse_field(
                &mut self,
                field: StoredField,
                p: &mut crate::json_fast::Parser<'_>,
            ) -> Option<()> {
                use crate::json_fast::FastJson;
                match field {
                    $(StoredField::$ident => self.$ident = Some(<$ty as FastJson>::parse_json(p)?),)*
                }
                Some(())
            }

            /// Unsets a field (JSON `null`).
            pub(crate) fn clear_field(&mut self, field: StoredField) {
                match field {
                    $(StoredField::$ident => self.$ident = None,)*
                }
            }

            /// Makes equal values point at one allocation (see [`crate::share`]).
            pub fn share(&mut self, pool: &mut crate::share::Pool) {
                use crate::share::Share;
                $(
                    if let Some(v) = &mut self.$ident {
                        v.share(pool);
                    }
                )*
            }

            /// Writes the presence bitmap and the present values (the codec uses this).
            pub(crate) fn encode_fields(&self, w: &mut crate::wire::Writer) {
                // The event is written into a buffer that holds any event (see
                // `wire::put_u8`), the bitmap built here and written over its place at
                // the end: setting a bit is one OR at a constant offset.
                let mut scratch = w.take_event_scratch();
                let out = scratch.as_mut_slice();
                let mut at = PRESENCE_BYTES;
                let mut presence = [0u8; PRESENCE_BYTES];
                let mut bit = 0usize;
                $(
                    if let Some(v) = &self.$ident {
                        presence[bit / 8] |= 1 << (bit % 8);
                        at = crate::wire::Wire::encode(v, w, out, at);
                    }
                    bit += 1;
                )*
                let _ = bit;
                if let Some(place) = out.get_mut(..PRESENCE_BYTES) {
                    place.copy_from_slice(&presence);
                }
                // The buffer holds the largest event: slicing it cannot fail unless
                // `MAX_EVENT_BYTES` is wrong, and then panicking beats a corrupt batch.
                // Its length first: a reader that wants nothing more of an event
                // than its type steps over the rest.
                crate::wire::put_varint(&mut w.buf, at as u64);
                w.buf.extend_from_slice(&out[..at]);
                w.put_event_scratch(scratch);
            }

            /// The fields of `keep` as a mask in the presence bitmap's layout (what
            /// decoding tests a field's bit against).
            pub(crate) fn keep_mask(keep: &crate::field_set::StoredFieldSet) -> KeepMask {
                let mut mask = [0u8; PRESENCE_BYTES];
                for (bit, f) in ALL_STORED.iter().enumerate() {
                    if keep.contains(*f) {
                        mask[bit / 8] |= 1 << (bit % 8);
                    }
                }
                KeepMask(mask)
            }

            /// Decodes one event of a batch whose writer's fields are checked per
            /// `plan` (see [`crate::wire::Reader::value_check`]; the writer's field list
            /// may be shorter or longer than ours). Fields not in `keep` are checked and
            /// skipped. With `reuse`, the event held an earlier event decoded with the
            /// same `keep`: kept fields this one lacks are unset (the others were never
            /// set).
            pub(crate) fn decode_fields(
                &mut self,
                r: &mut crate::wire::Reader<'_>,
                plan: &[crate::wire::ValueCheck],
                keep: Option<&KeepMask>,
                reuse: bool,
            ) -> Result<(), crate::codec::CodecError> {
                if plan.len() == STORED_FIELDS.len() {
                    // The writer's fields are ours: the common case.
                    return match (keep, reuse) {
                        (None, true) => self.decode_own_fields::<true>(r),
                        (None, false) => self.decode_own_fields::<false>(r),
                        (Some(k), true) => self.decode_own_kept_fields::<true>(r, &k.0),
                        (Some(k), false) => self.decode_own_kept_fields::<false>(r, &k.0),
                    };
                }
                let presence = r.presence(plan.len())?;
                let ev = self;
                let mut bit = 0usize;
                $(
                    if bit < plan.len() && crate::wire::is_present(presence, bit) {
                        if keep.is_none_or(|k| crate::wire::is_present(&k.0, bit)) {
                            ev.$ident = Some(
                                <$ty as crate::wire::Wire>::decode(r)
                                    .map_err(|e| e.in_field($name))?,
                            );
                        } else {
                            r.check_value(plan[bit]).map_err(|e| e.in_field($name))?;
                        }
                    } else if reuse && ev.$ident.is_some() {
                        // Only kept fields are ever set in a reused event.
                        ev.$ident = None;
                    }
                    bit += 1;
                )*
                for (extra, check) in plan.iter().enumerate().skip(bit) {
                    if crate::wire::is_present(presence, extra) {
                        r.check_value(*check)?;
                    }
                }
                Ok(())
            }

            /// [`Event::decode_fields`] for a batch written with this crate's own field
            /// list, keeping every field: the presence bitmap is a fixed-size array and
            /// each field's bit a constant, so a field costs one test of a bit unless it
            /// is present (no bound, `keep` or plan lookups per field).
            #[inline(always)]
            fn decode_own_fields<const REUSE: bool>(
                &mut self,
                r: &mut crate::wire::Reader<'_>,
            ) -> Result<(), crate::codec::CodecError> {
                let presence: &[u8; PRESENCE_BYTES] = r.presence_array()?;
                let ev = self;
                let mut bit = 0usize;
                $(
                    if presence[bit / 8] & (1 << (bit % 8)) != 0 {
                        ev.$ident = Some(
                            <$ty as crate::wire::Wire>::decode(r)
                                .map_err(|e| e.in_field($name))?,
                        );
                    } else if REUSE && ev.$ident.is_some() {
                        ev.$ident = None;
                    }
                    bit += 1;
                )*
                let _ = bit;
                Ok(())
            }

            /// [`Event::decode_own_fields`] into an event decoded into before (with every
            /// field kept), that asks `wanted` about the event's type as soon as it is
            /// read: the rest of an event it does not want is stepped over to `end`
            /// (its length) unread, or checked and skipped in a batch without event
            /// lengths ([`crate::wire::Reader::check_present`]); the event is left half
            /// decoded, to be decoded into again. Returns whether it was wanted.
            pub(crate) fn decode_own_fields_wanted(
                &mut self,
                r: &mut crate::wire::Reader<'_>,
                plan: &[crate::wire::ValueCheck],
                wanted: crate::codec::WantedTypes<'_>,
                end: Option<usize>,
            ) -> Result<bool, crate::codec::CodecError> {
                const TYPE: usize = StoredField::evt_type as usize;
                let presence: &[u8; PRESENCE_BYTES] = r.presence_array()?;
                let ev = self;
                // Each field's `bit` is a constant where it is tested: the tests
                // against `TYPE` leave one of the two passes' code for each field.
                let mut bit = 0usize;
                $(
                    if bit <= TYPE {
                        if presence[bit / 8] & (1 << (bit % 8)) != 0 {
                            ev.$ident = Some(
                                <$ty as crate::wire::Wire>::decode(r)
                                    .map_err(|e| e.in_field($name))?,
                            );
                        } else if ev.$ident.is_some() {
                            ev.$ident = None;
                        }
                    }
                    bit += 1;
                )*
                if !wanted(ev.evt_type.as_deref()) {
                    match end {
                        Some(end) => r.skip_to(end),
                        None => r.check_present(presence, TYPE + 1, plan)?,
                    }
                    return Ok(false);
                }
                bit = 0;
                $(
                    if bit > TYPE {
                        if presence[bit / 8] & (1 << (bit % 8)) != 0 {
                            ev.$ident = Some(
                                <$ty as crate::wire::Wire>::decode(r)
                                    .map_err(|e| e.in_field($name))?,
                            );
                        } else if ev.$ident.is_some() {
                            ev.$ident = None;
                        }
                    }
                    bit += 1;
                )*
                let _ = bit;
                Ok(true)
            }

            /// [`Event::decode_own_fields`] keeping only the fields of `keep`: a field
            /// outside it is checked as decoding would check it (its kind is known
            /// here, so that is a varint and a bound) and skipped, at a fraction of what
            /// building its value costs.
            #[inline(always)]
            fn decode_own_kept_fields<const REUSE: bool>(
                &mut self,
                r: &mut crate::wire::Reader<'_>,
                keep: &[u8; PRESENCE_BYTES],
            ) -> Result<(), crate::codec::CodecError> {
                let presence: &[u8; PRESENCE_BYTES] = r.presence_array()?;
                let ev = self;
                let mut bit = 0usize;
                $(
                    let mask = 1u8 << (bit % 8);
                    if presence[bit / 8] & mask == 0 {
                        if REUSE && keep[bit / 8] & mask != 0 && ev.$ident.is_some() {
                            ev.$ident = None;
                        }
                    } else if keep[bit / 8] & mask != 0 {
                        ev.$ident = Some(
                            <$ty as crate::wire::Wire>::decode(r)
                                .map_err(|e| e.in_field($name))?,
                        );
                    } else {
                        <$ty as crate::wire::Wire>::skip(r).map_err(|e| e.in_field($name))?;
                    }
                    bit += 1;
                )*
                let _ = bit;
                Ok(())
            }
        }

        impl serde::Serialize for Event {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                $(
                    if let Some(v) = &self.$ident {
                        map.serialize_entry($name, v)?;
                    }
                )*
                map.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for Event {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Event;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an event: a JSON object keyed by Falco field names")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Event, A::Error> {
                        let mut ev = Event::default();
                        // Keys resolve to fields without allocating (see `json::FieldKey`).
                        while let Some(crate::json::FieldKey(field)) = map.next_key()? {
                            match field {
                                $(
                                    StoredField::$ident => {
                                        ev.$ident = map.next_value::<Option<crate::json::Json<$ty>>>()?.map(|j| j.0);
                                    }
                                )*
                            }
                        }
                        Ok(ev)
                    }
                }
                d.deserialize_map(V)
            }
        }

        /// Long-lived Arrow builders of the stored fields, one per field in
        /// [`STORED_FIELDS`] order (see [`crate::arrow_columns`]).
        #[cfg(feature = "arrow")]
        pub(crate) struct StoredColumns {
            $( $ident: <$ty as crate::arrow_columns::ArrowColumn>::Builder, )*
        }

        #[cfg(feature = "arrow")]
        impl StoredColumns {
            pub(crate) fn new(rows: usize) -> Self {
                use crate::arrow_columns::ArrowColumn;
                StoredColumns { $( $ident: <$ty as ArrowColumn>::builder(stringify!($ident), rows), )* }
            }

            pub(crate) fn append(&mut self, ev: &Event) {
                use crate::arrow_columns::ArrowColumn;
                $( <$ty as ArrowColumn>::append(&mut self.$ident, ev.$ident.as_ref()); )*
            }

            pub(crate) fn bytes(&mut self) -> usize {
                use crate::arrow_columns::ArrowColumn;
                0 $( + <$ty as ArrowColumn>::bytes(&mut self.$ident) )*
            }

            pub(crate) fn finish(&mut self) -> Vec<arrow_array::ArrayRef> {
                use arrow_array::builder::ArrayBuilder;
                vec![ $( ArrayBuilder::finish(&mut self.$ident), )* ]
            }
        }

        /// The stored fields' columns appended straight from wire batches (see
        /// [`crate::arrow_wire`]).
        #[cfg(feature = "arrow")]
        pub(crate) struct WireStored {
            $( pub(crate) $ident: <$ty as crate::arrow_wire::WireColumn>::Column, )*
        }

        #[cfg(feature = "arrow")]
        impl WireStored {
            pub(crate) fn new(rows: usize) -> Self {
                use crate::arrow_wire::WireColumn;
                WireStored { $( $ident: <$ty as WireColumn>::column(stringify!($ident), rows), )* }
            }

            /// Appends one event of a batch written with this crate's field list: each
            /// field's bit is a constant, each present value read into its column.
            #[inline(always)]
            pub(crate) fn append_event(
                &mut self,
                r: &mut crate::wire::Reader<'_>,
                cx: &mut crate::arrow_wire::Cx<'_>,
            ) -> Result<(), crate::codec::CodecError> {
                use crate::arrow_wire::WireColumn;
                let presence: &[u8; PRESENCE_BYTES] = r.presence_array()?;
                let mut bit = 0usize;
                $(
                    if presence[bit / 8] & (1 << (bit % 8)) != 0 {
                        <$ty as WireColumn>::append(&mut self.$ident, r, cx)
                            .map_err(|e| e.in_field($name))?;
                    } else {
                        <$ty as WireColumn>::append_null(&mut self.$ident);
                    }
                    bit += 1;
                )*
                let _ = bit;
                Ok(())
            }

            pub(crate) fn truncate(&mut self, rows: usize) {
                use crate::arrow_wire::WireColumn;
                $( <$ty as WireColumn>::truncate(&mut self.$ident, rows); )*
            }

            pub(crate) fn bytes(&self) -> usize {
                use crate::arrow_wire::WireColumn;
                0 $( + <$ty as WireColumn>::bytes(&self.$ident) )*
            }

            pub(crate) fn finish(
                &mut self,
                f: &crate::arrow_wire::Finish,
            ) -> Result<Vec<arrow_array::ArrayRef>, arrow_schema::ArrowError> {
                use crate::arrow_wire::WireColumn;
                Ok(vec![ $( <$ty as WireColumn>::finish(&mut self.$ident, stringify!($ident), f)?, )* ])
            }
        }

        #[cfg(feature = "arrow")]
        impl Event {
            /// Events from the stored fields' columns of `batch` (see
            /// [`crate::arrow::from_record_batch`]).
            pub(crate) fn from_arrays(
                batch: &arrow_array::RecordBatch,
            ) -> Result<Vec<Event>, arrow_schema::ArrowError> {
                use crate::arrow::read::{ReadArrow, column};
                let schema = crate::arrow::schema();
                // Each present column read whole, then the events filled one at a time:
                // an event is a few KB, and filling them column by column would sweep
                // the whole batch's events once per column.
                $(
                    let name = stringify!($ident);
                    let mut $ident = match schema.field_with_name(name) {
                        Ok(f) => match column(batch, name, f.data_type())? {
                            Some(col) => Some(<$ty as ReadArrow>::read(&col, name)?.into_iter()),
                            None => None,
                        },
                        Err(_) => None,
                    };
                )*
                // Built in place: moving a finished event would copy it.
                let mut events = Vec::with_capacity(batch.num_rows());
                events.resize_with(batch.num_rows(), Event::default);
                for ev in &mut events {
                    $(
                        if let Some(values) = &mut $ident {
                            ev.$ident = values.next().flatten();
                        }
                    )*
                }
                Ok(events)
            }

            /// One Arrow array per stored field, in [`STORED_FIELDS`] order.
            pub(crate) fn stored_arrays(events: &[Event]) -> Vec<arrow_array::ArrayRef> {
                use crate::arrow::ArrowField;
                vec![
                    $(
                        <$ty as ArrowField>::array(events.iter().map(|e| e.$ident.as_ref())),
                    )*
                ]
            }
        }
    };
}

event_fields! {
    // --- the event itself
    evt_id: Text = "evt.id", "Unique event id: `<16 hex session id>-<evt.num>` from the sensor.";
    evt_time: Timestamp = "evt.time", "Time of the event (syscall exit), UTC nanoseconds.";
    evt_num: u64 = "evt.num", "Event sequence number within the sensor session.";
    evt_type: Text = "evt.type", "Syscall name, as Falco names it (execve, openat, connect, ...).";
    evt_rawres: i64 = "evt.rawres", "Syscall return value: >= 0 on success, -errno on failure.";
    evt_hostname: Text = "evt.hostname", "Node (host) name the event was captured on.";
    // --- syscall arguments, rendered as Falco renders them
    evt_arg_flags: Text = "evt.arg.flags", "Flags argument rendered as Falco does (`O_WRONLY|O_CREAT`, `CLONE_NEWNS`, ...).";
    evt_arg_mode: Text = "evt.arg.mode", "Mode argument rendered as Falco does (`0755(S_IRWXU|...)`).";
    evt_arg_domain: Text = "evt.arg.domain", "Socket domain (`AF_INET`, `AF_PACKET`, ...).";
    evt_arg_type: Text = "evt.arg.type", "Socket type, or file system type for mount.";
    evt_arg_request: Text = "evt.arg.request", "ptrace request (`PTRACE_ATTACH`, ...).";
    evt_arg_pid: Text = "evt.arg.pid", "Target pid (ptrace, kill).";
    evt_arg_target: Text = "evt.arg.target", "Symlink target (what the link points to).";
    evt_arg_linkpath: Text = "evt.arg.linkpath", "Path of the link created by symlink/link.";
    evt_arg_oldpath: Text = "evt.arg.oldpath", "Old path (rename, link).";
    evt_arg_newpath: Text = "evt.arg.newpath", "New path (rename, link).";
    evt_arg_path: Text = "evt.arg.path", "Path argument (unlink, mkdir, chmod, ...).";
    evt_arg_name: Text = "evt.arg.name", "Name argument (unlinkat, memfd_create, init_module, ...).";
    evt_arg_filename: Text = "evt.arg.filename", "File name argument (execve, fchmodat, ...).";
    evt_arg_uid: Text = "evt.arg.uid", "uid argument (setuid family), rendered as Falco does.";
    evt_arg_gid: Text = "evt.arg.gid", "gid argument (setgid family).";
    evt_arg_cmd: Text = "evt.arg.cmd", "bpf command (`BPF_PROG_LOAD`, ...).";
    evt_arg_fd: Text = "evt.arg.fd", "fd argument of fd-based calls (fchmod, dup, ...).";
    evt_arg_dev: Text = "evt.arg.dev", "Mounted device or source (mount).";
    evt_arg_dir: Text = "evt.arg.dir", "Mount point (mount, umount).";
    evt_arg_nstype: Text = "evt.arg.nstype", "Namespace type (setns).";
    // --- the process and thread
    proc_pid: u64 = "proc.pid", "Process id (thread group id) in the host pid namespace.";
    thread_tid: u64 = "thread.tid", "Thread id in the host pid namespace.";
    proc_ppid: u64 = "proc.ppid", "Parent process id.";
    proc_vpid: u64 = "proc.vpid", "Process id inside its own pid namespace.";
    proc_vpgid: u64 = "proc.vpgid", "Process group id inside its own pid namespace.";
    proc_sid: u64 = "proc.sid", "Session id.";
    proc_sname: Text = "proc.sname", "Name of the session leader.";
    proc_name: Text = "proc.name", "Process name (comm, at most 15 characters).";
    proc_exe: Text = "proc.exe", "First command-line argument (argv[0]).";
    proc_exepath: Text = "proc.exepath", "Full path of the executable.";
    proc_args: Text = "proc.args", "Arguments after argv[0], joined by spaces.";
    proc_cwd: Text = "proc.cwd", "Current working directory, with a trailing slash as Falco prints it.";
    proc_tty: u64 = "proc.tty", "Controlling terminal (device number), 0 when none.";
    proc_pid_ts: Timestamp = "proc.pid.ts", "Start time of the process.";
    proc_exe_ino: u64 = "proc.exe_ino", "Inode number of the executable.";
    proc_exe_ino_ctime: Timestamp = "proc.exe_ino.ctime", "ctime of the executable's inode.";
    proc_exe_ino_mtime: Timestamp = "proc.exe_ino.mtime", "mtime of the executable's inode.";
    proc_is_exe_from_memfd: bool = "proc.is_exe_from_memfd", "The executable is a memfd (fileless execution).";
    proc_is_exe_upper_layer: bool = "proc.is_exe_upper_layer", "The executable lives in a container's writable overlay layer.";
    proc_is_exe_writable: bool = "proc.is_exe_writable", "The executable is writable by the user running it.";
    proc_aname: StrList = "proc.aname", "Ancestor names, nearest first (`proc.aname[1]` is the parent).";
    proc_apid: U64List = "proc.apid", "Ancestor pids, nearest first.";
    proc_aexe: StrList = "proc.aexe", "Ancestor argv[0] values, nearest first.";
    proc_aexepath: StrList = "proc.aexepath", "Ancestor executable paths, nearest first.";
    proc_acmdline: StrList = "proc.acmdline", "Ancestor command lines (`name args`), nearest first.";
    thread_cap_effective: Text = "thread.cap_effective", "Effective capabilities, space-separated `CAP_*` names.";
    thread_cap_permitted: Text = "thread.cap_permitted", "Permitted capabilities, space-separated `CAP_*` names.";
    // --- user and group
    user_uid: u64 = "user.uid", "Effective user id.";
    user_name: Text = "user.name", "Effective user name.";
    user_loginuid: i64 = "user.loginuid", "Audit login uid, -1 when unset.";
    user_loginname: Text = "user.loginname", "Name of the audit login user.";
    group_gid: u64 = "group.gid", "Effective group id.";
    group_name: Text = "group.name", "Effective group name.";
    // --- container
    container_id: Text = "container.id", "Short (12 hex) container id; `host` outside containers.";
    container_name: Text = "container.name", "Container name.";
    container_image: Text = "container.image", "Image as `repository:tag`.";
    container_image_repository: Text = "container.image.repository", "Image repository.";
    container_image_tag: Text = "container.image.tag", "Image tag.";
    container_image_digest: Text = "container.image.digest", "Image digest (`sha256:...`).";
    container_type: Text = "container.type", "Runtime: docker, containerd, cri-o, podman.";
    container_privileged: bool = "container.privileged", "The container runs privileged.";
    container_start_ts: Timestamp = "container.start_ts", "Start time of the container.";
    container_labels: Labels = "container.labels", "Container labels (compose project and service included).";
    // --- Kubernetes
    k8s_ns_name: Text = "k8s.ns.name", "Kubernetes namespace.";
    k8s_pod_name: Text = "k8s.pod.name", "Kubernetes pod name.";
    k8s_pod_uid: Text = "k8s.pod.uid", "Kubernetes pod uid.";
    k8s_pod_labels: Labels = "k8s.pod.labels", "Kubernetes pod labels.";
    // --- file descriptor (file or socket) the event acts on
    fd_num: i64 = "fd.num", "File descriptor number.";
    fd_type: Text = "fd.type", "fd type: file, directory, ipv4, ipv6, unix, pipe, memfd, ...";
    fd_name: Text = "fd.name", "Full path, or connection tuple `cip:cport->sip:sport` for sockets.";
    fd_nameraw: Text = "fd.nameraw", "Path as passed to the syscall, unresolved.";
    fd_name_changed: bool = "fd.name_changed", "The event changed the name of the fd.";
    fd_l4proto: Text = "fd.l4proto", "Layer-4 protocol: tcp, udp, icmp, raw.";
    fd_cip: IpAddr = "fd.cip", "Client IP address.";
    fd_cport: u64 = "fd.cport", "Client port.";
    fd_sip: IpAddr = "fd.sip", "Server IP address.";
    fd_sport: u64 = "fd.sport", "Server port.";
    fd_is_server: bool = "fd.is_server", "This process is the server side of the socket (accept, bind, listen).";
    fd_connected: bool = "fd.connected", "The socket is connected.";
    fd_cip_name: Text = "fd.cip.name", "Domain name the client IP was resolved from (DNS correlation).";
    fd_sip_name: Text = "fd.sip.name", "Domain name the server IP was resolved from (DNS correlation).";
    // --- DNS
    dns_name: Text = "dns.name", "DNS query name.";
    dns_type: Text = "dns.type", "DNS query type (A, AAAA, CNAME, ...).";
    dns_rcode: Text = "dns.rcode", "DNS response code (NOERROR, NXDOMAIN, ...).";
    dns_answers: StrList = "dns.answers", "Addresses in the DNS answer.";
    // --- lanner's own
    lanner_drops: u64 = "lanner.drops", "On `lanner_drop` events: how many events were lost since the last report.";
    // --- more syscall arguments (appended: the wire format only ever grows at the end)
    evt_arg_sig: Text = "evt.arg.sig", "Signal sent (kill, tkill, tgkill), rendered as Falco does (`9(SIGKILL)`).";
    evt_arg_tid: Text = "evt.arg.tid", "Target thread id (tkill, tgkill).";
    evt_arg_option: Text = "evt.arg.option", "prctl option (`PR_SET_NAME`, ...).";
    evt_arg_arg2_str: Text = "evt.arg.arg2_str", "prctl's second argument when it is a string (the name of `PR_SET_NAME`).";
    evt_arg_arg2_int: Text = "evt.arg.arg2_int", "prctl's second argument as a number.";
}

impl Event {
    /// Looks a stored field up by Falco name.
    pub fn stored_field(name: &str) -> Option<StoredField> {
        StoredField::from_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_is_falco_name_with_underscores() {
        for f in STORED_FIELDS {
            assert_eq!(f.column, f.name.replace('.', "_"), "field {}", f.name);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = STORED_FIELDS.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STORED_FIELDS.len());
    }
}
