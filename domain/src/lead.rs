//! What the processor keeps per lead, [`LeadRecord`]. The gateway reads it to answer
//! `GET /leads/{id}`.
//!
//! A lead's state lives in its events partition's `leads` hash (the key layout and the reader,
//! `LeadStates`, are in `leadstream_shared`) as one byte `1` followed by the
//! [postcard](https://postcard.jamesmunns.com/) encoding of [`LeadRecord`]: about a third of the
//! JSON it replaced, and cheaper to write and read. States written as JSON by earlier versions
//! (they begin with `{`) are still read.

use serde::{Deserialize, Serialize};

use crate::scoring::LeadScore;
use crate::sequence::SequenceBuffer;

/// A lead's processing state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LeadRecord {
    #[serde(default)]
    pub score: LeadScore,
    #[serde(default)]
    pub seq: SequenceBuffer,
    /// Event time of the newest event applied.
    #[serde(default)]
    pub last_event_at_ms: Option<i64>,
    /// Events applied (duplicates not counted).
    #[serde(default)]
    pub events: u64,
}

/// The first byte of a binary state (a JSON state begins with `{`).
const BINARY_V1: u8 = 1;

impl LeadRecord {
    /// The stored form: `BINARY_V1` then postcard.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let body = postcard::to_allocvec(self).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(BINARY_V1);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Read a stored state, binary or (written by earlier versions) JSON.
    pub fn decode(bytes: &[u8]) -> Result<LeadRecord, String> {
        match bytes.first() {
            Some(&BINARY_V1) => postcard::from_bytes(&bytes[1..]).map_err(|e| e.to_string()),
            Some(b'{') => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            Some(b) => Err(format!("unknown state encoding (first byte {b:#04x})")),
            None => Err("empty state".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_json_states_read_back() {
        let mut rec = LeadRecord {
            events: 3,
            last_event_at_ms: Some(1_700_000_000_000),
            ..Default::default()
        };
        rec.score.last_event_ms = Some(5);
        let bin = rec.encode().unwrap();
        assert_eq!(bin[0], BINARY_V1);
        assert_eq!(LeadRecord::decode(&bin).unwrap(), rec);
        let json = serde_json::to_vec(&rec).unwrap();
        assert_eq!(LeadRecord::decode(&json).unwrap(), rec);
        assert!(
            bin.len() * 2 < json.len(),
            "{} vs {}",
            bin.len(),
            json.len()
        );
        assert!(LeadRecord::decode(b"").is_err());
        assert!(LeadRecord::decode(&[7, 1, 2]).is_err());
        assert!(LeadRecord::decode(&[BINARY_V1, 0xff]).is_err());
    }
}
