//! Firing history: newest first, filtered and paged. (Leads and OU isolation over state the
//! processor's engine wrote: `e2e/tests/pipeline/scoring_routes/leads.rs`.)

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn history_is_newest_first_filtered_and_paged() {
    let gw = Gw::start(spawn_on_store).await;
    let key = gw.keys.history("unit_default", "milestone");
    let entry = |i: i64| {
        let (trg, lead) = (
            if i % 2 == 0 { "trg_a" } else { "trg_b" },
            if i % 3 == 0 { "ld_x" } else { "ld_y" },
        );
        let fired = leadstream_shared::ids::rfc3339_ms(1_736_935_200_000 + i * 1000);
        let v = json!({"id": format!("fir_{i:02}"), "trigger_id": trg, "trigger_name": "T", "lead_id": lead,
            "event_id": format!("e{i}"), "score": 80, "fired_at": fired, "payload": {"score": 80}});
        Cmd::ZAdd {
            key: key.clone(),
            score: (1_736_935_200_000 + i * 1000) as f64,
            member: serde_json::to_vec(&v).unwrap(),
        }
    };
    gw.store.exec((0..12).map(entry).collect()).await.unwrap();
    let ids = |b: &Value| -> Vec<String> {
        b["milestone_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, all) = gw.get("/milestone-events", ADMIN).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&all).first().map(String::as_str), Some("fir_11"));
    assert_eq!(
        (ids(&all).len(), all["next_cursor"].clone()),
        (12, Value::Null)
    );
    assert_eq!(all["milestone_events"][0]["trigger_id"], "trg_b");

    // Pages of 4 of trg_a (10, 8, 6, 4 | 2, 0), with a new firing recorded between the pages.
    let (_, p1) = gw
        .get("/milestone-events?trigger_id=trg_a&limit=4", ADMIN)
        .await;
    assert_eq!(ids(&p1), ["fir_10", "fir_08", "fir_06", "fir_04"]);
    gw.store.exec(vec![entry(12), entry(14)]).await.unwrap();
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = gw
        .get(
            &format!("/milestone-events?trigger_id=trg_a&limit=4&cursor={cursor}"),
            ADMIN,
        )
        .await;
    assert_eq!(
        (ids(&p2), p2["next_cursor"].clone()),
        (vec!["fir_02".to_string(), "fir_00".into()], Value::Null)
    );
    let (_, x) = gw
        .get(
            "/milestone-events?lead_id=ld_x&trigger_id=trg_a&offset=1&limit=2",
            ADMIN,
        )
        .await;
    assert_eq!(ids(&x), ["fir_06", "fir_00"]);
    for bad in ["limit=0", "limit=501", "limit=x", "cursor=zzz", "offset=-1"] {
        let (s, b) = gw.get(&format!("/milestone-events?{bad}"), ADMIN).await;
        assert_eq!(s, 400, "{bad}: {b}");
    }
    assert_eq!(
        gw.get("/sequence-events", ADMIN).await.1,
        json!({"sequence_events": [], "next_cursor": null})
    );
}
