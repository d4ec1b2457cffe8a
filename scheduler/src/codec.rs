//! The store's binary encoding: the one place bincode is used.
//!
//! A record is one format version byte followed by the value in bincode 2's standard
//! configuration (through serde). A record of a newer version is refused with
//! [`Error::UnsupportedFormat`]; one of the previous version is read through its old shape
//! ([`decode_migrating`]; the shapes of earlier versions live in this module). A store of an
//! older version is rewritten in this one when it is opened, after a backup (see
//! [`crate::migrate`]); a bump of [`FORMAT_VERSION`] adds the old shapes here and their
//! rewrite to `migrate`'s table.
//!
//! Versions: 1, the first; 2, nodes gained `memoization`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 2;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encode `value`, prefixed with [`FORMAT_VERSION`]; `what` names it in errors.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut bytes = vec![FORMAT_VERSION];
    bincode::serde::encode_into_std_write(value, &mut bytes, config()).map_err(|e| {
        Error::Encode {
            what,
            message: e.to_string(),
        }
    })?;
    Ok(bytes)
}

/// Decode a record written by [`encode`]; the whole record must be used.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    let (version, body) = split(what, bytes)?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            what,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    decode_body(what, body)
}

/// Decode a record of this format, or of the previous one through its shape `Old`.
pub fn decode_migrating<T, Old>(what: &'static str, bytes: &[u8]) -> Result<T>
where
    T: DeserializeOwned,
    Old: DeserializeOwned + Into<T>,
{
    let (version, body) = split(what, bytes)?;
    match version {
        FORMAT_VERSION => decode_body(what, body),
        v if v == FORMAT_VERSION - 1 => decode_body::<Old>(what, body).map(Into::into),
        found => Err(Error::UnsupportedFormat {
            what,
            found,
            supported: FORMAT_VERSION,
        }),
    }
}

fn split<'b>(what: &'static str, bytes: &'b [u8]) -> Result<(u8, &'b [u8])> {
    match bytes.split_first() {
        Some((&version, body)) => Ok((version, body)),
        None => Err(Error::Decode {
            what,
            message: "empty record".into(),
        }),
    }
}

fn decode_body<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T> {
    let (value, used) =
        bincode::serde::decode_from_slice(body, config()).map_err(|e| Error::Decode {
            what,
            message: e.to_string(),
        })?;
    if used != body.len() {
        return Err(Error::Decode {
            what,
            message: format!("{} trailing bytes", body.len() - used),
        });
    }
    Ok(value)
}

/// Shapes of format version 1 that version 2 changed.
pub mod v1 {
    use serde::Deserialize;

    use crate::machine::node::{Node, NodeType, Outputs, Phase};

    /// A node before `memoization`.
    #[derive(Deserialize)]
    pub struct NodeV1 {
        id: String,
        name: String,
        display_name: String,
        node_type: NodeType,
        template_name: Option<String>,
        phase: Phase,
        boundary_id: Option<String>,
        children: Vec<String>,
        inputs: Vec<(String, String)>,
        outputs: Outputs,
        message: String,
        started_at: Option<String>,
        finished_at: Option<String>,
        attempt: u32,
        resume_at: Option<String>,
        launched: bool,
        exit_hook: Option<String>,
    }

    impl From<NodeV1> for Node {
        fn from(n: NodeV1) -> Node {
            Node {
                id: n.id,
                name: n.name,
                display_name: n.display_name,
                node_type: n.node_type,
                template_name: n.template_name,
                phase: n.phase,
                boundary_id: n.boundary_id,
                children: n.children,
                inputs: n.inputs,
                outputs: n.outputs,
                message: n.message,
                started_at: n.started_at,
                finished_at: n.finished_at,
                attempt: n.attempt,
                resume_at: n.resume_at,
                launched: n.launched,
                exit_hook: n.exit_hook,
                memoization: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_value() {
        let value = (
            String::from("wf-abcde"),
            Some(3u32),
            vec![("a".to_string(), "b".to_string())],
        );
        let bytes = encode("test value", &value).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: (String, Option<u32>, Vec<(String, String)>) =
            decode("test value", &bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_version_1_node_is_read_as_a_node_without_memoization() {
        use crate::machine::node::{Node, NodeType, Phase};
        let node = Node {
            id: "wf-1".into(),
            name: "wf.a".into(),
            display_name: "a".into(),
            node_type: NodeType::Pod,
            template_name: Some("t".into()),
            phase: Phase::Succeeded,
            boundary_id: Some("wf".into()),
            children: vec!["wf-2".into()],
            inputs: vec![("p".into(), "v".into())],
            outputs: Default::default(),
            message: "m".into(),
            started_at: Some("2026-11-28T00:00:00Z".into()),
            finished_at: None,
            attempt: 2,
            resume_at: None,
            launched: true,
            exit_hook: None,
            memoization: None,
        };
        // Version 1 had every field but the last (`None` encodes as one byte).
        let mut v1 = encode("node", &node).unwrap();
        v1.pop();
        v1[0] = 1;
        let back: Node = decode_migrating::<_, v1::NodeV1>("node", &v1).unwrap();
        assert_eq!(back, node);
        // `decode` alone takes only this version.
        assert!(matches!(
            decode::<Node>("node", &v1),
            Err(Error::UnsupportedFormat { found: 1, .. })
        ));
    }

    #[test]
    fn another_version_is_refused() {
        let mut bytes = encode("test value", &7u32).unwrap();
        bytes[0] = FORMAT_VERSION + 1;
        let err = decode::<u32>("test value", &bytes).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedFormat { found, .. } if found == FORMAT_VERSION + 1)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "cannot decode test value: stored format version {}, this cox reads version {FORMAT_VERSION}",
                FORMAT_VERSION + 1
            )
        );
    }

    #[test]
    fn empty_and_truncated_records_are_errors() {
        assert!(matches!(decode::<u32>("x", &[]), Err(Error::Decode { .. })));
        let bytes = encode("x", &String::from("hello")).unwrap();
        assert!(matches!(
            decode::<String>("x", &bytes[..bytes.len() - 1]),
            Err(Error::Decode { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<String>("x", &long),
            Err(Error::Decode { .. })
        ));
    }
}
