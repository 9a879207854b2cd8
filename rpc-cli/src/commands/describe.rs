//! `rpc describe` and `rpc compat`: endpoint descriptions, as the
//! compatibility check writes them.

use std::path::PathBuf;

use clap::Args;
use rpc_core::api as compat;
use rpc_core::api::{EndpointDescription, TypeShape};

use crate::exit::Exit;
use crate::out::{out, outln};

/// `rpc describe`.
#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// Description files (JSON), as `rpc_core::api::compat` writes them.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Prints the descriptions as JSON instead (an array for several files).
    #[arg(long)]
    json: bool,
}

/// `rpc compat`.
#[derive(Debug, Args)]
pub(crate) struct CompatArgs {
    /// The description callers were built against.
    old: PathBuf,
    /// The new description.
    new: PathBuf,
}

fn read(path: &PathBuf) -> Result<EndpointDescription, Exit> {
    compat::read_snapshot(path).map_err(|error| Exit::Config(error.to_string()))
}

/// Prints each description: the endpoint, then a line per method; with
/// `--json`, one JSON document: the description, or an array of them for
/// several files.
pub(crate) fn describe(args: &DescribeArgs) -> Result<(), Exit> {
    let descriptions = args.files.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    match descriptions.as_slice() {
        [one] if args.json => outln!("{}", one.to_json()),
        several if args.json => {
            let json = serde_json::to_string_pretty(several)
                .map_err(|error| Exit::Failed(format!("cannot write the descriptions as JSON: {error}")))?;
            outln!("{json}");
        }
        all => {
            for description in all {
                out!("{}", text(description));
            }
        }
    }
    Ok(())
}

/// A description for people.
fn text(description: &EndpointDescription) -> String {
    let mut out = format!(
        "{} (namespace {}, version {})\n",
        description.name,
        description.namespace.as_deref().unwrap_or("(default)"),
        description
            .version
            .map_or_else(|| "(none)".to_owned(), |version| version.to_string()),
    );
    for method in &description.methods {
        let arguments: Vec<String> = method
            .arguments
            .iter()
            .map(|argument| {
                let since = argument
                    .since
                    .map(|since| format!(" since {since}"))
                    .unwrap_or_default();
                let optional = if argument.optional { "?" } else { "" };
                format!("{}{optional}: {}{since}", argument.name, argument.ty)
            })
            .collect();
        let error = method
            .error
            .as_ref()
            .map(|error| format!(" or {error}"))
            .unwrap_or_default();
        let since = method
            .since
            .map(|since| format!("  [since {since}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {}({}) -> {}{error}{since}\n",
            method.name,
            arguments.join(", "),
            method.returns
        ));
    }
    for (name, shape) in &description.types {
        out.push_str(&format!("  type {name}{}\n", shape_text(shape)));
    }
    out
}

/// A type's shape as Rust would declare it, on one line:
/// ` { sku: String, note?: Option<String> }`, ` = Plain | Boxed(u16)`.
fn shape_text(shape: &TypeShape) -> String {
    match shape {
        TypeShape::Struct { fields } => {
            let fields: Vec<String> = fields
                .iter()
                .map(|field| {
                    let optional = if field.optional { "?" } else { "" };
                    format!("{}{optional}: {}", field.name, field.ty)
                })
                .collect();
            format!(" {{ {} }}", fields.join(", "))
        }
        TypeShape::Tuple { items } => format!("({})", items.join(", ")),
        TypeShape::Enum { variants } => {
            let variants: Vec<String> = variants
                .iter()
                .map(|variant| format!("{}{}", variant.name, shape_text(&variant.shape)))
                .collect();
            format!(" = {}", variants.join(" | "))
        }
        _ => String::new(),
    }
}

/// Compares two descriptions; exits 1 when the new one breaks callers of the old.
pub(crate) fn compat(args: &CompatArgs) -> Result<(), Exit> {
    let (old, new) = (read(&args.old)?, read(&args.new)?);
    let report = compat::compare(&old, &new);
    for change in &report.changes {
        let mark = if change.severity.fails() { "FAIL" } else { "ok" };
        outln!("{mark:<4} {change}");
    }
    if report.is_compatible() {
        outln!("compatible: callers of {} keep working", args.old.display());
        Ok(())
    } else {
        Err(Exit::Failed(format!(
            "{} breaks callers of {}",
            args.new.display(),
            args.old.display()
        )))
    }
}
