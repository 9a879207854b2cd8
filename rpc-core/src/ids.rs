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

/// The low `4 * N` bits of `value` as `N` lowercase hex digits.
pub(crate) fn hex<const N: usize>(value: u128) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.to_be_bytes();
    let mut out = [0; N];
    // Two digits per byte, from the last byte backwards.
    for (i, pair) in out.rchunks_mut(2).enumerate() {
        let byte = bytes[15 - i];
        if let [high, low] = pair {
            *high = DIGITS[usize::from(byte >> 4)];
            *low = DIGITS[usize::from(byte & 0xf)];
        } else if let [low] = pair {
            *low = DIGITS[usize::from(byte & 0xf)];
        }
    }
    out
}

/// The value of each byte as a lowercase hex digit; 0xff for other bytes.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// The value of at most 32 lowercase hex digits; `None` for anything else.
pub(crate) fn parse_hex(text: &[u8]) -> Option<u128> {
    if text.len() > 32 {
        return None;
    }
    let mut value = 0u128;
    let mut invalid = 0u8;
    for byte in text {
        let digit = HEX_VALUES[usize::from(*byte)];
        invalid |= digit;
        value = value << 4 | u128::from(digit & 0xf);
    }
    // Only an invalid byte sets the high bits.
    (invalid & 0xf0 == 0).then_some(value)
}

/// Hashes keys that are already uniformly random (message ids): their low
/// 64 bits are the hash, with none of SipHash's cost.
#[derive(Default)]
pub(crate) struct RandomKeyHasher(u64);

impl std::hash::Hasher for RandomKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }

    fn write_u128(&mut self, value: u128) {
        self.0 ^= value as u64;
    }
}

/// The hasher of maps keyed by message id values.
pub(crate) type RandomKeys = std::hash::BuildHasherDefault<RandomKeyHasher>;

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
    if id.len() != 32 {
        return None;
    }
    parse_hex(id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_both_ways() {
        assert_eq!(&hex::<2>(0xab), b"ab");
        assert_eq!(&hex::<3>(0xabc), b"abc");
        assert_eq!(&hex::<16>(u128::from(u64::MAX)), b"ffffffffffffffff");
        for value in [0, 1, 0x0123_4567_89ab_cdef, u128::MAX, rand::random()] {
            assert_eq!(parse_hex(&hex::<32>(value)), Some(value));
        }
        assert_eq!(parse_hex(b""), Some(0));
        for bad in [&b"0A"[..], b"g0", b"-1", b" 1", &[b'0'; 33]] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
    }

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
        assert_eq!(hex::<32>(0xdead_beef)[24..], *b"deadbeef");
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
