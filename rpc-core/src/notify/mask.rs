//! Secrets masked as oslo.utils masks them (`strutils.mask_dict_password`
//! and `strutils.mask_password`), for the `log` driver's line: the value of
//! a key that looks secret, and what looks like a secret inside a string
//! (`password=...`, `--password ...`, `<password>...</password>`, a quoted
//! `'password': '...'`).

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

/// What a secret is replaced with.
const MASK: &str = "***";

/// The keys oslo.utils masks (`strutils._SANITIZE_KEYS`, in its order), and
/// `credential`, which a context's redaction hides too: a key containing any
/// of them, in any case, has its value written as `***`; a string containing
/// one is searched for secrets around it.
const SECRET_KEYS: [&str; 36] = [
    "adminpass",
    "admin_pass",
    "password",
    "admin_password",
    "auth_token",
    "new_pass",
    "auth_password",
    "secret_uuid",
    "secret",
    "sys_pswd",
    "token",
    "configdrive",
    "chappassword",
    "encrypted_key",
    "private_key",
    "fernetkey",
    "sslkey",
    "passphrase",
    "cephclusterfsid",
    "octaviaheartbeatkey",
    "rabbitcookie",
    "cephmanilaclientkey",
    "pacemakerremoteauthkey",
    "designaterndckey",
    "cephadminkey",
    "heatauthencryptionkey",
    "cephclientkey",
    "keystonecredential",
    "barbicansimplecryptokek",
    "cephrgwkey",
    "swifthashsuffix",
    "migrationsshkey",
    "cephmdskey",
    "cephmonkey",
    "chapsecret",
    "credential",
];

/// oslo.utils' `_FORMAT_PATTERNS_2`: the secret between two kept groups.
const AROUND: [&str; 10] = [
    r#"(KEY[0-9]*\s*[=]\s*["'])[^"']*(["'])"#,
    r#"(KEY[0-9]*\s*[=]\s*["])[^"]*(["])"#,
    r#"(KEY[0-9]*\s*[=]\s*['])[^']*(['])"#,
    r#"(KEY[0-9]*\s+["'])[^"']*(["'])"#,
    r#"([-]{2}KEY[0-9]*\s+)[^'^"^=^\s]+([\s]*)"#,
    r#"(<KEY[0-9]*>)[^<]*(</KEY[0-9]*>)"#,
    r#"(["']KEY[0-9]*["']\s*:\s*["'])[^"']*(["'])"#,
    r#"(['"][^"']*KEY[0-9]*['"]\s*:\s*u?['"])[^"']*(['"])"#,
    r#"(['"][^'"]*KEY[0-9]*['"]\s*,\s*'--?[A-z]+'\s*,\s*u?['"])[^"']*(['"])"#,
    r#"(KEY[0-9]*\s*--?[A-z]+\s*)\S+(\s*)"#,
];

/// oslo.utils' `_FORMAT_PATTERNS_1`: the secret after one kept group.
const AFTER: &str = r#"(KEY[0-9]*\s*[=]\s*)[^\s^'"]+"#;

/// oslo.utils' `_FORMAT_PATTERNS_WILDCARD`, replaced by its first group
/// alone: it drops what follows the last quoted value, as oslo's does.
const WILDCARD: &str = r#"(['"][^"']*KEY[0-9]*['"]\s*:\s*u?['"].*['"])[^"']*(['"])"#;

/// One key's patterns, compiled as oslo compiles them (`re.DOTALL |
/// re.IGNORECASE`), each with its replacement; compiled the first time a
/// string holds the key, so that a log without secrets compiles none.
fn patterns(index: usize) -> &'static [(Regex, String)] {
    static PATTERNS: [OnceLock<Vec<(Regex, String)>>; SECRET_KEYS.len()] =
        [const { OnceLock::new() }; SECRET_KEYS.len()];
    PATTERNS[index].get_or_init(|| {
        let key = regex::escape(SECRET_KEYS[index]);
        let compile = |pattern: &str| {
            // Python's `\s` is `str.isspace()`, which also takes the four
            // separators U+001C..U+001F; the `regex` crate's does not.
            let pattern = pattern
                .replace(r"\s", r"[\s\x1C-\x1F]")
                .replace(r"\S", r"[^\s\x1C-\x1F]")
                .replace("KEY", &key);
            Regex::new(&format!("(?si){pattern}")).expect("oslo.utils' patterns are regular expressions")
        };
        let mut patterns: Vec<(Regex, String)> = AROUND
            .iter()
            .map(|pattern| (compile(pattern), format!("${{1}}{MASK}${{2}}")))
            .collect();
        patterns.push((compile(AFTER), format!("${{1}}{MASK}")));
        patterns.push((compile(WILDCARD), "${1}".to_owned()));
        patterns
    })
}

/// Masks `value` as `mask_dict_password` masks a message: in objects at any
/// depth, arrays included, the value of a key that looks secret becomes
/// `***` (an object under such a key is masked inside instead), and every
/// other string is masked as [`mask_password`] masks it.
pub(super) fn mask_secrets(value: &mut Value) {
    match value {
        Value::Object(entries) => {
            for (key, value) in entries.iter_mut() {
                if !value.is_object() && is_secret(key) {
                    *value = Value::String(MASK.to_owned());
                } else {
                    mask_secrets(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        Value::String(text) => {
            if let Some(masked) = mask_password(text) {
                *text = masked;
            }
        }
        _ => {}
    }
}

fn is_secret(key: &str) -> bool {
    let key = key.to_lowercase();
    SECRET_KEYS.iter().any(|secret| key.contains(secret))
}

/// `strutils.mask_password`: the secrets in a string replaced by `***`, or
/// `None` when it holds no secret key and is left as it is.
fn mask_password(text: &str) -> Option<String> {
    let mut lower = text.to_lowercase();
    if !SECRET_KEYS.iter().any(|key| lower.contains(key)) {
        return None;
    }
    let mut masked = text.to_owned();
    for (index, key) in SECRET_KEYS.iter().enumerate() {
        // oslo tests each key against the string as the previous keys left
        // it: `lower` follows `masked`.
        if !lower.contains(key) {
            continue;
        }
        let mut changed = false;
        for (pattern, replacement) in patterns(index) {
            if let Cow::Owned(replaced) = pattern.replace_all(&masked, replacement.as_str()) {
                masked = replaced;
                changed = true;
            }
        }
        if changed {
            lower = masked.to_lowercase();
        }
    }
    Some(masked)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What oslo.utils' `mask_password` (in the interop tests' virtualenv,
    /// `scripts/python-env.sh`) makes of each string.
    #[test]
    fn strings_are_masked_as_oslo_masks_them() {
        let cases = [
            ("--password hunter2 --user admin", "--password *** --user admin"),
            ("password=hunter2 user=admin", "password=*** user=admin"),
            (
                r#"Password = "hunter 2", user="admin""#,
                r#"Password = "***", user="admin""#,
            ),
            (
                "<password>hunter2</password><user>a</user>",
                "<password>***</password><user>a</user>",
            ),
            (
                r#"{"password": "hunter2", "user": "a"}"#,
                r#"{"password": "***", "user": "}"#,
            ),
            ("'adminPass' : 'hunter2'", "'adminPass' : '***'"),
            ("mysql://nova:pass@db/nova", "mysql://nova:pass@db/nova"),
            ("auth_token=abc123&x=1", "auth_token=***"),
            ("'original_password' : u'abc'", "'original_password' : u'***'"),
            ("token -X secretvalue next", "token -X *** next"),
            (
                "['sudo', 'chpasswd', '--password', 'hunter2']",
                "['sudo', 'chpasswd', '--password', 'hunter2']",
            ),
            (
                r#"'password': 'it"s', 'user': 'x'"#,
                r#"'password': '***"s', 'user': '"#,
            ),
            ("PASSWORD1='a' password2=b", "PASSWORD1='***' password2=***"),
            ("no secrets here", "no secrets here"),
            ("--password\x1fhunter2 x", "--password\x1f*** x"),
            ("password=a\x1cb", "password=***\x1cb"),
        ];
        for (text, expected) in cases {
            let masked = mask_password(text).unwrap_or_else(|| text.to_owned());
            assert_eq!(masked, expected, "{text}");
        }
    }

    /// oslo.utils' `mask_dict_password` on the same value.
    #[test]
    fn values_are_masked_at_any_depth() {
        let mut value = json!({
            "a": "password=x",
            "l": ["token=y", {"secret": "z"}, 3],
            "n": {"m": "--password p q"},
        });
        mask_secrets(&mut value);
        assert_eq!(
            value,
            json!({"a": "password=***", "l": ["token=***", {"secret": "***"}, 3], "n": {"m": "--password *** q"}})
        );
    }
}
