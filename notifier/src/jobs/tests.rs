use std::sync::Arc;
use std::time::Duration;

use leadstream_shared::ids::now_ms;
use leadstream_shared::store::MemoryKv;

use super::*;
use crate::attempt::DeadReason;
use crate::summary::tests::milestone;

fn store(kv: MemoryKv, keys: Keys) -> JobStore {
    JobStore::new(Arc::new(kv), keys, 60_000)
}

#[tokio::test]
async fn enqueue_is_idempotent_and_leases_are_exclusive() {
    jobs_round(store(MemoryKv::new(), Keys::new("t"))).await;
}

/// On a cluster every atomic write of a delivery (with its attempt record and 410 mark)
/// stays in one slot: the strict store refuses a cross-slot batch as Redis Cluster does.
#[tokio::test]
async fn on_a_cluster_every_job_write_stays_in_one_slot() {
    jobs_round(store(MemoryKv::cluster_strict(), Keys::for_cluster("t"))).await;
}

async fn jobs_round(js: JobStore) {
    let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
    let job = Job::new(&milestone(), &ep, 0, 7, 1000);
    let one = std::slice::from_ref(&job);
    assert_eq!(js.enqueue(one, 1000).await.unwrap(), [true]);
    assert_eq!(js.enqueue(one, 1000).await.unwrap(), [false]);

    let due_now = js.due(1000, 10).await.unwrap();
    assert_eq!(due_now, [js.key_of(&job)]);
    let k = &due_now[0];
    assert_eq!(leadstream_shared::keys::delivery_job_endpoint(k), ep.id());
    assert_eq!(leadstream_shared::keys::delivery_job_ou(k), job.fired.ou_id);
    assert!(js.due(999, 10).await.unwrap().is_empty());

    let got = js.claim(k, "a", 10_000).await.unwrap().unwrap();
    assert_eq!(got, job);
    assert!(js.is_leased(k).await.unwrap());
    assert!(js.claim(k, "b", 10_000).await.unwrap().is_none());

    let mut done = got.clone();
    done.state = State::Succeeded { at_ms: 1001 };
    let a = attempt(&done);
    let w = Write {
        job_key: k,
        token: "a",
        job: &done,
        next: Next::Done,
        attempt: Some(&a),
        gone_at_ms: Some(1001),
    };
    assert!(!js.is_disabled(&done).await.unwrap());
    assert!(js.record(w).await.unwrap().held);
    assert!(!js.is_leased(k).await.unwrap());
    assert!(js.is_disabled(&done).await.unwrap());
    assert_eq!(js.load(k).await.unwrap(), Some(done.clone()));
    let log = crate::delivery::query(
        js.store.as_ref(),
        js.keys(),
        &done.fired.ou_id,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        log.deliveries,
        std::slice::from_ref(&a),
        "the attempt is in the delivery log"
    );
    js.release(k, "nobody").await.unwrap();
    let w = Write {
        attempt: None,
        gone_at_ms: None,
        ..w
    };
    js.record(w).await.unwrap();
    assert!(js.due(i64::MAX, 10).await.unwrap().is_empty());
    // Lease released: a claim works again and sees the final state.
    let again = js.claim(k, "c", 10_000).await.unwrap().unwrap();
    assert!(again.state.is_final());
    // A stale holder's write still lands but reports the lost lease.
    assert!(!js.record(w).await.unwrap().held);
}

/// One lead's jobs to one endpoint go one at a time, in offset order; another lead's do not
/// wait, and neither does a job in no lane.
#[tokio::test]
async fn a_lane_lets_only_its_earliest_job_go() {
    lane_round(store(MemoryKv::new(), Keys::new("t"))).await;
    lane_round(store(MemoryKv::cluster_strict(), Keys::for_cluster("t"))).await;
}

async fn lane_round(js: JobStore) {
    let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
    let fired = |n: usize, lead: &str| {
        let mut f = milestone();
        f.fired_id = format!("fir_{lead}_{n}");
        f.lead_id = lead.into();
        f
    };
    // Enqueued out of offset order: the lane orders by offset all the same.
    let second = Job::new(&fired(2, "ld_1"), &ep, 0, 9, 1000);
    let first = Job::new(&fired(1, "ld_1"), &ep, 0, 8, 1000);
    let other = Job::new(&fired(3, "ld_2"), &ep, 0, 10, 1000);
    js.enqueue(&[second.clone(), first.clone(), other.clone()], 1000)
        .await
        .unwrap();
    let go = |disabled| Gate {
        disabled,
        behind: None,
    };
    assert_eq!(js.gate(&first).await.unwrap(), go(false));
    assert_eq!(js.gate(&other).await.unwrap(), go(false));
    let behind = js.gate(&second).await.unwrap().behind.unwrap();
    assert_eq!(behind.key, js.key_of(&first));
    assert_eq!(
        js.lane_head(&second).await.unwrap(),
        Some(js.key_of(&first))
    );

    // A retry keeps the first in its lane.
    let k = js.key_of(&first);
    js.claim(&k, "a", 10_000).await.unwrap().unwrap();
    let mut retrying = first.clone();
    retrying.state = State::Failed { retry_at_ms: 5000 };
    let w = Write {
        job_key: &k,
        token: "a",
        job: &retrying,
        next: Next::At(5000),
        attempt: None,
        gone_at_ms: None,
    };
    assert_eq!(
        js.record(w).await.unwrap(),
        Recorded {
            held: true,
            next_in_lane: None
        }
    );
    assert!(js.gate(&second).await.unwrap().behind.is_some());

    // Final: it leaves the lane, and the write names the next job.
    js.claim(&k, "b", 10_000).await.unwrap().unwrap();
    let mut done = first.clone();
    done.state = State::Succeeded { at_ms: 5001 };
    let r = js
        .record(Write {
            token: "b",
            job: &done,
            next: Next::Done,
            ..w
        })
        .await
        .unwrap();
    assert_eq!(r.next_in_lane, Some(js.key_of(&second)));
    assert_eq!(js.gate(&second).await.unwrap(), go(false));

    // A stale member (its job expired) is taken out by whoever finds it.
    let third = Job::new(&fired(4, "ld_1"), &ep, 0, 11, 1000);
    js.enqueue(std::slice::from_ref(&third), 1000)
        .await
        .unwrap();
    let stale = js.gate(&third).await.unwrap().behind.unwrap();
    assert_eq!(stale.key, js.key_of(&second));
    js.leave_lane(&third, &stale).await.unwrap();
    assert_eq!(js.gate(&third).await.unwrap(), go(false));

    // Parked: due again at the given time, lease given back.
    let k3 = js.key_of(&third);
    js.claim(&k3, "c", 10_000).await.unwrap().unwrap();
    js.park(&k3, "c", 7000).await.unwrap();
    assert!(!js.is_leased(&k3).await.unwrap());
    assert!(!js.due(6999, 10).await.unwrap().contains(&k3));
    assert!(js.due(7000, 10).await.unwrap().contains(&k3));
}

/// A job gone from the store on a claim leaves the due set.
#[tokio::test]
async fn a_claim_of_an_expired_job_takes_it_out_of_the_due_set() {
    let js = store(MemoryKv::new(), Keys::new("t"));
    let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
    let job = Job::new(&milestone(), &ep, 0, 7, 1000);
    js.enqueue(std::slice::from_ref(&job), 1000).await.unwrap();
    let k = js.key_of(&job);
    js.kv()
        .exec(vec![Cmd::Del { key: k.clone() }])
        .await
        .unwrap();
    assert!(js.claim(&k, "a", 10_000).await.unwrap().is_none());
    assert!(js.due(i64::MAX, 10).await.unwrap().is_empty());
    assert!(!js.is_leased(&k).await.unwrap());
}

/// `admin dlq replay`'s decisions, one per row of [`JobStore::replay`]'s table.
#[tokio::test]
async fn replay_requeues_only_dead_deliveries_whose_letter_was_sent() {
    replay_rows(store(MemoryKv::new(), Keys::new("t"))).await;
}

#[tokio::test]
async fn replay_on_a_cluster_stays_in_one_slot() {
    replay_rows(store(MemoryKv::cluster_strict(), Keys::for_cluster("t"))).await;
}

/// Put `job` in the store in its current state, out of the due set.
async fn put(js: &JobStore, job: &Job) {
    let k = js.key_of(job);
    js.kv()
        .exec(vec![js.set_job(&k, job), js.not_due(&k)])
        .await
        .unwrap();
}

fn dead(job: &Job, dlq_sent: bool) -> Job {
    let mut j = job.clone();
    j.attempts = 3;
    j.state = State::Dead {
        reason: DeadReason::Exhausted,
    };
    j.dlq_sent = dlq_sent;
    j.last_error = Some("503".into());
    j.last_status = Some(503);
    j
}

async fn replay_rows(js: JobStore) {
    let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
    let f = milestone();
    let job = Job::new(&f, &ep, 0, 7, 1000);
    let k = js.key_of(&job);
    let run = ReplayOptions::default();
    let dry = ReplayOptions {
        dry_run: true,
        ..run
    };
    let (jsr, fr, epr) = (&js, &f, &ep);
    let replay = move |opts| jsr.replay(fr, epr, 0, 7, opts);

    // Dead with its DLQ record sent: reset and due now; a dry run writes nothing.
    let was = dead(&job, true);
    put(&js, &was).await;
    assert_eq!(replay(dry).await.unwrap(), Replay::Replayed);
    assert_eq!(js.load(&k).await.unwrap(), Some(was.clone()));
    assert!(js.due(i64::MAX, 10).await.unwrap().is_empty());
    assert_eq!(replay(run).await.unwrap(), Replay::Replayed);
    let now = js.load(&k).await.unwrap().unwrap();
    assert_eq!(
        (
            &now.state,
            now.attempts,
            now.dlq_sent,
            &now.last_error,
            now.last_status
        ),
        (&State::Pending, 0, false, &None, None)
    );
    assert_eq!(now.fired, job.fired, "the same delivery");
    assert_eq!(
        js.due(now_ms(), 10).await.unwrap(),
        std::slice::from_ref(&k)
    );
    // Replayed, not yet attempted: under way, left alone.
    assert_eq!(replay(run).await.unwrap(), Replay::UnderWay);
    let mut retrying = now.clone();
    retrying.state = State::Failed { retry_at_ms: 5 };
    put(&js, &retrying).await;
    assert_eq!(replay(run).await.unwrap(), Replay::UnderWay);
    assert_eq!(js.load(&k).await.unwrap(), Some(retrying));
    // Delivered: skipped.
    let mut delivered = now.clone();
    delivered.state = State::Succeeded { at_ms: 9 };
    put(&js, &delivered).await;
    assert_eq!(replay(run).await.unwrap(), Replay::Delivered);
    assert_eq!(js.load(&k).await.unwrap(), Some(delivered));

    // Dead, its DLQ record not yet recorded: waited for until the notifier records it.
    put(&js, &dead(&job, false)).await;
    let finisher = {
        let (js, was) = (js.clone(), dead(&job, true));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            put(&js, &was).await;
        })
    };
    assert_eq!(replay(run).await.unwrap(), Replay::Replayed);
    finisher.await.unwrap();
    assert_eq!(js.load(&k).await.unwrap().unwrap().state, State::Pending);

    // Expired after the retention period: created anew (a dry run creates nothing).
    js.kv()
        .exec(vec![Cmd::Del { key: k.clone() }, js.not_due(&k)])
        .await
        .unwrap();
    assert_eq!(replay(dry).await.unwrap(), Replay::Replayed);
    assert_eq!(js.load(&k).await.unwrap(), None);
    assert_eq!(replay(run).await.unwrap(), Replay::Replayed);
    let created = js.load(&k).await.unwrap().unwrap();
    assert_eq!(
        (created.state, created.attempts, created.source_offset),
        (State::Pending, 0, 7)
    );
    assert_eq!(
        js.due(now_ms(), 10).await.unwrap(),
        std::slice::from_ref(&k)
    );

    // A 410 Gone mark: skipped, unless re-enabled (a dry run keeps the mark).
    let gone = dead(&job, true);
    let token = "tok";
    js.claim(&k, token, 10_000).await.unwrap().unwrap();
    js.record(Write {
        job_key: &k,
        token,
        job: &gone,
        next: Next::Done,
        attempt: None,
        gone_at_ms: Some(1),
    })
    .await
    .unwrap();
    assert_eq!(replay(run).await.unwrap(), Replay::Gone);
    let reenable = ReplayOptions {
        reenable_gone: true,
        ..run
    };
    let dry_reenable = ReplayOptions {
        dry_run: true,
        ..reenable
    };
    assert_eq!(replay(dry_reenable).await.unwrap(), Replay::Replayed);
    assert!(js.is_disabled(&gone).await.unwrap());
    assert_eq!(js.load(&k).await.unwrap(), Some(gone.clone()));
    assert_eq!(replay(reenable).await.unwrap(), Replay::Replayed);
    assert!(!js.is_disabled(&gone).await.unwrap());
    assert_eq!(js.load(&k).await.unwrap().unwrap().state, State::Pending);
}

/// A job that stays dead without its DLQ record is given up on, and nothing is written.
#[tokio::test]
async fn replay_gives_up_on_a_delivery_that_is_never_finished() {
    let js = store(MemoryKv::new(), Keys::new("t"));
    let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
    let f = milestone();
    let stuck = dead(&Job::new(&f, &ep, 0, 7, 1000), false);
    put(&js, &stuck).await;
    let r = js.replay(&f, &ep, 0, 7, ReplayOptions::default()).await;
    assert!(matches!(r, Err(ReplayError::KeptChanging)), "{r:?}");
    assert_eq!(js.load(&js.key_of(&stuck)).await.unwrap(), Some(stuck));
}

fn attempt(job: &Job) -> leadstream_shared::delivery::DeliveryAttempt {
    use leadstream_shared::delivery::{AttemptStatus, DeliveryAttempt};
    DeliveryAttempt {
        id: "att_1".into(),
        fired_id: job.fired.fired_id.clone(),
        ou_id: job.fired.ou_id.clone(),
        lead_id: job.fired.lead_id.clone(),
        trigger_id: job.fired.trigger_id.clone(),
        trigger_name: "t".into(),
        channel: job.channel,
        endpoint_id: job.endpoint_id.clone(),
        target: job.target.clone(),
        attempt: 1,
        at_ms: 1001,
        status: AttemptStatus::Succeeded,
        status_code: Some(200),
        error: None,
        latency_ms: 3,
        response_body: None,
        next_attempt_at_ms: None,
    }
}

#[test]
fn jobs_keep_their_trace_context_and_old_jobs_still_decode() {
    let ep = Endpoint::new(Channel::Webhook, "https://h.example.com/x");
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let job = Job::new(&milestone(), &ep, 0, 7, 1000).with_trace(TraceContext::parse(tp, None));
    let back: Job = serde_json::from_slice(&json(&job)).unwrap();
    assert_eq!(
        back.trace.as_ref().map(|t| t.traceparent.as_str()),
        Some(tp)
    );
    // A job stored before the field existed.
    let mut old = serde_json::to_value(Job::new(&milestone(), &ep, 0, 7, 1000)).unwrap();
    assert!(old.get("trace").is_none(), "absent context is not written");
    old.as_object_mut().unwrap().remove("trace");
    let decoded: Job = serde_json::from_value(old).unwrap();
    assert_eq!(decoded.trace, None);
}
