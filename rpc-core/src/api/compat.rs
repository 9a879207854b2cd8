//! The API compatibility check: what a change to an endpoint does to the
//! callers and servers of its previous version during a rolling upgrade.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{EndpointDescription, FieldShape, MethodDescription, TypeShape};
use crate::Version;

/// How a change affects a rolling upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Callers or servers of the previous version break: a method or
    /// argument removed or renamed, a type changed, a required argument
    /// added, a `since` moved, the namespace changed, the version lowered.
    Breaking,
    /// The change would be compatible if versioned: something added
    /// without a `since` newer than the previous version, or an API changed
    /// without raising its version. Old servers refuse what new clients
    /// send, and version caps cannot protect them.
    Unversioned,
    /// A compatible change: a method or an optional argument added in a newer
    /// minor version.
    Compatible,
    /// A breaking change made in a new major version, where callers of the
    /// previous major version are expected to move.
    Major,
}

impl Severity {
    /// Whether a change of this severity fails the check.
    pub fn fails(self) -> bool {
        matches!(self, Severity::Breaking | Severity::Unversioned)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Breaking => "breaking",
            Severity::Unversioned => "needs a version",
            Severity::Compatible => "compatible",
            Severity::Major => "major version",
        })
    }
}

/// One difference between two versions of an endpoint's API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// How it affects a rolling upgrade.
    pub severity: Severity,
    /// The method it concerns, if any.
    pub method: Option<String>,
    /// The argument it concerns, if any.
    pub argument: Option<String>,
    /// The named type it concerns, if any (`Item`, `Kind::Crate`), with the
    /// field when it concerns one (`Item.sku`).
    pub ty: Option<String>,
    /// What changed, and what it does to callers.
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        match (&self.method, &self.argument, &self.ty) {
            (Some(method), Some(argument), _) => write!(f, "`{method}({argument})`: ")?,
            (Some(method), None, _) => write!(f, "`{method}`: ")?,
            (None, _, Some(ty)) => write!(f, "type `{ty}`: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

/// The result of comparing two versions of an endpoint's API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The endpoint's name.
    pub endpoint: String,
    /// The previous version.
    pub old_version: Version,
    /// The new version.
    pub new_version: Version,
    /// Every difference found, in the order of the API.
    pub changes: Vec<Change>,
}

impl Report {
    /// Whether every change is compatible (or allowed by a new major version).
    pub fn is_compatible(&self) -> bool {
        !self.changes.iter().any(|change| change.severity.fails())
    }

    /// The changes that fail the check.
    pub fn failures(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|change| change.severity.fails())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures = self.failures().count();
        write!(
            f,
            "API `{}` {} -> {}: {}",
            self.endpoint,
            self.old_version,
            self.new_version,
            match (self.changes.len(), failures) {
                (0, _) => "no change".to_owned(),
                (_, 0) => "compatible".to_owned(),
                (_, 1) => "1 change breaks callers".to_owned(),
                (_, n) => format!("{n} changes break callers"),
            }
        )?;
        for change in &self.changes {
            write!(f, "\n  - {change}")?;
        }
        Ok(())
    }
}

/// Compares the API `new` with its previous version `old`.
///
/// The rules are those of a rolling upgrade with oslo.messaging's version
/// semantics, where new clients must keep working against old servers (as
/// far as their version caps allow) and old clients against new servers:
/// within a major version, methods and optional arguments may be added,
/// each with a `since` newer than the previous version; nothing may be
/// removed, renamed or retyped, and no `since` may move. A new major version
/// allows anything (its changes are listed as [`Severity::Major`]).
pub fn compare(old: &EndpointDescription, new: &EndpointDescription) -> Report {
    let (old_version, new_version) = (old.served_version(), new.served_version());
    let mut changes = Changes::default();
    if old.namespace != new.namespace {
        changes.add(
            Severity::Breaking,
            None,
            None,
            format!(
                "the namespace changed from {} to {}: no server answers callers of the other",
                namespace(old.namespace.as_deref()),
                namespace(new.namespace.as_deref())
            ),
        );
    }
    if new_version.major() < old_version.major()
        || (new_version.major() == old_version.major() && new_version.precedence() < old_version.precedence())
    {
        changes.add(
            Severity::Breaking,
            None,
            None,
            format!(
                "the version went down from {old_version} to {new_version}: servers refuse what newer callers send"
            ),
        );
    }
    for old_method in &old.methods {
        let name = old_method.name.as_str();
        let Some(new_method) = new.find(name) else {
            changes.add(
                Severity::Breaking,
                Some(name),
                None,
                format!("removed or renamed: its callers get `NoSuchMethod` from servers of {new_version}"),
            );
            continue;
        };
        compare_method(old_method, new_method, old_version, &mut changes);
    }
    for new_method in &new.methods {
        if old.find(&new_method.name).is_some() {
            continue;
        }
        let since = new_method.since.unwrap_or(Version::DEFAULT);
        if since.precedence() > old_version.precedence() {
            changes.add(
                Severity::Compatible,
                Some(&new_method.name),
                None,
                format!("added in {since}"),
            );
        } else {
            changes.add(
                Severity::Unversioned,
                Some(&new_method.name),
                None,
                format!(
                    "added without a version: its requests say {since}, which servers of {old_version} accept and then \
                     answer `NoSuchMethod`, and version caps cannot refuse it; mark it `#[rpc(since = \"{}\")]`",
                    next_minor(old_version, new_version)
                ),
            );
        }
    }
    // The types both versions send, by their serde name.
    for (name, old_shape) in &old.types {
        if let Some(new_shape) = new.types.get(name) {
            compare_shape(name, old_shape, new_shape, &mut changes);
        }
    }
    let grew = changes.0.iter().any(|change| change.severity == Severity::Compatible);
    if grew && new_version.precedence() <= old_version.precedence() {
        changes.add(
            Severity::Unversioned,
            None,
            None,
            format!(
                "the API grew but its version stayed {old_version}: raise it to {}",
                next_minor(old_version, old_version)
            ),
        );
    }
    let mut changes = changes.0;
    if new_version.major() > old_version.major() {
        for change in &mut changes {
            if change.severity.fails() {
                change.severity = Severity::Major;
            }
        }
    }
    Report {
        endpoint: new.name.clone(),
        old_version,
        new_version,
        changes,
    }
}

fn compare_method(old: &MethodDescription, new: &MethodDescription, old_version: Version, changes: &mut Changes) {
    let name = Some(new.name.as_str());
    if !same_version(old.since, new.since) {
        changes.add(
            Severity::Breaking,
            name,
            None,
            format!(
                "`since` moved from {} to {}: clients of one send a version that servers of the other refuse or answer `NoSuchMethod`",
                version(old.since),
                version(new.since)
            ),
        );
    }
    if old.returns != new.returns {
        changes.add(
            Severity::Breaking,
            name,
            None,
            format!(
                "the result type changed from `{}` to `{}`: callers cannot decode it",
                old.returns, new.returns
            ),
        );
    }
    if old.error != new.error {
        changes.add(
            Severity::Breaking,
            name,
            None,
            format!(
                "the error type changed from {} to {}: callers cannot decode it",
                error(old.error.as_deref()),
                error(new.error.as_deref())
            ),
        );
    }
    for old_argument in &old.arguments {
        let argument = Some(old_argument.name.as_str());
        let Some(new_argument) = new.find(&old_argument.name) else {
            changes.add(
                Severity::Breaking,
                name,
                argument,
                "removed or renamed: servers refuse requests that send it".to_owned(),
            );
            continue;
        };
        if old_argument.ty != new_argument.ty {
            changes.add(
                Severity::Breaking,
                name,
                argument,
                format!(
                    "the type changed from `{}` to `{}`: one side cannot decode what the other sends",
                    old_argument.ty, new_argument.ty
                ),
            );
        }
        if !same_version(old_argument.since, new_argument.since) {
            changes.add(
                Severity::Breaking,
                name,
                argument,
                format!(
                    "`since` moved from {} to {}: clients of one raise the version differently",
                    version(old_argument.since),
                    version(new_argument.since)
                ),
            );
        }
    }
    for new_argument in &new.arguments {
        if old.find(&new_argument.name).is_some() {
            continue;
        }
        let argument = Some(new_argument.name.as_str());
        if !new_argument.optional {
            changes.add(
                Severity::Breaking,
                name,
                argument,
                format!(
                    "a required argument was added: callers of {old_version} do not send it; make it an `Option` added with `#[rpc(since = \"..\")]`"
                ),
            );
            continue;
        }
        match new_argument.since {
            Some(since) if since.precedence() > old_version.precedence() => {
                changes.add(
                    Severity::Compatible,
                    name,
                    argument,
                    format!("optional argument added in {since}"),
                );
            }
            _ => changes.add(
                Severity::Unversioned,
                name,
                argument,
                format!(
                    "optional argument added without a version: servers of {old_version} refuse requests that send it; \
                     mark it `#[rpc(since = \"..\")]` with a version above {old_version}"
                ),
            ),
        }
    }
}

/// Compares two versions of the named type (or enum variant) `name`.
fn compare_shape(name: &str, old: &TypeShape, new: &TypeShape, changes: &mut Changes) {
    match (old, new) {
        (TypeShape::Struct { fields: old }, TypeShape::Struct { fields: new }) => {
            compare_fields(name, old, new, changes);
        }
        (TypeShape::Tuple { items: old }, TypeShape::Tuple { items: new }) if old != new => changes.add_type(
            Severity::Breaking,
            name.to_owned(),
            format!(
                "its items changed from ({}) to ({}): one side cannot decode what the other sends",
                old.join(", "),
                new.join(", ")
            ),
        ),
        (TypeShape::Enum { variants: old }, TypeShape::Enum { variants: new }) => {
            for old_variant in old {
                let variant = format!("{name}::{}", old_variant.name);
                match new.iter().find(|new_variant| new_variant.name == old_variant.name) {
                    Some(new_variant) => compare_shape(&variant, &old_variant.shape, &new_variant.shape, changes),
                    None => changes.add_type(
                        Severity::Breaking,
                        variant,
                        "removed or renamed: peers of the previous version send it, and this one cannot decode it"
                            .to_owned(),
                    ),
                }
            }
            for new_variant in new {
                if !old.iter().any(|old_variant| old_variant.name == new_variant.name) {
                    changes.add_type(
                        Severity::Compatible,
                        format!("{name}::{}", new_variant.name),
                        "added: peers of the previous version cannot decode it; send it only to those of this one"
                            .to_owned(),
                    );
                }
            }
        }
        (TypeShape::Unit, TypeShape::Unit)
        | (TypeShape::Tuple { .. }, TypeShape::Tuple { .. })
        | (TypeShape::Ambiguous, _)
        | (_, TypeShape::Ambiguous) => {}
        (old, new) => changes.add_type(
            Severity::Breaking,
            name.to_owned(),
            format!(
                "changed from {} to {}: one side cannot decode what the other sends",
                kind(old),
                kind(new)
            ),
        ),
    }
}

/// A struct's (or struct variant's) fields: peers of either version must
/// decode what the other sends, so a field may come or go only where its
/// absence is accepted (`Option`, `#[serde(default)]`).
fn compare_fields(name: &str, old: &[FieldShape], new: &[FieldShape], changes: &mut Changes) {
    for old_field in old {
        let ty = format!("{name}.{}", old_field.name);
        let Some(new_field) = field(new, &old_field.name) else {
            if old_field.optional {
                changes.add_type(
                    Severity::Compatible,
                    ty,
                    "an optional field removed: peers of the previous version read it as absent".to_owned(),
                );
            } else {
                changes.add_type(
                    Severity::Breaking,
                    ty,
                    "a required field removed or renamed: peers of the previous version cannot decode what this one \
                     sends"
                        .to_owned(),
                );
            }
            continue;
        };
        if old_field.ty != new_field.ty {
            changes.add_type(
                Severity::Breaking,
                ty,
                format!(
                    "the type changed from `{}` to `{}`: one side cannot decode what the other sends",
                    old_field.ty, new_field.ty
                ),
            );
        } else if old_field.optional && !new_field.optional {
            changes.add_type(
                Severity::Breaking,
                ty,
                "became required: peers of the previous version may leave it out".to_owned(),
            );
        } else if !old_field.optional && new_field.optional {
            changes.add_type(
                Severity::Compatible,
                ty,
                "became optional: peers of the previous version still need it sent".to_owned(),
            );
        }
    }
    for new_field in new {
        if field(old, &new_field.name).is_some() {
            continue;
        }
        let ty = format!("{name}.{}", new_field.name);
        if new_field.optional {
            changes.add_type(
                Severity::Compatible,
                ty,
                "an optional field added: peers of the previous version leave it out, or ignore it".to_owned(),
            );
        } else {
            changes.add_type(
                Severity::Breaking,
                ty,
                "a required field added: peers of the previous version do not send it; make it an `Option` or \
                 `#[serde(default)]`"
                    .to_owned(),
            );
        }
    }
}

/// The field called `name`.
fn field<'a>(fields: &'a [FieldShape], name: &str) -> Option<&'a FieldShape> {
    fields.iter().find(|field| field.name == name)
}

fn kind(shape: &TypeShape) -> &'static str {
    match shape {
        TypeShape::Struct { .. } => "a struct",
        TypeShape::Tuple { .. } => "a tuple",
        TypeShape::Unit => "a unit",
        TypeShape::Enum { .. } => "an enum",
        TypeShape::Ambiguous => "a name of several types",
    }
}

/// The changes found so far.
#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    /// A change to the named type (or field) `ty`.
    fn add_type(&mut self, severity: Severity, ty: String, message: String) {
        self.0.push(Change {
            severity,
            method: None,
            argument: None,
            ty: Some(ty),
            message,
        });
    }

    fn add(&mut self, severity: Severity, method: Option<&str>, argument: Option<&str>, message: String) {
        self.0.push(Change {
            severity,
            method: method.map(str::to_owned),
            argument: argument.map(str::to_owned),
            ty: None,
            message,
        });
    }
}

/// Whether two `since`s name the same version (`1.1` and `1.1.0` do).
fn same_version(old: Option<Version>, new: Option<Version>) -> bool {
    old.map(|version| version.precedence()) == new.map(|version| version.precedence())
}

fn next_minor(old: Version, new: Version) -> Version {
    if new.precedence() > old.precedence() {
        new
    } else {
        Version::new(old.major(), old.minor() + 1)
    }
}

fn namespace(namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("`{namespace}`"),
        None => "the default namespace".to_owned(),
    }
}

fn version(version: Option<Version>) -> String {
    match version {
        Some(version) => version.to_string(),
        None => "(none)".to_owned(),
    }
}

fn error(error: Option<&str>) -> String {
    match error {
        Some(error) => format!("`{error}`"),
        None => "none".to_owned(),
    }
}

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// There is no snapshot at the path yet.
    #[error("no API snapshot at `{}`", .0.display())]
    Missing(PathBuf),
    /// The snapshot could not be read or written.
    #[error("cannot use the API snapshot `{}`: {source}", .path.display())]
    Io {
        /// The snapshot's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The snapshot is not a description.
    #[error("the API snapshot `{}` is not an endpoint description: {source}", .path.display())]
    Invalid {
        /// The snapshot's path.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the snapshot at `path`.
pub fn read_snapshot(path: impl AsRef<Path>) -> Result<EndpointDescription, SnapshotError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SnapshotError::Missing(path.to_owned()),
        _ => SnapshotError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    serde_json::from_str(&text).map_err(|source| SnapshotError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Compares `description` with the snapshot at `path`.
pub fn check_snapshot(description: &EndpointDescription, path: impl AsRef<Path>) -> Result<Report, SnapshotError> {
    Ok(compare(&read_snapshot(path)?, description))
}

/// The environment variable that makes [`assert_compatible`] accept the
/// current API as the new snapshot.
pub const UPDATE_VARIABLE: &str = "RPC_API_UPDATE";

/// Asserts that an endpoint's API matches its committed snapshot, and
/// panics with a readable report otherwise: the test that guards an API
/// crate against breaking its callers.
///
/// ```no_run
/// # mod api { #[rpc_core::endpoint(version = "1.0")] pub trait Inventory { async fn count(&self, ctx: &rpc_core::Context) -> u64; } }
/// #[test]
/// fn inventory_api_is_compatible() {
///     use rpc_core::Stub;
///     rpc_core::api::assert_compatible(&api::InventoryClient::describe(), "api/inventory.json");
/// }
/// ```
///
/// Any difference fails, compatible ones included, so that the snapshot
/// always records the API as released; the report says which changes
/// break callers. After reviewing it, accept the current API with
/// `RPC_API_UPDATE=1 cargo test` (the snapshot is rewritten; commit it with
/// the change). A relative `path` is relative to the crate being tested
/// (`cargo test` runs tests there).
pub fn assert_compatible(description: &EndpointDescription, path: impl AsRef<Path>) {
    let path = path.as_ref();
    let update = std::env::var_os(UPDATE_VARIABLE).is_some_and(|value| !value.is_empty() && value != "0");
    let snapshot = match read_snapshot(path) {
        Ok(snapshot) => Some(snapshot),
        Err(SnapshotError::Missing(_)) if update => None,
        Err(SnapshotError::Missing(_)) => panic!(
            "no API snapshot for `{}` at `{}`: review the API below, then create the snapshot with \
             `{UPDATE_VARIABLE}=1 cargo test` and commit it\n{}",
            description.name,
            path.display(),
            description.to_json()
        ),
        Err(error) => panic!("{error}"),
    };
    if snapshot.as_ref() == Some(description) {
        return;
    }
    let report = snapshot.as_ref().map(|snapshot| compare(snapshot, description));
    if update {
        let written = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(path, description.to_json() + "\n"));
        if let Err(source) = written {
            panic!(
                "{}",
                SnapshotError::Io {
                    path: path.to_owned(),
                    source
                }
            );
        }
        if let Some(report) = report {
            eprintln!(
                "accepted the API of `{}` into `{}`:\n{report}",
                description.name,
                path.display()
            );
        }
        return;
    }
    let report = match report {
        Some(report) if report.changes.is_empty() => format!(
            "{report} that callers would see; the description holds more detail than the snapshot (types' \
             shapes, recorded since it was written)"
        ),
        Some(report) => report.to_string(),
        None => String::new(),
    };
    panic!(
        "the API of `{}` differs from its snapshot `{}`:\n{report}\n\
         If this is the API you mean to release, accept it with `{UPDATE_VARIABLE}=1 cargo test` and commit the snapshot.",
        description.name,
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ArgumentDescription;

    fn v(text: &str) -> Option<Version> {
        Some(text.parse().unwrap())
    }

    fn argument(name: &str, ty: &str, since: Option<Version>) -> ArgumentDescription {
        ArgumentDescription::new(name, ty, ty.starts_with("Option<"), since)
    }

    /// Inventory 1.1: `add(item, count)`, `list()`, `stats()` (added in 1.1).
    fn base() -> EndpointDescription {
        EndpointDescription::new("Inventory", Some("inventory"), v("1.1"))
            .method(
                MethodDescription::new("add", v("1.0"), "u64", Some("StockError".into()))
                    .argument(argument("item", "String", None))
                    .argument(argument("count", "u32", None)),
            )
            .method(MethodDescription::new("list", v("1.0"), "Vec<String>", None))
            .method(MethodDescription::new("stats", v("1.1"), "u64", None))
    }

    fn only(report: &Report) -> &Change {
        assert_eq!(report.changes.len(), 1, "{report}");
        &report.changes[0]
    }

    #[test]
    fn the_same_api_has_no_changes() {
        let report = compare(&base(), &base());
        assert!(report.changes.is_empty() && report.is_compatible(), "{report}");
    }

    #[test]
    fn compatible_changes_pass() {
        let mut new = base();
        new.version = v("1.2");
        new.methods[0]
            .arguments
            .push(argument("location", "Option<String>", v("1.2")));
        new.methods
            .push(MethodDescription::new("remove", v("1.2"), "()", None).argument(argument("item", "String", None)));
        let report = compare(&base(), &new);
        assert!(report.is_compatible(), "{report}");
        assert_eq!(report.changes.len(), 2, "{report}");
        assert_eq!(report.changes[0].argument.as_deref(), Some("location"));
        assert_eq!(report.changes[1].method.as_deref(), Some("remove"));
        assert!(
            report
                .changes
                .iter()
                .all(|change| change.severity == Severity::Compatible)
        );
        assert!(
            report.to_string().starts_with("API `Inventory` 1.1 -> 1.2: compatible"),
            "{report}"
        );
    }

    #[test]
    fn each_breaking_change_is_reported_with_its_method_and_argument() {
        /// What is changed, how, and the method, argument and severity expected.
        type Case = (
            &'static str,
            Box<dyn Fn(&mut EndpointDescription)>,
            Option<&'static str>,
            Option<&'static str>,
            Severity,
        );
        let cases: Vec<Case> = vec![
            (
                "method removed",
                Box::new(|api| {
                    api.methods.remove(1);
                }),
                Some("list"),
                None,
                Severity::Breaking,
            ),
            (
                "method renamed",
                Box::new(|api| api.methods[1].name = "list_all".into()),
                Some("list"),
                None,
                Severity::Breaking,
            ),
            (
                "argument removed",
                Box::new(|api| {
                    api.methods[0].arguments.remove(1);
                }),
                Some("add"),
                Some("count"),
                Severity::Breaking,
            ),
            (
                "argument renamed",
                Box::new(|api| api.methods[0].arguments[1].name = "quantity".into()),
                Some("add"),
                Some("count"),
                Severity::Breaking,
            ),
            (
                "argument retyped",
                Box::new(|api| api.methods[0].arguments[1].ty = "u64".into()),
                Some("add"),
                Some("count"),
                Severity::Breaking,
            ),
            (
                "result retyped",
                Box::new(|api| api.methods[1].returns = "Vec<u64>".into()),
                Some("list"),
                None,
                Severity::Breaking,
            ),
            (
                "error retyped",
                Box::new(|api| api.methods[0].error = None),
                Some("add"),
                None,
                Severity::Breaking,
            ),
            (
                "since moved",
                Box::new(|api| api.methods[2].since = v("1.0")),
                Some("stats"),
                None,
                Severity::Breaking,
            ),
            (
                "required argument added in a minor version",
                Box::new(|api| {
                    api.version = v("1.2");
                    api.methods[1].arguments.push(argument("limit", "u32", v("1.2")));
                }),
                Some("list"),
                Some("limit"),
                Severity::Breaking,
            ),
            (
                "optional argument added without since",
                Box::new(|api| {
                    api.version = v("1.2");
                    api.methods[1].arguments.push(argument("limit", "Option<u32>", None));
                }),
                Some("list"),
                Some("limit"),
                Severity::Unversioned,
            ),
            (
                "method added without since",
                Box::new(|api| {
                    api.version = v("1.2");
                    api.methods.push(MethodDescription::new("purge", v("1.0"), "()", None));
                }),
                Some("purge"),
                None,
                Severity::Unversioned,
            ),
            (
                "namespace changed",
                Box::new(|api| api.namespace = Some("stock".into())),
                None,
                None,
                Severity::Breaking,
            ),
            (
                "version lowered",
                Box::new(|api| api.version = v("1.0")),
                None,
                None,
                Severity::Breaking,
            ),
        ];
        for (what, mutate, method, argument, severity) in cases {
            let mut new = base();
            mutate(&mut new);
            let report = compare(&base(), &new);
            assert!(!report.is_compatible(), "{what}: {report}");
            let failure = report.failures().next().unwrap();
            assert_eq!(failure.severity, severity, "{what}: {report}");
            assert_eq!(failure.method.as_deref(), method, "{what}: {report}");
            assert_eq!(failure.argument.as_deref(), argument, "{what}: {report}");
            let text = report.to_string();
            for name in method.into_iter().chain(argument) {
                assert!(text.contains(name), "{what}: the report names `{name}`: {text}");
            }
        }
    }

    #[test]
    fn a_new_api_without_a_version_bump_is_reported() {
        let mut new = base();
        new.methods.push(MethodDescription::new("purge", v("1.2"), "()", None));
        let report = compare(&base(), &new);
        let failure = only_failure(&report);
        assert!(failure.message.contains("raise it to 1.2"), "{report}");
    }

    fn only_failure(report: &Report) -> &Change {
        let failures: Vec<&Change> = report.failures().collect();
        assert_eq!(failures.len(), 1, "{report}");
        failures[0]
    }

    #[test]
    fn a_major_version_allows_breaking_changes() {
        let mut new = base();
        new.version = v("2.0");
        new.methods.remove(0);
        let report = compare(&base(), &new);
        assert!(report.is_compatible(), "{report}");
        assert_eq!(only(&report).severity, Severity::Major);
    }

    #[test]
    fn snapshots_are_checked_and_updated() {
        let dir = std::env::temp_dir().join(format!("rpc-api-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("inventory.json");
        assert!(matches!(check_snapshot(&base(), &path), Err(SnapshotError::Missing(_))));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, base().to_json()).unwrap();
        assert!(check_snapshot(&base(), &path).unwrap().changes.is_empty());
        assert_compatible(&base(), &path);
        let mut new = base();
        new.methods.remove(0);
        let panic = std::panic::catch_unwind(|| assert_compatible(&new, &path)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("`add`: removed or renamed"), "{message}");
        assert!(message.contains("RPC_API_UPDATE=1 cargo test"), "{message}");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            check_snapshot(&base(), &path),
            Err(SnapshotError::Invalid { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `Item` as 1.0 shipped it, and as later versions change it.
    mod item {
        use serde::Deserialize;

        #[allow(dead_code)]
        #[derive(Deserialize)]
        pub(crate) enum Kind {
            Plain,
            Boxed(u16),
        }

        pub(crate) mod v1 {
            #[allow(dead_code)]
            #[derive(serde::Deserialize)]
            pub(crate) struct Item {
                pub(crate) sku: String,
                pub(crate) count: u32,
                pub(crate) note: Option<String>,
                pub(crate) kind: super::Kind,
            }
        }

        /// A required field added: old callers do not send it.
        pub(crate) mod required_added {
            #[allow(dead_code)]
            #[derive(serde::Deserialize)]
            pub(crate) struct Item {
                pub(crate) sku: String,
                pub(crate) count: u32,
                pub(crate) note: Option<String>,
                pub(crate) kind: super::Kind,
                pub(crate) bin: u32,
            }
        }

        /// Fields renamed, retyped, removed; optional ones added.
        pub(crate) mod reshaped {
            #[allow(dead_code)]
            #[derive(serde::Deserialize)]
            pub(crate) struct Item {
                pub(crate) code: String,
                pub(crate) count: u64,
                pub(crate) kind: Kind,
                #[serde(default)]
                pub(crate) tags: Vec<String>,
            }

            #[allow(dead_code)]
            #[derive(serde::Deserialize)]
            pub(crate) enum Kind {
                Boxed(u16),
                Pallet { size: u32 },
            }
        }
    }

    fn with_item<T: serde::de::DeserializeOwned>(version: &str) -> EndpointDescription {
        let mut description = EndpointDescription::new("Inventory", Some("inventory"), v(version))
            .method(MethodDescription::new("add", v("1.0"), "u64", None).argument(argument("item", "Item", None)));
        assert!(description.trace::<T>());
        description
    }

    #[test]
    fn a_since_written_with_its_revision_has_not_moved() {
        let mut new = base();
        new.methods[2].since = v("1.1.0");
        assert!(compare(&base(), &new).changes.is_empty());
    }

    #[test]
    fn changes_inside_a_type_are_found_by_its_shape() {
        let old = with_item::<item::v1::Item>("1.0");
        // The type's name, all the old check compared, did not change.
        let report = compare(&old, &with_item::<item::required_added::Item>("1.1"));
        assert_eq!(
            only(&report).to_string(),
            "breaking: type `Item.bin`: a required field added: peers of the previous version do not send it; \
             make it an `Option` or `#[serde(default)]`"
        );
        let report = compare(&old, &with_item::<item::reshaped::Item>("1.1"));
        let lines: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
        for expected in [
            "breaking: type `Item.sku`: a required field removed or renamed",
            "breaking: type `Item.count`: the type changed from `u32` to `u64`",
            "compatible: type `Item.note`: an optional field removed",
            "breaking: type `Item.code`: a required field added",
            "compatible: type `Item.tags`: an optional field added",
            "breaking: type `Kind::Plain`: removed or renamed",
            "compatible: type `Kind::Pallet`: added",
        ] {
            assert!(
                lines.iter().any(|line| line.starts_with(expected)),
                "{expected}\n{report}"
            );
        }
        assert_eq!(lines.len(), 7, "{report}");
        assert!(!report.is_compatible(), "{report}");
        // Unchanged types, traced again, compare equal.
        assert!(compare(&old, &with_item::<item::v1::Item>("1.0")).changes.is_empty());
    }
}
