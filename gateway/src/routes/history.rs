//! Firing history of the active OU (issue 3 item 4, issue 4 item 2), read scope, newest first:
//!
//! - `GET /milestone-events?trigger_id=&lead_id=&limit=&cursor=&offset=` →
//!   `{"milestone_events": [{"id", "trigger_id", "trigger_name", "lead_id", "event_id", "score",
//!   "fired_at", "payload"}], "next_cursor": "…" | null}`;
//! - `GET /sequence-events?sequence_id=&lead_id=&…` → `{"sequence_events": [{"id",
//!   "sequence_id", "sequence_name", "lead_id", "event_id", "score", "fired_at", "payload"}],
//!   "next_cursor"}` (`payload` is the exact webhook body that was sent).
//!
//! Paging: `limit` 1–500 (default 50); pass `next_cursor` back as `cursor` for the next page
//! (absent/null: no more). `offset` skips that many matching entries (after the cursor, if
//! any). The history is the processor's sorted set of JSON [`HistoryEntry`]s per OU and kind
//! ([`leadstream_shared::store::history`]), read in chunks of [`CHUNK`] by rank. The cursor
//! holds the rank to resume at and the (fired time, id) of the last entry returned; entries at
//! or above that key are skipped, so firings recorded between two page requests (which shift
//! ranks) never make a page repeat an entry. One request scans at most [`MAX_SCAN`] entries: a filter
//! that matches rarely may return a short (even empty) page with a `next_cursor` to continue,
//! and `offset` is at most [`MAX_SCAN`] (deeper pages: follow the cursor).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use leadstream_domain::fired::TriggerKind;
use leadstream_domain::firing::HistoryEntry;
use leadstream_shared::ids::parse_rfc3339_ms;

use super::ctx_for;
use super::request::store_err;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// Entries read per store round trip.
pub const CHUNK: usize = 200;
/// Entries one request scans at most.
pub const MAX_SCAN: usize = 10_000;
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

/// Which history a route reads and how its items are named.
struct Kind {
    store: TriggerKind,
    list: &'static str,
    id_param: &'static str,
    sequence: bool,
}

const MILESTONE: Kind = Kind {
    store: TriggerKind::Milestone,
    list: "milestone_events",
    id_param: "trigger_id",
    sequence: false,
};
const SEQUENCE: Kind = Kind {
    store: TriggerKind::Sequence,
    list: "sequence_events",
    id_param: "sequence_id",
    sequence: true,
};

pub async fn milestone_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    page(&st, &headers, &q, &MILESTONE).await
}

pub async fn sequence_events(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    page(&st, &headers, &q, &SEQUENCE).await
}

/// Where a page starts: a rank, and the (fired ms, id) of the last entry already returned.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    rank: usize,
    after: (i64, String),
}

impl Cursor {
    fn encode(&self) -> String {
        let raw = format!("{}|{}|{}", self.rank, self.after.0, self.after.1);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    fn decode(s: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim())
            .ok()?;
        let raw = String::from_utf8(bytes).ok()?;
        let mut parts = raw.splitn(3, '|');
        let rank = parts.next()?.parse().ok()?;
        let ms = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_string();
        Some(Cursor {
            rank,
            after: (ms, id),
        })
    }
}

fn number(
    q: &HashMap<String, String>,
    k: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match q.get(k) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= max && (k != "limit" || n >= 1) => Ok(n),
            _ => {
                let min = if k == "limit" { 1 } else { 0 };
                Err(ApiError::invalid(
                    k,
                    format!("{k} must be an integer from {min} to {max}"),
                ))
            }
        },
    }
}

async fn page(
    st: &AppState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    kind: &Kind,
) -> Result<Response, ApiError> {
    let c = ctx_for(st, headers, Scope::Read).await?;
    let limit = number(q, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    // An offset past what one request may scan could never be honoured: refuse it.
    let skip = number(q, "offset", 0, MAX_SCAN)?;
    let cursor = match q.get("cursor").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            Cursor::decode(s).ok_or_else(|| ApiError::invalid("cursor", "cursor is not valid"))?,
        ),
    };
    let want_id = q
        .get(kind.id_param)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    let want_lead = q.get("lead_id").map(|s| s.trim()).filter(|s| !s.is_empty());
    let filter = Filter {
        id: want_id,
        lead: want_lead,
    };
    let (out, next) = scan(
        st,
        &c.tenant.ou_id,
        kind.store,
        &filter,
        limit,
        skip,
        cursor,
    )
    .await?;
    let items: Vec<Value> = out.into_iter().map(|e| item(e, kind.sequence)).collect();
    Ok(Json(json!({
        kind.list: items,
        "next_cursor": next.map(|c| c.encode()),
    }))
    .into_response())
}

/// What the caller filters on.
struct Filter<'a> {
    id: Option<&'a str>,
    lead: Option<&'a str>,
}

/// One page: the entries, and the cursor of the next page when there may be more.
async fn scan(
    st: &AppState,
    ou: &str,
    kind: TriggerKind,
    filter: &Filter<'_>,
    limit: usize,
    mut skip: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<HistoryEntry>, Option<Cursor>), ApiError> {
    let mut rank = cursor.as_ref().map_or(0, |c| c.rank);
    let after = cursor.map(|c| c.after);
    let mut out: Vec<HistoryEntry> = Vec::new();
    let mut last_seen: Option<(i64, String)> = None;
    let mut scanned = 0usize;
    while scanned < MAX_SCAN {
        let members = chunk(st, ou, kind, rank).await?;
        let got = members.len();
        for m in members {
            rank += 1;
            scanned += 1;
            let Some(entry) = m else {
                continue; // an entry this binary cannot read is skipped, never a 500
            };
            let k = key_of(&entry);
            if after.as_ref().is_some_and(|a| k >= *a) {
                continue; // returned on an earlier page (ranks moved since)
            }
            last_seen = Some(k.clone());
            let wanted = filter.id.is_none_or(|w| entry.trigger_id == w)
                && filter.lead.is_none_or(|w| entry.lead_id == w);
            if !wanted {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if out.len() == limit {
                let after = out.last().map(key_of).unwrap_or(k);
                // Resume at this entry: it is the first one not returned.
                return Ok((
                    out,
                    Some(Cursor {
                        rank: rank - 1,
                        after,
                    }),
                ));
            }
            out.push(entry);
        }
        if got < CHUNK {
            return Ok((out, None));
        }
    }
    let next = last_seen.or(after).map(|after| Cursor { rank, after });
    Ok((out, next))
}

/// Up to [`CHUNK`] entries from rank `rank`, newest first (`None`: unreadable).
async fn chunk(
    st: &AppState,
    ou: &str,
    kind: TriggerKind,
    rank: usize,
) -> Result<Vec<Option<HistoryEntry>>, ApiError> {
    // The last rank of the chunk must be a Redis rank (an `isize`): a cursor beyond is forged.
    let valid = isize::try_from(rank)
        .ok()
        .and_then(|start| start.checked_add(CHUNK as isize - 1));
    if valid.is_none() {
        return Err(ApiError::invalid("cursor", "cursor is not valid"));
    }
    st.histories
        .newest(ou, kind, rank, CHUNK)
        .await
        .map_err(store_err(st))
}

fn key_of(e: &HistoryEntry) -> (i64, String) {
    (parse_rfc3339_ms(&e.fired_at).unwrap_or(0), e.id.clone())
}

fn item(e: HistoryEntry, sequence: bool) -> Value {
    let (id_key, name_key) = if sequence {
        ("sequence_id", "sequence_name")
    } else {
        ("trigger_id", "trigger_name")
    };
    json!({
        "id": e.id,
        id_key: e.trigger_id,
        name_key: e.trigger_name,
        "lead_id": e.lead_id,
        "event_id": e.event_id,
        "score": e.score,
        "fired_at": e.fired_at,
        "payload": e.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor {
            rank: 250,
            after: (1_736_935_200_000, "fir_ab|c".into()),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
