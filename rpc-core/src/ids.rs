//! Message ids: 32 lowercase hex digits, like oslo.messaging's uuid4 hex,
//! each 128 bits from a cryptographic generator seeded from the operating
//! system (rand's thread-local ChaCha), so that a peer that sees ids cannot
//! predict the next ones (and, say, have real requests dropped as
//! duplicates of ones it sent first). A reply finds its call by the id's
//! 128-bit value.

use std::fmt;

/// A message id, kept inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Id {
    text: [u8; 32],
    key: u128,
}

fn hex(value: u128) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = DIGITS[((value >> (124 - 4 * i)) & 0xf) as usize];
    }
    out
}

impl Id {
    /// A fresh, unpredictable id.
    pub(crate) fn next() -> Id {
        let key = rand::random::<u128>();
        Id { text: hex(key), key }
    }

    /// The id's value: the key of its call.
    pub(crate) fn key(&self) -> u128 {
        self.key
    }

    pub(crate) fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value of an id written as ours are (32 lowercase hex digits);
/// `None` for any other text.
pub(crate) fn key_of(id: &str) -> Option<u128> {
    if id.len() != 32 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(id, 16).ok()
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
        assert_eq!(key_of(id.as_str()), Some(id.key()));
        assert_eq!(hex(0xdead_beef)[24..], *b"deadbeef");
        assert_eq!(
            key_of("0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5"),
            Some(0x0d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5)
        );
        for other in [
            "",
            "0d3c",
            "0D3C6F3A4C1E4B55A2F1C9D1E2A3B4C5",
            "+d3c6f3a4c1e4b55a2f1c9d1e2a3b4c5",
        ] {
            assert_eq!(key_of(other), None, "{other}");
        }
    }

    #[test]
    fn ids_do_not_follow_from_each_other() {
        // Consecutive ids share no prefix and no counter: 1,000 of them, and
        // no two agree on their first 64 bits.
        let ids: std::collections::HashSet<u64> = (0..1000).map(|_| (Id::next().key() >> 64) as u64).collect();
        assert_eq!(ids.len(), 1000);
        let (a, b) = (Id::next().key(), Id::next().key());
        assert!((a ^ b).count_ones() > 16, "{a:032x} {b:032x}");
    }
}
