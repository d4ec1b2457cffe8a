//! Source locations and field paths, the two halves of every diagnostic.

use std::fmt;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// 1-based line; 0 means unknown.
    pub line: u32,
    /// 1-based column; 0 means unknown.
    pub column: u32,
}

impl Location {
    /// A location that is not known.
    pub const UNKNOWN: Location = Location { line: 0, column: 0 };

    /// Whether the location points somewhere real.
    pub fn is_known(self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One step of a field path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A mapping key, such as `templates`.
    Field(String),
    /// A sequence index, such as `[2]`.
    Index(usize),
}

/// A path from the document root to a node, printed as `spec.templates[1].dag.tasks[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    /// The empty path, naming the document root.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path extended by a field name.
    pub fn field(&self, name: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Field(name.into()));
        FieldPath(segments)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        FieldPath(segments)
    }

    /// Parse the printed form back (`a.b[2].c`); names containing dots are not supported.
    pub fn parse(text: &str) -> Self {
        let mut segments = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (name, mut rest) = match part.find('[') {
                Some(at) => (&part[..at], &part[at..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                segments.push(Segment::Field(name.to_string()));
            }
            while let Some(close) = rest.find(']') {
                match rest[1..close].parse() {
                    Ok(index) => segments.push(Segment::Index(index)),
                    Err(_) => segments.push(Segment::Field(rest[1..close].to_string())),
                }
                rest = &rest[close + 1..];
            }
        }
        FieldPath(segments)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => write!(f, "{name}")?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prints_and_parses_back() {
        let path = FieldPath::root()
            .field("spec")
            .field("templates")
            .index(1)
            .field("dag");
        assert_eq!(path.to_string(), "spec.templates[1].dag");
        assert_eq!(FieldPath::parse("spec.templates[1].dag"), path);
    }
}
