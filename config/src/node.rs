//! A located YAML/JSON tree: every node and every mapping key knows its line and column.
//!
//! Documents are read once into this tree (with budgets against alias bombs, deep nesting
//! and huge input), then typed by [`crate::de`], which can therefore name the exact place
//! of any error. JSON is read by the same parser: YAML 1.2 is a superset of JSON.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

use crate::location::{FieldPath, Location, Segment};

/// Limits applied while reading a source, so hostile input is refused instead of hanging.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted source, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most alias expansions (`*anchor`) accepted in one source.
    pub max_aliases: usize,
    /// Most nodes accepted in one source, aliases expanded.
    pub max_nodes: usize,
    /// Most documents accepted in one source.
    pub max_documents: usize,
    /// Most parser events replayed through aliases in one source.
    pub max_replayed_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 32 * 1024 * 1024,
            max_depth: 128,
            max_aliases: 10_000,
            max_nodes: 2_000_000,
            max_documents: 1_000,
            max_replayed_events: 100_000,
        }
    }
}

/// One node of the tree with the place it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts in the source.
    pub location: Location,
    /// The node's content.
    pub value: Value,
}

/// A mapping key with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Where the key starts in the source.
    pub location: Location,
    /// The key as text (non-string keys are printed).
    pub name: String,
}

/// The content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`.
    UInt(u64),
    /// A floating point number.
    Float(f64),
    /// A string scalar.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Key, Node)>),
}

impl Value {
    /// How the kind of this value reads in an error message.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The value of a key in this mapping node.
    pub fn get(&self, name: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// This node as a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The node a path leads to, or the deepest node on the way if the path leaves the tree.
    pub fn locate(&self, path: &FieldPath) -> &Node {
        let mut node = self;
        for segment in &path.0 {
            let next = match (segment, &node.value) {
                (Segment::Field(name), _) => node.get(name),
                (Segment::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// Where a path's last mapping key stands (the key, not its value), else where its node starts.
    pub fn key_location(&self, path: &FieldPath) -> Location {
        let Some((Segment::Field(name), parent)) = path.0.split_last() else {
            return self.locate(path).location;
        };
        let parent = self.locate(&FieldPath(parent.to_vec()));
        match &parent.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| &k.name == name)
                .map(|(k, _)| k.location)
                .unwrap_or(parent.location),
            _ => parent.location,
        }
    }

    /// A generic JSON view of this tree (used for round-trip checks and free-form fields).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Why a source could not be read as YAML or JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where the problem is, when the parser knows.
    pub location: Location,
    /// What is wrong, lowercase.
    pub message: String,
}

/// Read every document of a YAML (or JSON) source into located trees.
///
/// Empty documents (a lone `---`, comments only) are skipped.
pub fn parse_documents(text: &str, limits: &Limits) -> Result<Vec<Node>, SyntaxError> {
    if text.len() > limits.max_bytes {
        return Err(SyntaxError {
            location: Location::UNKNOWN,
            message: format!(
                "document is {} bytes, larger than the limit of {} bytes",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    // The budget types are non-exhaustive: start from their defaults and tighten.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_depth = limits.max_depth;
    budget.max_aliases = limits.max_aliases;
    budget.max_nodes = limits.max_nodes;
    budget.max_documents = limits.max_documents;
    budget.max_total_scalar_bytes = limits.max_bytes;
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    // Alias replay is what an alias bomb multiplies; real workflows replay little.
    alias_limits.max_total_replayed_events = limits.max_replayed_events;
    alias_limits.max_replay_stack_depth = limits.max_depth;
    alias_limits.max_alias_expansions_per_anchor = limits.max_aliases;
    let mut options = serde_saphyr::options::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::Error;
    options.alias_limits = alias_limits;
    options.with_snippet = false;
    // YAML 1.2 booleans only: `y`, `yes`, `on` stay strings (a key `y:` must not become `true`).
    options.strict_booleans = true;
    // Kubernetes YAML is read by YAML 1.1 rules for numbers: `mode: 0755` is octal 493.
    options.legacy_octal_numbers = true;
    let docs: Vec<Option<Node>> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
            let location = e
                .location()
                .map(|l| Location {
                    line: l.line() as u32,
                    column: l.column() as u32,
                })
                .unwrap_or_default();
            SyntaxError {
                location,
                message: clean_parser_message(&e.to_string()),
            }
        })?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|n| n.value != Value::Null)
        .collect())
}

/// The parser's message in our style: no location suffix (we report it separately), no
/// advice about the parser's own options, lowercase, no trailing period.
fn clean_parser_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let text = first.split(" at line ").next().unwrap_or(first);
    let text = text.strip_prefix("error: ").unwrap_or(text);
    if let Some(rest) = text.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key '{key}'");
    }
    if text.starts_with("alias replay limit exceeded") {
        return "document is too large to read safely (aliases expand too far)".to_string();
    }
    if text.starts_with("recursion limit exceeded") || text.starts_with("budget breached: Depth") {
        return "document is nested too deeply to read safely".to_string();
    }
    if let Some(rest) = text.strip_prefix("budget breached: ") {
        let what = rest
            .split_whitespace()
            .next()
            .unwrap_or("size")
            .to_lowercase();
        return format!(
            "document is too large to read safely ({what} limit exceeded; aliases expanding too far, or too many nodes)"
        );
    }
    crate::diag::house_style(text, "malformed document")
}

fn location_of(span: &serde_saphyr::Location) -> Location {
    Location {
        line: span.line() as u32,
        column: span.column() as u32,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            location: location_of(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map(Value::Int).unwrap_or(Value::UInt(v)))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::UInt)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        String::from_utf8(v.to_vec())
            .map(Value::String)
            .map_err(|_| E::custom("binary value is not utf-8"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = map.next_key::<Spanned<KeyText>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((
                Key {
                    location: location_of(&key.referenced),
                    name: key.value.0,
                },
                value,
            ));
        }
        Ok(Value::Map(entries))
    }
}

/// A mapping key read as text, whatever its scalar type.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(KeyText(s)),
            Value::Bool(b) => Ok(KeyText(b.to_string())),
            Value::Int(i) => Ok(KeyText(i.to_string())),
            Value::UInt(u) => Ok(KeyText(u.to_string())),
            Value::Float(f) => Ok(KeyText(f.to_string())),
            Value::Null => Ok(KeyText("null".to_string())),
            other => Err(de::Error::custom(format!(
                "mapping keys must be scalars, found {}",
                other.describe()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Node>, SyntaxError> {
        parse_documents(text, &Limits::default())
    }

    #[test]
    fn nodes_and_keys_carry_locations() {
        let docs = parse("a: 1\nb:\n  - x\n  - {c: true}\n").expect("parses");
        let root = &docs[0];
        let b = root.get("b").expect("b");
        let Value::Seq(items) = &b.value else {
            panic!("b is a list")
        };
        assert_eq!(items[1].location, Location { line: 4, column: 5 });
        let path = FieldPath::parse("b[1].c");
        assert_eq!(root.locate(&path).value, Value::Bool(true));
        assert_eq!(root.key_location(&path), Location { line: 4, column: 6 });
        assert_eq!(
            root.key_location(&FieldPath::parse("b")),
            Location { line: 2, column: 1 }
        );
    }

    #[test]
    fn several_documents_and_json() {
        let docs =
            parse("a: 1\n---\n# only a comment\n---\n{\"b\": [1, 2.5, null]}\n").expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].to_json(), serde_json::json!({"b": [1, 2.5, null]}));
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let docs = parse(
            "y: yes
on: off
t: true
",
        )
        .expect("parses");
        assert_eq!(
            docs[0].to_json(),
            serde_json::json!({"y": "yes", "on": "off", "t": true})
        );
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let docs = parse("a: \"1\"\nb: 1\n").expect("parses");
        assert_eq!(docs[0].get("a").and_then(Node::as_str), Some("1"));
        assert_eq!(docs[0].get("b").map(|n| &n.value), Some(&Value::Int(1)));
    }

    #[test]
    fn duplicate_keys_are_refused_with_a_location() {
        let err = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(err.location.line, 3, "{err:?}");
        assert_eq!(err.message, "duplicate key 'a'");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                [prev.as_str(); 10].join(", ")
            ));
        }
        let err = parse(&text).expect_err("alias bomb");
        assert!(
            err.message
                .starts_with("document is too large to read safely"),
            "{}",
            err.message
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse(&text).expect_err("too deep");
        assert_eq!(err.message, "document is nested too deeply to read safely");
    }

    #[test]
    fn huge_documents_are_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let err = parse_documents("a: 1234567890\n", &limits).expect_err("too big");
        assert!(
            err.message.contains("larger than the limit"),
            "{}",
            err.message
        );
    }

    #[test]
    fn malformed_yaml_has_a_location() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("malformed");
        assert!(err.location.is_known(), "{err:?}");
    }
}
