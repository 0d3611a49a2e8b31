//! Ingest → fired latency at a steady load, end to end in one process: the real gateway (HTTP),
//! a real tansu broker, the real processor and Redis. Each request is timed from just before the
//! HTTP call until its firing arrives on the fired topic; with `BENCH_WEBHOOK=1` the real notifier
//! runs too and each request is also timed until its signed webhook reaches a local receiver.
//!
//! `cargo bench -p leadstream-e2e --bench latency`
//! Knobs: BENCH_RATE (events/s, default 200), BENCH_EVENTS (default 2000), BENCH_SEQUENCES
//! (0: every event crosses a milestone for a new lead; N > 0: every lead completes a two-step
//! sequence among N active ones, timed from the second step), BENCH_FETCH_WAIT_MS (consumer
//! long-poll, default 100), BENCH_WEBHOOK (1: also ingest → webhook). Prints a `PERF {json}` line for `scripts/perf-report` beside the
//! human one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leadstream_shared::avro::decode_fired;
use leadstream_shared::kafka::KafkaSettings;
use leadstream_testkit::receiver::Receiver;
use leadstream_testkit::{redis_url, unique, Broker};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "bench-admin-key-0123456789abcdefghij";

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// When each `webhook-id` (the fired id) first reached the receiver.
fn first_arrivals(rx: &Receiver) -> HashMap<String, Instant> {
    let mut first = HashMap::new();
    for r in rx.on("/hook") {
        first.entry(r.webhook_id).or_insert(r.at);
    }
    first
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let rate = knob("BENCH_RATE", 200).max(1);
    let events = knob("BENCH_EVENTS", 2000);
    let sequences = knob("BENCH_SEQUENCES", 0);
    let fetch_wait = knob("BENCH_FETCH_WAIT_MS", 100);
    let webhook = knob("BENCH_WEBHOOK", 0) == 1;
    let broker = Broker::start();
    let prefix = unique("lat");
    let hooks = Receiver::start().await;
    let target = if webhook {
        hooks.url("/hook")
    } else {
        "https://hooks.example.com/x".to_string()
    };
    let env: BTreeMap<String, String> = [
        ("LEADSTREAM_KAFKA_BROKERS", broker.addr()),
        ("LEADSTREAM_KAFKA_TEST_BROKER_QUIRKS", "true".to_string()),
        ("LEADSTREAM_REDIS_URL", redis_url()),
        ("LEADSTREAM_TOPIC_PREFIX", prefix.clone()),
        ("LEADSTREAM_REDIS_PREFIX", prefix.clone()),
        ("LEADSTREAM_HTTP_ADDR", "127.0.0.1:0".into()),
        ("LEADSTREAM_PARTITIONS", "4".into()),
        ("LEADSTREAM_BOOTSTRAP_ADMIN_KEY", ADMIN.into()),
        ("LEADSTREAM_PROCESSOR_GROUP", format!("{prefix}-processor")),
        ("LEADSTREAM_KAFKA_FETCH_WAIT_MAX_MS", fetch_wait.to_string()),
        ("LEADSTREAM_SHUTDOWN_DELAY", "0s".into()),
        ("LEADSTREAM_NOTIFIER_GROUP", format!("{prefix}-notifier")),
        ("LEADSTREAM_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1/32".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let shutdown = CancellationToken::new();
    let gw = leadstream_gateway::spawn(
        leadstream_gateway::GatewayConfig::from_source(&env).expect("gateway config"),
        shutdown.clone(),
    )
    .await
    .expect("gateway");
    let pcfg = leadstream_processor::ProcessorConfig::from_source(&env).expect("processor config");
    let ptoken = shutdown.clone();
    let processor = tokio::spawn(async move { leadstream_processor::run(pcfg, ptoken).await });
    let notifier = webhook.then(|| {
        let ncfg = leadstream_notifier::NotifierConfig::from_source(&env).expect("notifier config");
        tokio::spawn(leadstream_notifier::run(ncfg, shutdown.clone()))
    });
    let base = format!("http://{}", gw.addr);
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    if sequences == 0 {
        let r = post(
            "/rulesets",
            json!({"name": "b", "rules": [{"event_type": "page_view", "points": 10}]}),
        )
        .await
        .expect("ruleset");
        assert_eq!(r.status(), 201);
        let r = post(
            "/triggers",
            json!({"name": "t", "score_threshold": 10, "webhook_url": target}),
        )
        .await
        .expect("trigger");
        assert_eq!(r.status(), 201);
    } else {
        for i in 0..sequences {
            let types = if i == 0 {
                json!(["step_a", "step_b"])
            } else {
                json!([format!("x{i}"), "step_b", format!("y{i}")])
            };
            let r = post("/sequences", json!({"name": format!("s{i}"), "event_types": types, "window_seconds": 3600, "ordered": true, "webhook_url": target})).await.expect("sequence");
            assert_eq!(r.status(), 201);
        }
    }
    // Read the fired topic from the start; note when each lead's firing arrives and its id.
    let arrivals: Arrivals = Arc::default();
    let fired_ids: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    // The reader long-polls like the services do, so it adds no more than they do.
    let mut reader = KafkaSettings::new(broker.addr());
    reader.fetch_wait_max_ms = fetch_wait as u32;
    let consumer: StreamConsumer = reader
        .consumer_config(&unique("lat-reader"))
        .create()
        .expect("consumer");
    consumer
        .subscribe(&[&format!("{prefix}.triggers.fired.v1")])
        .expect("subscribe");
    let (a, ids) = (arrivals.clone(), fired_ids.clone());
    tokio::spawn(async move {
        loop {
            if let Ok(m) = consumer.recv().await {
                if let Some(f) = m.payload().and_then(|p| decode_fired(p).ok()) {
                    ids.lock()
                        .unwrap()
                        .entry(f.lead_id.clone())
                        .or_insert(f.fired_id);
                    a.lock()
                        .unwrap()
                        .entry(f.lead_id)
                        .or_insert_with(Instant::now);
                }
            }
        }
    });
    // Warm up: the first firing pays for topic metadata and the processor's group join; wait
    // for one before timing anything.
    for ty in if sequences > 0 {
        vec!["step_a", "step_b"]
    } else {
        vec!["page_view"]
    } {
        let r = post("/ingest", json!({"lead_id": "ld_warmup", "event_type": ty}))
            .await
            .expect("warm-up");
        assert_eq!(r.status(), 202);
    }
    let warm_deadline = Instant::now() + Duration::from_secs(60);
    let warm = |arrivals: &Arrivals| {
        arrivals.lock().unwrap().contains_key("ld_warmup")
            && (!webhook
                || fired_ids
                    .lock()
                    .unwrap()
                    .get("ld_warmup")
                    .is_some_and(|id| first_arrivals(&hooks).contains_key(id)))
    };
    while !warm(&arrivals) {
        assert!(
            Instant::now() < warm_deadline,
            "no firing for the warm-up event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..events {
        tick.tick().await;
        let lead = format!("ld_bench_{i}");
        let (http, base, sent) = (http.clone(), base.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let send = |ty: &'static str| {
                http.post(format!("{base}/ingest"))
                    .bearer_auth(ADMIN)
                    .json(&json!({"lead_id": lead, "event_type": ty}))
                    .send()
            };
            if sequences > 0 {
                let r = send("step_a").await.expect("step a");
                assert_eq!(r.status(), 202);
            }
            let t = Instant::now();
            let r = send(if sequences > 0 { "step_b" } else { "page_view" })
                .await
                .expect("event");
            assert_eq!(r.status(), 202);
            sent.lock().unwrap().insert(lead.clone(), t);
        }));
    }
    for t in tasks {
        t.await.expect("request task");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline
        && (arrivals.lock().unwrap().len() < events as usize + 1
            || (webhook && first_arrivals(&hooks).len() < events as usize + 1))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = sent.lock().unwrap().clone();
    let arrivals = arrivals.lock().unwrap().clone();
    let mut lat: Vec<Duration> = sent
        .iter()
        .filter_map(|(lead, t)| arrivals.get(lead).map(|a| a.saturating_duration_since(*t)))
        .collect();
    lat.sort();
    let pct = |q: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let ids = fired_ids.lock().unwrap().clone();
    let hooks = first_arrivals(&hooks);
    let mut hook_lat: Vec<Duration> = sent
        .iter()
        .filter_map(|(lead, t)| {
            let at = hooks.get(ids.get(lead)?)?;
            Some(at.saturating_duration_since(*t))
        })
        .collect();
    hook_lat.sort();
    let hook_pct = |q: f64| {
        hook_lat
            .get(((hook_lat.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let workload = if sequences == 0 {
        "milestone per event".to_string()
    } else {
        format!("{sequences} active sequences")
    };
    println!(
        "ingest -> fired: {events} events at {rate}/s ({:.1}s), {workload} (gateway + processor in one process), tansu 0.6 memory, 4 partitions, fetch.wait.max.ms={fetch_wait}, linger.ms=5",
        started.elapsed().as_secs_f64(),
    );
    println!(
        "  fired {}/{events}; latency p50 {:?} p99 {:?} max {:?}",
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or_default()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "PERF {}",
        json!({"name": "ingest_fired", "sequences": sequences, "events": events, "rate": rate,
               "fired": lat.len(), "p50_ms": ms(pct(0.5)), "p99_ms": ms(pct(0.99)),
               "max_ms": ms(lat.last().copied().unwrap_or_default()),
               "fetch_wait_ms": fetch_wait, "partitions": 4})
    );
    if webhook {
        println!(
            "  ingest -> webhook (notifier in the same process, local receiver): delivered {}/{events}; latency p50 {:?} p99 {:?} max {:?}",
            hook_lat.len(),
            hook_pct(0.5),
            hook_pct(0.99),
            hook_lat.last().copied().unwrap_or_default()
        );
        println!(
            "PERF {}",
            json!({"name": "ingest_webhook", "sequences": sequences, "events": events, "rate": rate,
                   "delivered": hook_lat.len(), "p50_ms": ms(hook_pct(0.5)),
                   "p99_ms": ms(hook_pct(0.99)),
                   "max_ms": ms(hook_lat.last().copied().unwrap_or_default()),
                   "fetch_wait_ms": fetch_wait, "partitions": 4})
        );
    }
    shutdown.cancel();
    let _ = processor.await;
    if let Some(n) = notifier {
        let _ = n.await;
    }
    let _ = gw.handle.await;
}
