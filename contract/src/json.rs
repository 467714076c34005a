//! Fast JSON decoding of field values: text is built straight from the borrowed input
//! (one allocation), where serde's `Arc<str>` would go through a `String` and a `Box`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::model::{Labels, StrList, Text, U64List};
use crate::value::Timestamp;

/// A field value read from JSON.
pub(crate) struct Json<T>(pub(crate) T);

/// An object key resolved to its field, borrowing the key text (serde's `Cow<str>`
/// would allocate a `String` for every key of every line).
pub(crate) struct FieldKey(pub(crate) crate::model::StoredField);

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = FieldKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Falco field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FieldKey, E> {
        crate::model::StoredField::from_name(v)
            .map(FieldKey)
            .ok_or_else(|| E::custom(format!("unknown field {v:?}")))
    }
}

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::from(v))
    }
}

impl<'de> Deserialize<'de> for Json<Text> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor).map(Json)
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de> Visitor<'de> for ListVisitor<Text> {
    type Value = Vec<Text>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Text>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(Json(t)) = seq.next_element::<Json<Text>>()? {
            out.push(t);
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Json<StrList> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ListVisitor::<Text>(PhantomData))
            .map(|v| Json(v.into()))
    }
}

impl<'de> Deserialize<'de> for Json<U64List> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<u64>::deserialize(d).map(|v| Json(v.into()))
    }
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = BTreeMap<Text, Text>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((Json(k), Json(v))) = map.next_entry::<Json<Text>, Json<Text>>()? {
            out.insert(k, v);
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Json<Labels> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor).map(|m| Json(Arc::new(m)))
    }
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for Json<$t> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(d).map(Json)
            }
        }
    )*};
}

plain!(u64, i64, bool, Timestamp, IpAddr);
