//! The store's binary encoding: the one place bincode is used.
//!
//! A record is one format version byte followed by the value in bincode 2's standard
//! configuration (through serde). A record with another version byte is refused with
//! [`Error::UnsupportedFormat`]; a later format adds a migration from the old version here.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

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
    let Some((&version, body)) = bytes.split_first() else {
        return Err(Error::Decode {
            what,
            message: "empty record".into(),
        });
    };
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            what,
            found: version,
            supported: FORMAT_VERSION,
        });
    }
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
