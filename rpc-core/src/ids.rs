//! Message ids: 32 lowercase hex digits, like oslo.messaging's uuid4 hex,
//! made of a random per-process prefix and a counter, so that making one
//! costs no system call and no allocation, and a reply finds its call by an
//! integer key.

use std::fmt;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

static PREFIX: LazyLock<[u8; 16]> = LazyLock::new(|| hex(uuid::Uuid::new_v4().as_u64_pair().0));
static COUNTER: AtomicU64 = AtomicU64::new(1);

fn hex(value: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// A message id, kept inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Id {
    text: [u8; 32],
    counter: u64,
}

impl Id {
    /// A fresh id.
    pub(crate) fn next() -> Id {
        let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut text = [0; 32];
        text[..16].copy_from_slice(&*PREFIX);
        text[16..].copy_from_slice(&hex(counter));
        Id { text, counter }
    }

    /// The id's counter: the key of its call.
    pub(crate) fn counter(&self) -> u64 {
        self.counter
    }

    pub(crate) fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The counter of an id this process made; `None` for anyone else's.
pub(crate) fn counter_of(id: &str) -> Option<u64> {
    let counter = id.as_bytes().strip_prefix(&*PREFIX)?;
    if counter.len() != 16 || !counter.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(counter).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuid_hex_and_round_trip() {
        let id = Id::next();
        assert_eq!(id.as_str().len(), 32);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(counter_of(id.as_str()), Some(id.counter()));
        assert_ne!(Id::next(), Id::next());
        assert_eq!(counter_of("0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5"), None);
        assert_eq!(hex(0xdead_beef), *b"00000000deadbeef");
        let prefix = std::str::from_utf8(&*PREFIX).unwrap();
        assert_eq!(counter_of(&format!("{prefix}+00000000000001")), None);
    }
}
