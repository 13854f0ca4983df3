//! Compact keys for token ids. Most `jti` values are canonical UUIDs (36
//! characters); those are stored as 16 bytes inline, other ids of up to 22
//! bytes inline too, and only longer ones as a boxed string. A key is 24
//! bytes with 8-byte alignment (a `u128` would force 16-byte alignment and a
//! 32-byte key), so with a 16-byte entry a revoked token costs 40 bytes of
//! table space plus the table's free slots, and a look-up by `&str` runs
//! without allocating.

use hashbrown::Equivalent;
use std::hash::{Hash, Hasher};

/// A stored token id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// A canonical lower-case hyphenated UUID, big-endian bytes.
    Uuid([u8; 16]),
    /// A short id stored inline: bytes and length.
    Inline([u8; INLINE], u8),
    /// A longer id.
    Str(Box<str>),
}

/// Longest id stored inline.
const INLINE: usize = 22;

/// A borrowed token id used for look-ups.
#[derive(Debug, Clone, Copy)]
pub enum KeyRef<'a> {
    /// A canonical UUID.
    Uuid(u128),
    /// Any other string.
    Str(&'a str),
}

impl<'a> KeyRef<'a> {
    /// Classifies a string without allocating.
    pub fn new(s: &'a str) -> Self {
        match parse_canonical_uuid(s) {
            Some(u) => KeyRef::Uuid(u),
            None => KeyRef::Str(s),
        }
    }
    /// Owned copy.
    pub fn to_key(self) -> Key {
        match self {
            KeyRef::Uuid(u) => Key::Uuid(u.to_be_bytes()),
            KeyRef::Str(s) if s.len() <= INLINE => {
                let mut b = [0u8; INLINE];
                b[..s.len()].copy_from_slice(s.as_bytes());
                Key::Inline(b, s.len() as u8)
            }
            KeyRef::Str(s) => Key::Str(s.into()),
        }
    }
}

impl Key {
    /// The id as the client wrote it.
    pub fn to_string_lossless(&self) -> String {
        match self {
            Key::Uuid(u) => uuid::Uuid::from_bytes(*u).hyphenated().to_string(),
            Key::Inline(b, n) => String::from_utf8_lossy(&b[..*n as usize]).into_owned(),
            Key::Str(s) => s.to_string(),
        }
    }

    fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Uuid(u) => KeyRef::Uuid(u128::from_be_bytes(*u)),
            // Inline keys were made from valid UTF-8 and are cut at a char boundary (the whole string).
            Key::Inline(b, n) => KeyRef::Str(std::str::from_utf8(&b[..*n as usize]).unwrap_or("")),
            Key::Str(s) => KeyRef::Str(s),
        }
    }
}

fn parse_canonical_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None, // upper case is kept as a string so it round-trips exactly
        };
        v = (v << 4) | d as u128;
    }
    Some(v)
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_ref().hash(h)
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            KeyRef::Uuid(u) => {
                h.write_u8(0);
                h.write_u128(*u);
            }
            KeyRef::Str(s) => {
                h.write_u8(1);
                s.hash(h);
            }
        }
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        match (self, key.as_ref()) {
            (KeyRef::Uuid(a), KeyRef::Uuid(b)) => *a == b,
            (KeyRef::Str(a), KeyRef::Str(b)) => *a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_compact_and_round_trip() {
        let s = "0b7c1f9e-6a3d-4e2b-9f10-23456789abcd";
        let k = KeyRef::new(s).to_key();
        assert!(matches!(k, Key::Uuid(_)));
        assert_eq!(k.to_string_lossless(), s);
        let up = "0B7C1F9E-6A3D-4E2B-9F10-23456789ABCD";
        assert!(matches!(KeyRef::new(up), KeyRef::Str(_)));
        assert!(matches!(KeyRef::new("t1"), KeyRef::Str(_)));
        assert!(matches!(KeyRef::new("t1").to_key(), Key::Inline(..)));
        assert_eq!(KeyRef::new("t1").to_key().to_string_lossless(), "t1");
        let long = "x".repeat(40);
        assert!(matches!(KeyRef::new(&long).to_key(), Key::Str(_)));
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
