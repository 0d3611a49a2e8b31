//! `GET /deliveries` reads the delivery log the notifier writes: filters, newest first, paging,
//! OU isolation and precise errors for bad filters.

use leadstream_shared::delivery::{record_cmds, AttemptStatus, Channel, DeliveryAttempt};
use serde_json::json;

use super::*;

fn attempt(n: u32, ou: &str, fired: &str, lead: &str, status: AttemptStatus) -> DeliveryAttempt {
    DeliveryAttempt {
        id: format!("att_{fired}_{n}"),
        fired_id: fired.into(),
        ou_id: ou.into(),
        lead_id: lead.into(),
        trigger_id: "trg_1".into(),
        trigger_name: "Hot Lead Alert".into(),
        channel: Channel::Webhook,
        endpoint_id: "ep_1".into(),
        target: "https://hooks.example.com/leadvibe".into(),
        attempt: n,
        at_ms: 1_736_935_200_000 + i64::from(n) * 1000,
        status,
        status_code: Some(if status == AttemptStatus::Succeeded {
            200
        } else {
            503
        }),
        error: None,
        latency_ms: 12,
        response_body: Some("ok".into()),
        next_attempt_at_ms: None,
    }
}

#[tokio::test]
async fn deliveries_are_filtered_paged_and_ou_scoped() {
    let gw = Gw::start(spawn_on_store).await;
    let keys = gw.keys.clone();
    let mut cmds = Vec::new();
    for a in [
        attempt(1, "unit_default", "fir_a", "ld_1", AttemptStatus::Retrying),
        attempt(2, "unit_default", "fir_a", "ld_1", AttemptStatus::Succeeded),
        attempt(3, "unit_default", "fir_b", "ld_2", AttemptStatus::Succeeded),
        attempt(4, "ou_other", "fir_c", "ld_9", AttemptStatus::Failed),
    ] {
        cmds.extend(record_cmds(&keys, &a, 3_600_000));
    }
    gw.store.exec(cmds).await.expect("write the log");

    let (s, all) = gw.get("/deliveries", ADMIN).await;
    assert_eq!(s, 200, "{all}");
    let ids: Vec<&str> = all["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["att_fir_b_3", "att_fir_a_2", "att_fir_a_1"],
        "newest first, this OU only"
    );

    let (_, by_fired) = gw
        .get("/deliveries?fired_id=fir_a&status=succeeded", ADMIN)
        .await;
    assert_eq!(by_fired["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(by_fired["deliveries"][0]["status_code"], 200);

    let (_, page) = gw.get("/deliveries?limit=2", ADMIN).await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], json!(2));

    let (s, bad) = gw.get("/deliveries?status=exploded", ADMIN).await;
    assert_eq!(s, 400, "{bad}");
    assert!(bad.to_string().contains("status"), "{bad}");
    let (s, bad) = gw.get("/deliveries?limit=0", ADMIN).await;
    assert_eq!(s, 400, "{bad}");
    let (s, bad) = gw.get("/deliveries?colour=red", ADMIN).await;
    assert_eq!(s, 400, "{bad}");
    let (s, _) = gw.get("/deliveries", "lsk_not_a_key").await;
    assert_eq!(s, 401);
}
