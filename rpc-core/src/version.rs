//! RPC API versions and oslo.messaging's compatibility rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version of an RPC API: `MAJOR.MINOR` or `MAJOR.MINOR.REVISION`.
///
/// Versions follow oslo.messaging's rule (see [`Version::supports`]): a server
/// implementing `2.3` serves requests for `2.0` to `2.3`, never `1.x` or `3.x`.
/// A missing revision counts as `0`, so `2.3` and `2.3.0` are compatible both
/// ways, but they keep their written form on the wire.
///
/// ```
/// use rpc_core::Version;
///
/// let served: Version = "2.3".parse()?;
/// assert!(served.supports(&Version::new(2, 1)));
/// assert!(!served.supports(&Version::new(2, 4)));
/// assert!(!served.supports(&Version::new(1, 0)));
/// # Ok::<(), rpc_core::VersionError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    major: u32,
    minor: u32,
    revision: Option<u32>,
}

impl Version {
    /// The version a request or endpoint has when it names none: `1.0`.
    pub const DEFAULT: Version = Version::new(1, 0);

    /// Creates `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Version {
        Version {
            major,
            minor,
            revision: None,
        }
    }

    /// Creates `major.minor.revision`.
    pub const fn with_revision(major: u32, minor: u32, revision: u32) -> Version {
        Version {
            major,
            minor,
            revision: Some(revision),
        }
    }

    /// Parses `MAJOR.MINOR` or `MAJOR.MINOR.REVISION`, each part a decimal integer.
    pub fn parse(text: &str) -> Result<Version, VersionError> {
        let error = || VersionError { text: text.to_owned() };
        let mut parts = text.split('.');
        let mut number = |required: bool| -> Result<Option<u32>, VersionError> {
            match parts.next() {
                None if !required => Ok(None),
                Some(part) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                    part.parse().map(Some).map_err(|_| error())
                }
                _ => Err(error()),
            }
        };
        let major = number(true)?.ok_or_else(error)?;
        let minor = number(true)?.ok_or_else(error)?;
        let revision = number(false)?;
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(Version { major, minor, revision })
    }

    /// The major part: different majors are never compatible.
    pub const fn major(&self) -> u32 {
        self.major
    }

    /// The minor part.
    pub const fn minor(&self) -> u32 {
        self.minor
    }

    /// The revision part; `0` when the version was written without one.
    pub const fn revision(&self) -> u32 {
        match self.revision {
            Some(revision) => revision,
            None => 0,
        }
    }

    /// `(major, minor, revision)`, for ordering versions: `2.3` and `2.3.0`
    /// have the same precedence.
    pub const fn precedence(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.revision())
    }

    /// Whether something implementing `self` can serve a request for `requested`.
    ///
    /// This is oslo.messaging's `version_is_compatible(self, requested)`: the
    /// majors must be equal, the requested minor must not be greater, and with
    /// equal minors the requested revision must not be greater.
    pub const fn supports(&self, requested: &Version) -> bool {
        if self.major != requested.major || requested.minor > self.minor {
            return false;
        }
        !(requested.minor == self.minor && requested.revision() > self.revision())
    }
}

impl Default for Version {
    fn default() -> Version {
        Version::DEFAULT
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.revision {
            Some(revision) => write!(f, "{}.{}.{}", self.major, self.minor, revision),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({self})")
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Version, VersionError> {
        Version::parse(text)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Version, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a version string such as \"2.1\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Version, E> {
                Version::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A string that is not a version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid version `{text}`: expected `MAJOR.MINOR` or `MAJOR.MINOR.REVISION`")]
pub struct VersionError {
    text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn oslo_truth_table() {
        // oslo-messaging.md §4, observed against oslo.messaging 18.3.1.
        let table = [
            ("1.5", "1.2", true),
            ("1.2", "1.5", false),
            ("2.0", "1.0", false),
            ("1.0", "2.0", false),
            ("2.3", "2.3.1", false),
            ("2.3.1", "2.3", true),
            ("2.4", "2.3.9", true),
            ("2.3", "2.3", true),
            ("2.3", "2.3.0", true),
            ("2.3.0", "2.3", true),
        ];
        for (implemented, requested, expected) in table {
            assert_eq!(
                v(implemented).supports(&v(requested)),
                expected,
                "version_is_compatible({implemented}, {requested})"
            );
        }
    }

    #[test]
    fn parse_keeps_written_form() {
        assert_eq!(v("2.0").to_string(), "2.0");
        assert_eq!(v("2.0.0").to_string(), "2.0.0");
        assert_eq!(v("10.21.3").revision(), 3);
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in ["", "2", "2.", ".1", "a.b", "1.2.3.4", "1.-2", "+1.2", " 1.2", "1.2 "] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn serde_as_string() {
        let json = serde_json::to_string(&v("2.1")).unwrap();
        assert_eq!(json, "\"2.1\"");
        assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), v("2.1"));
        assert!(serde_json::from_str::<Version>("\"x\"").is_err());
    }
}
