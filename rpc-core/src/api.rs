//! Endpoint descriptions, and the API compatibility check built on them.
//!
//! `#[endpoint]` describes each endpoint it expands: its namespace and
//! version, and for each method the version it was added at, its arguments
//! (name, type, whether optional, the version an optional one was added at),
//! its result and error types. [`Stub::describe`](crate::Stub::describe)
//! returns it; [`Endpoint::describe`](crate::Endpoint::describe) too, for a
//! server's endpoints.
//!
//! A description is plain data, serializable as JSON. Committed next to the
//! API as a snapshot, it lets a test catch, before release, a change that
//! breaks callers during a rolling upgrade: see [`assert_compatible`] and
//! [`compare`].
//!
//! Types are named as Rust resolves them, without module paths
//! (`Option<String>`, `HashMap<String, u64>`): aliases are seen through, and
//! moving a type to another module is not a change.

mod compat;
mod shape;

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use compat::{
    Change, Report, Severity, SnapshotError, UPDATE_VARIABLE, assert_compatible, check_snapshot, compare, read_snapshot,
};
pub use shape::{FieldShape, TypeShape, VariantShape};

use crate::Version;

/// An endpoint's API: what a client may call, and with what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EndpointDescription {
    /// The endpoint's name (the trait's, or the impl's self type's).
    pub name: String,
    /// The namespace requests name (`None`: the default namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The version the endpoint implements (`None`: unversioned, served as `1.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The remote methods, in declaration order.
    pub methods: Vec<MethodDescription>,
    /// The shapes of the named types the methods send and return (structs'
    /// fields, enums' variants), by their serde name, as their
    /// `Deserialize` reads them; a type that cannot be traced is missing,
    /// and compared by name alone (see [`TypeShape`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, TypeShape>,
}

/// One remote method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MethodDescription {
    /// The method's name on the wire.
    pub name: String,
    /// The version the method was added at: what its requests carry unless
    /// an optional argument added later raises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Version>,
    /// The arguments after the context, in order.
    pub arguments: Vec<ArgumentDescription>,
    /// The result type (`T` of a `Result<T, E>`).
    pub returns: String,
    /// The error type of a method returning `Result<T, E>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One argument of a remote method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ArgumentDescription {
    /// The argument's name on the wire.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it is an `Option`, which callers may leave out.
    #[serde(default)]
    pub optional: bool,
    /// The version it was added at (`#[rpc(since = "..")]`), when later than its method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Version>,
}

impl EndpointDescription {
    /// A description with no methods yet.
    pub fn new(name: impl Into<String>, namespace: Option<&str>, version: Option<Version>) -> EndpointDescription {
        EndpointDescription {
            name: name.into(),
            namespace: namespace.map(str::to_owned),
            version,
            methods: Vec::new(),
            types: BTreeMap::new(),
        }
    }

    /// Adds the shapes of the named types `T` holds (a name already there
    /// keeps its shape). Returns whether `T` could be traced.
    pub fn trace<T: DeserializeOwned>(&mut self) -> bool {
        shape::trace::<T>(&mut self.types)
    }

    /// Adds a method.
    pub fn method(mut self, method: MethodDescription) -> EndpointDescription {
        self.methods.push(method);
        self
    }

    /// The method called `name`.
    pub fn find(&self, name: &str) -> Option<&MethodDescription> {
        self.methods.iter().find(|method| method.name == name)
    }

    /// The version requests are checked against: `1.0` when unversioned.
    pub fn served_version(&self) -> Version {
        self.version.unwrap_or(Version::DEFAULT)
    }

    /// The description as pretty JSON, as snapshots store it.
    pub fn to_json(&self) -> String {
        // Plain strings and versions: serializing cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl MethodDescription {
    /// A method added at `since`, returning `returns` (and failing with
    /// `error`), with no arguments yet.
    pub fn new(
        name: impl Into<String>,
        since: Option<Version>,
        returns: impl Into<String>,
        error: Option<String>,
    ) -> MethodDescription {
        MethodDescription {
            name: name.into(),
            since,
            arguments: Vec::new(),
            returns: returns.into(),
            error,
        }
    }

    /// Adds an argument.
    pub fn argument(mut self, argument: ArgumentDescription) -> MethodDescription {
        self.arguments.push(argument);
        self
    }

    /// The argument called `name`.
    pub fn find(&self, name: &str) -> Option<&ArgumentDescription> {
        self.arguments.iter().find(|argument| argument.name == name)
    }
}

impl ArgumentDescription {
    /// An argument of type `ty`.
    pub fn new(
        name: impl Into<String>,
        ty: impl Into<String>,
        optional: bool,
        since: Option<Version>,
    ) -> ArgumentDescription {
        ArgumentDescription {
            name: name.into(),
            ty: ty.into(),
            optional,
            since,
        }
    }
}

/// The name of `T` as descriptions write it: Rust's type name without module
/// paths (`Option<String>` for `core::option::Option<alloc::string::String>`).
pub fn type_name<T: ?Sized>() -> String {
    strip_paths(std::any::type_name::<T>())
}

/// Keeps the last segment of every path in a type name.
fn strip_paths(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut segment_start = 0;
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b':' && bytes.get(i + 1) == Some(&b':') {
            // Drop what was written of this path so far.
            out.truncate(segment_start);
            i += 2;
            continue;
        }
        if !(byte.is_ascii_alphanumeric() || byte == b'_') {
            out.push(char::from(byte));
            segment_start = out.len();
            i += 1;
            continue;
        }
        // Copy one identifier character (type names are ASCII paths, but
        // copy anything else through whole).
        let ch = name[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(type_name::<Option<String>>(), "Option<String>");
        assert_eq!(
            type_name::<std::collections::HashMap<String, Vec<u8>>>(),
            "HashMap<String, Vec<u8>>"
        );
        assert_eq!(type_name::<(u8, [i64; 3], &str)>(), "(u8, [i64; 3], &str)");
        assert_eq!(type_name::<Result<(), crate::Error>>(), "Result<(), Error>");
        assert_eq!(strip_paths("a::b::C<d::E, F>"), "C<E, F>");
    }

    #[test]
    fn descriptions_round_trip_as_json() {
        let description = EndpointDescription::new("Compute", Some("compute"), Some(Version::new(1, 2))).method(
            MethodDescription::new("boot", Some(Version::new(1, 0)), "u64", Some("BootError".to_owned()))
                .argument(ArgumentDescription::new("name", "String", false, None))
                .argument(ArgumentDescription::new(
                    "flavor",
                    "Option<String>",
                    true,
                    Some(Version::new(1, 2)),
                )),
        );
        let json = description.to_json();
        assert!(json.contains("\"type\": \"Option<String>\""), "{json}");
        let back: EndpointDescription = serde_json::from_str(&json).unwrap();
        assert_eq!(back, description);
    }
}
