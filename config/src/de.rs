//! Typed deserialisation from the located tree, strict like Argo and better at saying where.
//!
//! [`from_node`] drives any `serde::Deserialize` type from a [`Node`], tracking the field path.
//! A mapping key the target struct does not have is an error at that key, with a "did you
//! mean" for a near miss; a wrong type names what was expected and what was found.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use std::fmt;

use crate::location::{FieldPath, Location, Segment};
use crate::node::{Node, Value};

/// Why a tree could not be typed: what, at which path, and where in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeError {
    /// Path of the offending field from the document root.
    pub path: FieldPath,
    /// Where in the source, when known.
    pub location: Location,
    /// What is wrong, lowercase.
    pub message: String,
    /// A suggestion, such as "did you mean `dependencies`?".
    pub hint: Option<String>,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for TypeError {}

impl de::Error for TypeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TypeError {
            path: FieldPath::root(),
            location: Location::UNKNOWN,
            message: msg.to_string(),
            hint: None,
        }
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "expected {expected}, found {}",
            describe_unexpected(&unexpected)
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required field '{field}'"))
    }
}

fn describe_unexpected(unexpected: &de::Unexpected<'_>) -> String {
    match unexpected {
        de::Unexpected::Str(s) => format!("the string \"{s}\""),
        de::Unexpected::Signed(i) => format!("the integer {i}"),
        de::Unexpected::Unsigned(u) => format!("the integer {u}"),
        de::Unexpected::Float(x) => format!("the number {x}"),
        de::Unexpected::Bool(b) => format!("the boolean {b}"),
        de::Unexpected::Seq => "a list".to_string(),
        de::Unexpected::Map => "a mapping".to_string(),
        de::Unexpected::Unit | de::Unexpected::Option => "null".to_string(),
        other => other.to_string(),
    }
}

/// Deserialize `T` from a located tree; errors carry the path below `base`.
pub fn from_node<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    base: &FieldPath,
) -> Result<T, TypeError> {
    T::deserialize(NodeDeserializer {
        node,
        path: base.clone(),
    })
}

thread_local! {
    /// Unknown fields found so far, when [`from_node_all`] is collecting them.
    static UNKNOWN_FIELDS: std::cell::RefCell<Option<Vec<TypeError>>> =
        const { std::cell::RefCell::new(None) };
}

/// Like [`from_node`], but reports every unknown field (skipping them to keep going), plus
/// the first other error, in source order.
pub fn from_node_all<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    base: &FieldPath,
) -> Result<T, Vec<TypeError>> {
    let previous = UNKNOWN_FIELDS.with(|c| c.replace(Some(Vec::new())));
    let result = from_node::<T>(node, base);
    let mut errors = UNKNOWN_FIELDS
        .with(|c| c.replace(previous))
        .unwrap_or_default();
    match result {
        Ok(value) if errors.is_empty() => return Ok(value),
        Ok(_) => {}
        Err(e) => errors.push(e),
    }
    errors.sort_by_key(|e| (e.location.line, e.location.column));
    Err(errors)
}

/// A deserializer positioned at one node of the tree.
struct NodeDeserializer<'de> {
    node: &'de Node,
    path: FieldPath,
}

impl<'de> NodeDeserializer<'de> {
    /// Attach this node's path and location to an error raised below it without one.
    fn locate(&self, mut error: TypeError) -> TypeError {
        if !error.location.is_known() {
            error.location = self.node.location;
            error.path = self.path.clone();
        }
        error
    }

    fn error(&self, message: String) -> TypeError {
        TypeError {
            path: self.path.clone(),
            location: self.node.location,
            message,
            hint: None,
        }
    }

    fn wrong_type(&self, expected: &str) -> TypeError {
        let found = match &self.node.value {
            Value::String(s) => format!("the string \"{}\"", shorten(s)),
            other => other.describe().to_string(),
        };
        self.error(format!("expected {expected}, found {found}"))
    }

    fn child(&self, node: &'de Node, segment: Segment) -> NodeDeserializer<'de> {
        let mut path = self.path.clone();
        path.0.push(segment);
        NodeDeserializer { node, path }
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// The nearest known field to a misspelt one, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    unknown: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| {
            (
                k,
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()),
            )
        })
        .filter(|(k, d)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

macro_rules! located {
    ($self:ident, $body:expr) => {{
        let result = $body;
        result.map_err(|e| $self.locate(e))
    }};
}

impl<'de> Deserializer<'de> for NodeDeserializer<'de> {
    type Error = TypeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        located!(
            self,
            match &self.node.value {
                Value::Null => visitor.visit_unit(),
                Value::Bool(b) => visitor.visit_bool(*b),
                Value::Int(i) => visitor.visit_i64(*i),
                Value::UInt(u) => visitor.visit_u64(*u),
                Value::Float(x) => visitor.visit_f64(*x),
                Value::String(s) => visitor.visit_borrowed_str(s),
                Value::Seq(items) => visitor.visit_seq(SeqDeserializer::new(&self, items)),
                Value::Map(entries) => visitor.visit_map(MapDeserializer::new(&self, entries)),
            }
        )
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Bool(b) => located!(self, visitor.visit_bool(*b)),
            _ => Err(self.wrong_type("a boolean")),
        }
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Int(i) => located!(self, visitor.visit_i64(*i)),
            Value::UInt(u) => located!(self, visitor.visit_u64(*u)),
            _ => Err(self.wrong_type("an integer")),
        }
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_f64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Int(i) => located!(self, visitor.visit_f64(*i as f64)),
            Value::UInt(u) => located!(self, visitor.visit_f64(*u as f64)),
            Value::Float(x) => located!(self, visitor.visit_f64(*x)),
            _ => Err(self.wrong_type("a number")),
        }
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::String(s) => located!(self, visitor.visit_borrowed_str(s)),
            _ => Err(self.wrong_type("a string")),
        }
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Null => located!(self, visitor.visit_none()),
            _ => located!(
                self,
                visitor.visit_some(NodeDeserializer {
                    node: self.node,
                    path: self.path.clone()
                })
            ),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Null => located!(self, visitor.visit_unit()),
            _ => Err(self.wrong_type("null")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        self.deserialize_unit(visitor)
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        let inner = NodeDeserializer {
            node: self.node,
            path: self.path.clone(),
        };
        located!(self, visitor.visit_newtype_struct(inner))
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Seq(items) => {
                located!(self, visitor.visit_seq(SeqDeserializer::new(&self, items)))
            }
            // `key:` with nothing after it: an empty list, as Go's YAML-to-JSON gives null.
            Value::Null => located!(self, visitor.visit_seq(SeqDeserializer::new(&self, &[]))),
            _ => Err(self.wrong_type("a list")),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        self.deserialize_seq(visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::Map(entries) => located!(
                self,
                visitor.visit_map(MapDeserializer::new(&self, entries))
            ),
            Value::Null => located!(self, visitor.visit_map(MapDeserializer::new(&self, &[]))),
            _ => Err(self.wrong_type("a mapping")),
        }
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        let entries: &[(crate::node::Key, Node)] = match &self.node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => return Err(self.wrong_type("a mapping")),
        };
        let mut map = MapDeserializer::new(&self, entries);
        for (key, _) in entries {
            if !fields.contains(&key.name.as_str()) {
                let mut path = self.path.clone();
                path.0.push(Segment::Field(key.name.clone()));
                let error = TypeError {
                    path,
                    location: key.location,
                    message: format!("unknown field '{}'", key.name),
                    hint: did_you_mean(&key.name, fields.iter().copied())
                        .map(|k| format!("did you mean '{k}'?")),
                };
                // When collecting, note it and skip the key so the rest is still checked.
                let collected = UNKNOWN_FIELDS.with(|c| match c.borrow_mut().as_mut() {
                    Some(found) => {
                        found.push(error.clone());
                        true
                    }
                    None => false,
                });
                if !collected {
                    return Err(error);
                }
                map.known = Some(fields);
            }
        }
        located!(self, visitor.visit_map(map))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        match &self.node.value {
            Value::String(s) => {
                if !variants.contains(&s.as_str()) {
                    let hint = did_you_mean(s, variants.iter().copied())
                        .map(|k| format!("did you mean '{k}'?"));
                    let mut error =
                        self.error(format!("'{s}' is not one of {}", variants.join(", ")));
                    error.hint = hint;
                    return Err(error);
                }
                located!(self, visitor.visit_enum(s.as_str().into_deserializer()))
            }
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                let access = EnumDeserializer {
                    variant: &key.name,
                    value: self.child(value, Segment::Field(key.name.clone())),
                };
                located!(self, visitor.visit_enum(access))
            }
            _ => Err(self.wrong_type(&format!("one of {}", variants.join(", ")))),
        }
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        self.deserialize_str(visitor)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypeError> {
        visitor.visit_unit()
    }
}

struct SeqDeserializer<'de> {
    parent: FieldPath,
    items: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    remaining: usize,
}

impl<'de> SeqDeserializer<'de> {
    fn new(parent: &NodeDeserializer<'de>, items: &'de [Node]) -> Self {
        SeqDeserializer {
            parent: parent.path.clone(),
            items: items.iter().enumerate(),
            remaining: items.len(),
        }
    }
}

impl<'de> SeqAccess<'de> for SeqDeserializer<'de> {
    type Error = TypeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TypeError> {
        match self.items.next() {
            Some((index, node)) => {
                self.remaining -= 1;
                let mut path = self.parent.clone();
                path.0.push(Segment::Index(index));
                seed.deserialize(NodeDeserializer { node, path }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

struct MapDeserializer<'de> {
    parent: FieldPath,
    entries: std::slice::Iter<'de, (crate::node::Key, Node)>,
    value: Option<(&'de str, &'de Node)>,
    remaining: usize,
    /// When set, keys not in this list are skipped (already reported as unknown).
    known: Option<&'static [&'static str]>,
}

impl<'de> MapDeserializer<'de> {
    fn new(parent: &NodeDeserializer<'de>, entries: &'de [(crate::node::Key, Node)]) -> Self {
        MapDeserializer {
            parent: parent.path.clone(),
            entries: entries.iter(),
            value: None,
            remaining: entries.len(),
            known: None,
        }
    }
}

impl<'de> MapAccess<'de> for MapDeserializer<'de> {
    type Error = TypeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TypeError> {
        let mut next = self.entries.next();
        while let (Some((key, _)), Some(known)) = (next, self.known) {
            if known.contains(&key.name.as_str()) {
                break;
            }
            self.remaining -= 1;
            next = self.entries.next();
        }
        match next {
            Some((key, value)) => {
                self.remaining -= 1;
                self.value = Some((key.name.as_str(), value));
                let key_de: de::value::BorrowedStrDeserializer<'de, TypeError> =
                    de::value::BorrowedStrDeserializer::new(key.name.as_str());
                seed.deserialize(key_de).map(Some).map_err(|mut e| {
                    if !e.location.is_known() {
                        e.location = key.location;
                        e.path = self.parent.field(key.name.clone());
                    }
                    e
                })
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, TypeError> {
        let Some((name, node)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        seed.deserialize(NodeDeserializer {
            node,
            path: self.parent.field(name),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

struct EnumDeserializer<'de> {
    variant: &'de str,
    value: NodeDeserializer<'de>,
}

impl<'de> EnumAccess<'de> for EnumDeserializer<'de> {
    type Error = TypeError;
    type Variant = NodeDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), TypeError> {
        let variant_de: de::value::BorrowedStrDeserializer<'de, TypeError> =
            de::value::BorrowedStrDeserializer::new(self.variant);
        Ok((seed.deserialize(variant_de)?, self.value))
    }
}

impl<'de> VariantAccess<'de> for NodeDeserializer<'de> {
    type Error = TypeError;

    fn unit_variant(self) -> Result<(), TypeError> {
        de::Deserialize::deserialize(self)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, TypeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        self.deserialize_seq(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Limits, parse_documents};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Task {
        name: String,
        #[serde(default)]
        dependencies: Vec<String>,
        #[serde(default)]
        parallelism: Option<i64>,
        #[serde(default)]
        extra: Option<serde_json::Value>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        tasks: Vec<Task>,
    }

    fn typed(text: &str) -> Result<Doc, TypeError> {
        let docs = parse_documents(text, &Limits::default()).expect("yaml");
        let doc: Doc = from_node(&docs[0], &FieldPath::root())?;
        Ok(doc)
    }

    #[test]
    fn unknown_field_names_path_location_and_suggestion() {
        let err =
            typed("tasks:\n- name: a\n- name: b\n  dependancies: [a]\n").expect_err("unknown");
        assert_eq!(err.path.to_string(), "tasks[1].dependancies");
        assert_eq!(err.location, Location { line: 4, column: 3 });
        assert_eq!(err.message, "unknown field 'dependancies'");
        assert_eq!(err.hint.as_deref(), Some("did you mean 'dependencies'?"));
    }

    #[test]
    fn wrong_type_names_expected_and_found() {
        let err = typed("tasks:\n- name: [a]\n").expect_err("wrong type");
        assert_eq!(err.path.to_string(), "tasks[0].name");
        assert_eq!(err.location, Location { line: 2, column: 9 });
        assert_eq!(err.message, "expected a string, found a list");
        let err = typed("tasks:\n- name: a\n  parallelism: two\n").expect_err("wrong type");
        assert_eq!(err.message, "expected an integer, found the string \"two\"");
        assert_eq!(err.path.to_string(), "tasks[0].parallelism");
    }

    #[test]
    fn missing_field_points_at_the_mapping() {
        let err = typed("tasks:\n- dependencies: []\n").expect_err("missing");
        assert_eq!(err.message, "missing required field 'name'");
        assert_eq!(err.path.to_string(), "tasks[0]");
        assert_eq!(err.location.line, 2);
    }

    #[test]
    fn free_form_values_keep_everything() {
        let doc =
            typed("tasks:\n- name: a\n  extra: {x: [1, true, null], y: \"s\"}\n").expect("ok");
        assert_eq!(
            doc.tasks[0].extra,
            Some(serde_json::json!({"x": [1, true, null], "y": "s"}))
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(
            did_you_mean("dependancies", ["dependencies", "depends"]),
            Some("dependencies")
        );
        assert_eq!(
            did_you_mean("tempalte", ["template", "templateRef"]),
            Some("template")
        );
        assert_eq!(
            did_you_mean("someExtraField", ["name", "image", "command"]),
            None
        );
    }
}
