//! The delivery log: one record per notification attempt, written by the notifier and read by
//! the gateway's `GET /deliveries`.
//!
//! Every attempt (webhook, email, Slack, Teams) becomes a [`DeliveryAttempt`]: when, to which
//! endpoint, the status code or error, the latency, the start of the response body, and what
//! happens next (a retry at a time, or nothing more because it succeeded, was rejected, or went to
//! the dead-letter topic). Records belong to an OU and are stored under its keys:
//!
//! - `ou:{ou}:deliveries:att:{id}` — the JSON record (expires after the retention period);
//! - `ou:{ou}:deliveries:idx:{dim}` — sorted sets of record ids by attempt time, for `all` and
//!   for each filter dimension (`fired:{id}`, `lead:{id}`, `trigger:{id}`, `status:{s}`), each
//!   trimmed to a cap so memory stays bounded.
//!
//! On a Redis Cluster both carry the notifier's hash tag (`ou:{ou}:{notifier}:deliveries:…`,
//! [`Keys::delivery_attempt`], [`Keys::delivery_index`]): the notifier writes them in the same
//! atomic write as the job.
//!
//! [`record_cmds`] gives the commands that write one record, so the notifier can put them in the
//! same round trip as the delivery's state change. [`query`] answers a filtered, newest-first,
//! offset-paged list: it walks the most selective index and applies the remaining filters.

use serde::{Deserialize, Serialize};

use crate::keys::Keys;
use crate::store::{Cmd, Kv, Reply, StoreError};

/// How many ids each per-dimension index keeps (the newest); `all` keeps ten times this.
pub const INDEX_CAP: isize = 10_000;
/// Response bodies are kept up to this many bytes.
pub const BODY_MAX: usize = 1024;
/// The largest page [`query`] returns.
pub const PAGE_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Webhook,
    Email,
    Slack,
    Teams,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::Teams => "teams",
        }
    }
}

/// What an attempt came to, as the delivery log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Delivered (2xx, or the SMTP server accepted the message).
    Succeeded,
    /// Failed; another attempt is scheduled at `next_attempt_at_ms`.
    Retrying,
    /// Failed for good (rejected, refused address, or the last attempt); sent to the DLQ.
    Failed,
    /// 410 Gone: the endpoint is disabled for this trigger from now on; sent to the DLQ.
    Disabled,
    /// Not attempted because the endpoint was disabled by an earlier 410; sent to the DLQ.
    Skipped,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Retrying => "retrying",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Disabled => "disabled",
            AttemptStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptStatus> {
        Some(match s {
            "succeeded" => AttemptStatus::Succeeded,
            "retrying" => AttemptStatus::Retrying,
            "failed" => AttemptStatus::Failed,
            "disabled" => AttemptStatus::Disabled,
            "skipped" => AttemptStatus::Skipped,
            _ => return None,
        })
    }
}

/// One attempt to deliver one fired record to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// `att_…`, sortable by creation time.
    pub id: String,
    pub fired_id: String,
    pub ou_id: String,
    pub lead_id: String,
    pub trigger_id: String,
    pub trigger_name: String,
    pub channel: Channel,
    /// Stable id of the endpoint (no secrets in it).
    pub endpoint_id: String,
    /// The endpoint for people: URL without query/credentials, or the email address.
    pub target: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: i64,
    pub status: AttemptStatus,
    /// HTTP status (or SMTP reply code) when there was an answer.
    pub status_code: Option<u16>,
    /// Timeout, connection error, refusal reason, …
    pub error: Option<String>,
    pub latency_ms: u64,
    /// The first [`BODY_MAX`] bytes of the response, lossily UTF-8.
    pub response_body: Option<String>,
    pub next_attempt_at_ms: Option<i64>,
}

/// Cut a response body to [`BODY_MAX`] bytes on a character boundary.
pub fn truncate_body(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if body.len() > BODY_MAX {
        s.push('…');
    }
    s
}

/// Store `a` and index it (one round trip). The notifier writes its attempts in the same
/// atomic write as the job instead (`notifier::jobs::JobStore::record`, with [`record_cmds`]).
pub async fn record(
    store: &dyn Kv,
    keys: &Keys,
    a: &DeliveryAttempt,
    retention_ms: u64,
) -> Result<(), StoreError> {
    store
        .exec(record_cmds(keys, a, retention_ms))
        .await
        .map(drop)
}

/// The commands that store `a` and index it (one pipelined batch; add to the caller's own).
pub fn record_cmds(keys: &Keys, a: &DeliveryAttempt, retention_ms: u64) -> Vec<Cmd> {
    let value = serde_json::to_vec(a).unwrap_or_default();
    let mut cmds = vec![Cmd::Set {
        key: keys.delivery_attempt(&a.ou_id, &a.id),
        value,
        ttl_ms: Some(retention_ms),
    }];
    let dims = [
        ("all".to_string(), INDEX_CAP * 10),
        (format!("fired:{}", a.fired_id), INDEX_CAP),
        (format!("lead:{}", a.lead_id), INDEX_CAP),
        (format!("trigger:{}", a.trigger_id), INDEX_CAP),
        (format!("status:{}", a.status.as_str()), INDEX_CAP),
    ];
    for (dim, cap) in dims {
        let key = keys.delivery_index(&a.ou_id, &dim);
        cmds.push(Cmd::ZAdd {
            key: key.clone(),
            score: a.at_ms as f64,
            member: a.id.as_bytes().to_vec(),
        });
        cmds.push(Cmd::ZRemRangeByRank {
            key: key.clone(),
            start: 0,
            stop: -(cap + 1),
        });
        cmds.push(Cmd::PExpire {
            key,
            ttl_ms: retention_ms,
        });
    }
    cmds
}

/// Filters of `GET /deliveries`; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DeliveryQuery {
    pub trigger_id: Option<String>,
    pub lead_id: Option<String>,
    pub fired_id: Option<String>,
    pub status: Option<AttemptStatus>,
    /// How many matching records to skip (newest first).
    #[serde(default)]
    pub offset: usize,
    /// Page size, default 50, at most [`PAGE_MAX`].
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryAttempt>,
    /// The `offset` of the next page, when there may be one.
    pub next_offset: Option<usize>,
}

impl DeliveryQuery {
    fn matches(&self, a: &DeliveryAttempt) -> bool {
        self.trigger_id.as_ref().is_none_or(|t| *t == a.trigger_id)
            && self.lead_id.as_ref().is_none_or(|l| *l == a.lead_id)
            && self.fired_id.as_ref().is_none_or(|f| *f == a.fired_id)
            && self.status.is_none_or(|s| s == a.status)
    }

    /// The most selective index for these filters.
    fn index_dim(&self) -> String {
        if let Some(f) = &self.fired_id {
            format!("fired:{f}")
        } else if let Some(l) = &self.lead_id {
            format!("lead:{l}")
        } else if let Some(t) = &self.trigger_id {
            format!("trigger:{t}")
        } else if let Some(s) = self.status {
            format!("status:{}", s.as_str())
        } else {
            "all".to_string()
        }
    }
}

/// The attempts of OU `ou` that match `q`, newest first.
pub async fn query(
    store: &dyn Kv,
    keys: &Keys,
    ou: &str,
    q: &DeliveryQuery,
) -> Result<DeliveryPage, StoreError> {
    let limit = q.limit.unwrap_or(50).clamp(1, PAGE_MAX);
    let index = keys.delivery_index(ou, &q.index_dim());
    const CHUNK: isize = 200;
    let mut skipped = 0usize;
    let mut out = Vec::new();
    let mut rank: isize = 0;
    loop {
        let ids = store
            .exec(vec![Cmd::ZRevRange {
                key: index.clone(),
                start: rank,
                stop: rank + CHUNK - 1,
            }])
            .await?
            .pop()
            .map(Reply::into_array)
            .unwrap_or_default();
        let n = ids.len();
        let keys_: Vec<String> = ids
            .into_iter()
            .filter_map(Reply::into_bytes)
            .map(|id| keys.delivery_attempt(ou, &String::from_utf8_lossy(&id)))
            .collect();
        if !keys_.is_empty() {
            let recs = store
                .exec(vec![Cmd::MGet { keys: keys_ }])
                .await?
                .pop()
                .map(Reply::into_array)
                .unwrap_or_default();
            for r in recs {
                // Expired records (index entries outlive them briefly) are skipped.
                let Some(a) = r.json::<DeliveryAttempt>()? else {
                    continue;
                };
                if !q.matches(&a) {
                    continue;
                }
                if skipped < q.offset {
                    skipped += 1;
                    continue;
                }
                out.push(a);
                if out.len() == limit {
                    return Ok(DeliveryPage {
                        deliveries: out,
                        next_offset: Some(q.offset + limit),
                    });
                }
            }
        }
        if (n as isize) < CHUNK {
            return Ok(DeliveryPage {
                deliveries: out,
                next_offset: None,
            });
        }
        rank += CHUNK;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryKv;

    fn att(i: i64, lead: &str, status: AttemptStatus) -> DeliveryAttempt {
        DeliveryAttempt {
            id: format!("att_{i:04}"),
            fired_id: format!("fir_{}", i % 3),
            ou_id: "ou_a".into(),
            lead_id: lead.into(),
            trigger_id: "trg_1".into(),
            trigger_name: "T".into(),
            channel: Channel::Webhook,
            endpoint_id: "webhook_00".into(),
            target: "https://h/x".into(),
            attempt: 1,
            at_ms: 1000 + i,
            status,
            status_code: Some(200),
            error: None,
            latency_ms: 3,
            response_body: Some(truncate_body(&[b'x'; 2000])),
            next_attempt_at_ms: None,
        }
    }

    #[tokio::test]
    async fn filters_and_pages_newest_first() {
        let kv = MemoryKv::new();
        let keys = Keys::new("t");
        let mut cmds = Vec::new();
        for i in 0..30 {
            let s = if i % 2 == 0 {
                AttemptStatus::Succeeded
            } else {
                AttemptStatus::Retrying
            };
            let lead = if i < 20 { "ld_1" } else { "ld_2" };
            cmds.extend(record_cmds(&keys, &att(i, lead, s), 60_000));
        }
        kv.exec(cmds).await.unwrap();

        let all = query(&kv, &keys, "ou_a", &DeliveryQuery::default())
            .await
            .unwrap();
        assert_eq!(all.deliveries.len(), 30);
        assert_eq!(all.deliveries[0].id, "att_0029");
        assert!(all.deliveries[0].response_body.as_ref().unwrap().len() <= BODY_MAX + 3);

        let q = DeliveryQuery {
            lead_id: Some("ld_1".into()),
            status: Some(AttemptStatus::Succeeded),
            limit: Some(4),
            offset: 4,
            ..Default::default()
        };
        let page = query(&kv, &keys, "ou_a", &q).await.unwrap();
        let ids: Vec<&str> = page.deliveries.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["att_0010", "att_0008", "att_0006", "att_0004"]);
        assert_eq!(page.next_offset, Some(8));

        let q = DeliveryQuery {
            fired_id: Some("fir_0".into()),
            ..Default::default()
        };
        assert_eq!(
            query(&kv, &keys, "ou_a", &q)
                .await
                .unwrap()
                .deliveries
                .len(),
            10
        );
        let other = query(&kv, &keys, "ou_b", &DeliveryQuery::default())
            .await
            .unwrap();
        assert!(other.deliveries.is_empty());
    }
}
