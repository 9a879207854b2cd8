//! oslo.config's template substitution (`ConfigOpts._substitute`), applied to
//! every typed option's value before it is converted.
//!
//! Python's `string.Template.safe_substitute` with oslo's identifier pattern
//! `[_a-z][._a-z0-9]*` (case-insensitive):
//! - `\$` is first rewritten as `$$`, and `$$` is a literal `$`;
//! - `$name` and `${name}` are replaced by option `name` of the same section,
//!   or else of `[DEFAULT]` (in oslo.messaging's sections, only an option
//!   oslo registers there is read in the section: `$host` in
//!   `[oslo_messaging_rabbit]` is `[DEFAULT]`'s); `${section.name}` (or
//!   `$section.name`) by option `name` of `[section]`;
//! - a `$` followed by anything else is kept as it is.
//!
//! A referenced option is taken from the files (its effective value, itself
//! substituted) or, for an option this crate types, from its oslo default.
//! Unlike oslo, which knows every option its service registered, a reference
//! to an option set nowhere and unknown here is an error: oslo would fail the
//! same way for an unregistered name (`NoSuchOptError`), which is what a
//! password containing a `$` usually produces.

use crate::config::{Config, DEFAULT_SECTION};
use crate::options;

/// How deep references may nest; deeper is taken for a cycle.
const MAX_DEPTH: usize = 16;
/// How many references one value may expand, nested ones included.
const MAX_REFERENCES: usize = 1024;
/// The longest a value may grow by substitution.
const MAX_LEN: usize = 1 << 20;

/// Why a reference cannot be substituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SubstError {
    /// The name of no option set in the files nor known here.
    Unresolved(String),
    /// References nested past [`MAX_DEPTH`]: a cycle.
    TooDeep(String),
    /// More than [`MAX_REFERENCES`] references, or a value past [`MAX_LEN`] bytes.
    TooLarge(String),
}

impl SubstError {
    pub(crate) fn reference(&self) -> &str {
        match self {
            SubstError::Unresolved(name) | SubstError::TooDeep(name) | SubstError::TooLarge(name) => name,
        }
    }

    pub(crate) fn reason(&self) -> &'static str {
        match self {
            SubstError::Unresolved(_) => "no such option is set",
            SubstError::TooDeep(_) => "the references nest too deeply (a reference cycle?)",
            SubstError::TooLarge(_) => "the value expands to too many references or too long a text",
        }
    }
}

/// Substitutes the references of a value of an option of `section`.
pub(crate) fn substitute(config: &Config, section: &str, value: &str) -> Result<String, SubstError> {
    let mut budget = MAX_REFERENCES;
    substitute_at(config, section, value, 0, &mut budget)
}

fn substitute_at(
    config: &Config,
    section: &str,
    value: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<String, SubstError> {
    if !value.contains('$') {
        return Ok(value.to_owned());
    }
    let value = value.replace("\\$", "$$");
    let mut out = String::with_capacity(value.len());
    let mut rest = value.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let after = rest.get(at + 1..).unwrap_or_default();
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(name_len) = identifier_len(after) {
            let name = after.get(..name_len).unwrap_or_default();
            out.push_str(&resolve(config, section, name, depth, budget)?);
            rest = after.get(name_len..).unwrap_or_default();
        } else if let Some(name_len) = after.strip_prefix('{').and_then(identifier_len) {
            let name = after.get(1..1 + name_len).unwrap_or_default();
            match after.get(1 + name_len..).and_then(|tail| tail.strip_prefix('}')) {
                Some(tail) => {
                    out.push_str(&resolve(config, section, name, depth, budget)?);
                    rest = tail;
                }
                None => {
                    // `${name` without its brace: safe_substitute keeps the `$`.
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if out.len() > MAX_LEN {
        return Err(SubstError::TooLarge(value.chars().take(32).collect()));
    }
    Ok(out)
}

/// The length of the identifier `[_a-zA-Z][._a-zA-Z0-9]*` at the start of `text`.
fn identifier_len(text: &str) -> Option<usize> {
    let first = text.bytes().next()?;
    if !(first == b'_' || first.is_ascii_alphabetic()) {
        return None;
    }
    Some(
        text.bytes()
            .take_while(|byte| *byte == b'_' || *byte == b'.' || byte.is_ascii_alphanumeric())
            .count(),
    )
}

/// oslo's `StrSubWrapper.__getitem__`.
fn resolve(config: &Config, section: &str, name: &str, depth: usize, budget: &mut usize) -> Result<String, SubstError> {
    if depth >= MAX_DEPTH {
        return Err(SubstError::TooDeep(name.to_owned()));
    }
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| SubstError::TooLarge(name.to_owned()))?;
    let (first, implicit) = match name.split_once('.') {
        Some(explicit) => (explicit, false),
        None => ((section, name), true),
    };
    for (group, option) in [first, (DEFAULT_SECTION, name)] {
        // `$name` looks in its section only among the options oslo
        // registers there, then in `[DEFAULT]`.
        if implicit && group != DEFAULT_SECTION && options::is_registered(group, option) == Some(false) {
            continue;
        }
        if let Some(setting) = config.setting(group, option) {
            return substitute_at(config, group, setting.value(), depth + 1, budget);
        }
        if let Some(default) = options::default_text(group, option) {
            return Ok(default.to_owned());
        }
    }
    Err(SubstError::Unresolved(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_text("t.conf", text).unwrap()
    }

    #[test]
    fn escapes_and_plain_dollars() {
        let config = config("[DEFAULT]\n");
        let sub = |value: &str| substitute(&config, "DEFAULT", value);
        assert_eq!(sub("no dollars").unwrap(), "no dollars");
        assert_eq!(sub("pa$$word").unwrap(), "pa$word");
        assert_eq!(sub("pa\\$word").unwrap(), "pa$word");
        assert_eq!(
            sub("cost: 5$ or $1 or ${ or ${x or $").unwrap(),
            "cost: 5$ or $1 or ${ or ${x or $"
        );
    }

    #[test]
    fn references_resolve_in_section_then_default() {
        let config = config(
            "[DEFAULT]\nhost = rabbit1\nuser = nova\n[oslo_messaging_rabbit]\nhost = rabbit2\nca = /etc/$host/ca.pem\n\
             ssl = true\n[nova]\nhost = n1\n",
        );
        let sub = |section: &str, value: &str| substitute(&config, section, value).unwrap();
        assert_eq!(sub("DEFAULT", "rabbit://$user@$host//"), "rabbit://nova@rabbit1//");
        // `host` is no option of oslo's rabbit section: oslo reads `[DEFAULT]`'s.
        assert_eq!(sub("oslo_messaging_rabbit", "$user@$host"), "nova@rabbit1");
        // One it registers is read in the section.
        assert_eq!(sub("oslo_messaging_rabbit", "$ssl"), "true");
        // A service's own section: any option may be its.
        assert_eq!(sub("nova", "$host"), "n1");
        assert_eq!(
            sub("oslo_messaging_rabbit", "${DEFAULT.host}:${oslo_messaging_rabbit.host}"),
            "rabbit1:rabbit2"
        );
        assert_eq!(sub("DEFAULT", "${oslo_messaging_rabbit.ca}"), "/etc/rabbit1/ca.pem");
        // Options typed here resolve to their oslo defaults when unset.
        assert_eq!(
            sub("DEFAULT", "$control_exchange/$rpc_response_timeout"),
            "openstack/60"
        );
    }

    #[test]
    fn unresolved_and_cyclic_references_are_errors() {
        let config = config("[DEFAULT]\na = $b\nb = ${a}\n");
        assert_eq!(
            substitute(&config, "DEFAULT", "rabbit://u:pa$word@h").unwrap_err(),
            SubstError::Unresolved("word".to_owned())
        );
        assert!(matches!(
            substitute(&config, "DEFAULT", "$a"),
            Err(SubstError::TooDeep(_))
        ));
    }

    #[test]
    fn exponential_expansions_are_bounded() {
        // Each level doubles: 2^15 references, and a huge text, without the bounds.
        let mut text = String::from("[DEFAULT]\nl0 = xxxxxxxxxxxxxxxx\n");
        for level in 1..16 {
            text.push_str(&format!("l{level} = $l{prev}$l{prev}\n", prev = level - 1));
        }
        let config = config(&text);
        assert!(matches!(
            substitute(&config, "DEFAULT", "$l15"),
            Err(SubstError::TooLarge(_))
        ));
        assert_eq!(substitute(&config, "DEFAULT", "$l3").unwrap().len(), 16 * 8);
    }
}
