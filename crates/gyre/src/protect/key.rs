//! Compact keys for token ids. Most `jti` values are canonical UUIDs (36
//! characters); those are stored as 16 bytes inline, everything else as a
//! boxed string. With a 16-byte entry this keeps a revoked token near 40
//! bytes of table space plus the table's free slots, and lets a look-up by
//! `&str` run without allocating.

use hashbrown::Equivalent;
use std::hash::{Hash, Hasher};

/// A stored token id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// A canonical lower-case hyphenated UUID.
    Uuid(u128),
    /// Any other string.
    Str(Box<str>),
}

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
            KeyRef::Uuid(u) => Key::Uuid(u),
            KeyRef::Str(s) => Key::Str(s.into()),
        }
    }
}

impl Key {
    /// The id as the client wrote it.
    pub fn to_string_lossless(&self) -> String {
        match self {
            Key::Uuid(u) => uuid::Uuid::from_u128(*u).hyphenated().to_string(),
            Key::Str(s) => s.to_string(),
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
        match self {
            Key::Uuid(u) => KeyRef::Uuid(*u).hash(h),
            Key::Str(s) => KeyRef::Str(s).hash(h),
        }
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
        match (self, key) {
            (KeyRef::Uuid(a), Key::Uuid(b)) => a == b,
            (KeyRef::Str(a), Key::Str(b)) => *a == &**b,
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
    }
}
