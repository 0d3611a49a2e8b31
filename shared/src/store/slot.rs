//! Redis Cluster hash slots: which slot a key lives in, and the check that an atomic batch
//! (a Lua script runs on one node) touches one slot only.
//!
//! A key's slot is CRC16 (XMODEM) of its hash tag — the text between the first `{` and the next
//! `}`, when not empty — or of the whole key, modulo 16384.

use super::StoreError;

/// The number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The hash slot of `key`.
pub fn slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) % SLOTS
}

/// The part of the key that decides its slot, when it has a non-empty `{…}`.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&c| c == b'{')?;
    let len = key[open + 1..].iter().position(|&c| c == b'}')?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

/// CRC16-CCITT (XMODEM), the checksum Redis Cluster uses.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The one slot every key lives in, or [`StoreError::CrossSlot`] naming two keys that differ.
/// `None` when there are no keys.
pub fn single_slot<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Option<u16>, StoreError> {
    let mut first: Option<(&str, u16)> = None;
    for k in keys {
        let s = slot(k.as_bytes());
        match first {
            None => first = Some((k, s)),
            Some((k0, s0)) if s0 != s => {
                return Err(StoreError::CrossSlot(format!(
                    "an atomic write touches {k0:?} (slot {s0}) and {k:?} (slot {s}); on a Redis \
                     Cluster every key of one atomic write must share a hash tag"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, s)| s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on redis-server 7.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}")); // empty tag: whole key
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn cross_slot_is_named() {
        assert_eq!(single_slot(["a{x}", "b{x}"]).unwrap(), Some(slot(b"x")));
        assert_eq!(single_slot([]).unwrap(), None);
        let e = single_slot(["foo", "bar"]).unwrap_err().to_string();
        assert!(
            e.contains("\"foo\"") && e.contains("\"bar\"") && e.contains("hash tag"),
            "{e}"
        );
    }
}
