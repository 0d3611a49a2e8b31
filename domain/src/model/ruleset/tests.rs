use super::*;
use serde_json::json;

fn create(v: Value) -> Result<Ruleset, Vec<ValidationError>> {
    let req: CreateRuleset =
        serde_json::from_value(v).map_err(|e| vec![ValidationError::new("body", e.to_string())])?;
    req.validate("rs_1".into(), "2025-01-15T10:00:00Z")
}

/// Every fault, `; `-separated.
fn faults(e: Vec<ValidationError>) -> String {
    e.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn err(rules: Value) -> String {
    match create(json!({"name": "Engagement", "rules": rules})) {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => faults(e),
    }
}

#[test]
fn create_assigns_rule_ids_and_defaults() {
    let rs = create(
        json!({"name": "Engagement", "decay": {"half_life_seconds": 86400}, "rules": [
            {"event_type": "page_view", "points": 5,
             "conditions": [{"field": "metadata.path", "op": "eq", "value": "/pricing"}]},
            {"id": "r7", "event_type": "unsubscribe", "points": -20, "max_points": 40},
            {"event_type": "*", "points": 1, "frequency": {"max": 3, "period_seconds": 3600}},
        ]}),
    )
    .unwrap();
    assert!(rs.active);
    let ids: Vec<&str> = rs.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r8", "r7", "r9"]);
    assert_eq!(rs.rules[0].conditions[0].op, Op::Eq);
    assert_eq!(
        rs.rules[2].frequency,
        Some(Frequency {
            max: 3,
            period_seconds: 3600
        })
    );
    assert_eq!(
        rs.decay,
        Some(Decay {
            half_life_seconds: 86400
        })
    );
    let v = serde_json::to_value(&rs).unwrap();
    assert_eq!(v["rules"][0]["max_points"], Value::Null);
    assert_eq!(serde_json::from_value::<Ruleset>(v).unwrap(), rs);
}

#[test]
fn validation_messages_name_the_field() {
    assert_eq!(
        faults(create(json!({"rules": []})).unwrap_err()),
        "name is required"
    );
    assert!(create(json!({"name": "x", "rulez": []})).unwrap_err()[0]
        .message
        .contains("unknown field `rulez`"));
    assert_eq!(err(json!({})), "rules must be an array");
    assert_eq!(err(json!([5])), "rules[0] must be an object");
    assert!(err(json!([{"event_type": "a", "pts": 1}])).starts_with("rules[0] unknown field `pts`"));
    assert_eq!(
        err(json!([{"points": 1}])),
        "rules[0].event_type is required"
    );
    assert_eq!(
        err(json!([{"event_type": "a"}])),
        "rules[0].points is required"
    );
    assert_eq!(
        err(json!([{"event_type": "a", "points": 1.5}])),
        "rules[0].points must be an integer"
    );
    assert_eq!(
        err(json!([{"event_type": "a", "points": 1, "max_points": 0}])),
        "rules[0].max_points must be between 1 and 1000000000"
    );
    assert_eq!(
        err(json!([{"id": "a b", "event_type": "a", "points": 1}])),
        "rules[0].id must be 1 to 64 letters, digits, '_', '-' or '.'"
    );
    assert_eq!(
        err(
            json!([{"id": "x", "event_type": "a", "points": 1}, {"id": "x", "event_type": "b", "points": 1}])
        ),
        "rules[1].id duplicates rules[0].id"
    );
    assert_eq!(
        err(
            json!([{"event_type": "a", "points": 1, "frequency": {"max": 0, "period_seconds": 5}}])
        ),
        "rules[0].frequency.max must be between 1 and 1000"
    );
    assert_eq!(
        err(json!([{"event_type": "a", "points": 1, "frequency": {"max": 2}}])),
        "rules[0].frequency.period_seconds is required"
    );
    let cond = |c: Value| {
        err(
            json!([{"event_type": "a", "points": 1}, {"event_type": "a", "points": 1}, {"event_type": "a", "points": 1, "conditions": [c]}]),
        )
    };
    assert_eq!(
        cond(json!({"field": "metadata.x", "op": "like", "value": 1})),
        "rules[2].conditions[0].op must be one of eq, ne, contains, exists, gt, gte, lt, lte"
    );
    assert_eq!(
        cond(json!({"field": "metadata.x", "op": "gt", "value": "5"})),
        "rules[2].conditions[0].value must be a number for op gt"
    );
    assert_eq!(
        cond(json!({"field": "metadata.x", "op": "eq"})),
        "rules[2].conditions[0].value is required for op eq"
    );
    assert_eq!(
        cond(json!({"field": "metadata.x", "op": "exists", "value": 1})),
        "rules[2].conditions[0].value must be a boolean for op exists"
    );
    assert_eq!(
        cond(json!({"field": "metadata.x", "op": "contains", "value": [1]})),
        "rules[2].conditions[0].value must be a string, number or boolean for op contains"
    );
    assert_eq!(
        cond(json!({"field": "email", "op": "exists"})),
        "rules[2].conditions[0].field must be event_type, source or metadata.<path>"
    );
    assert_eq!(
        cond(json!({"field": "metadata..a", "op": "exists"})),
        "rules[2].conditions[0].field must be event_type, source or metadata.<path>"
    );
    assert_eq!(
        faults(create(json!({"name": "x", "decay": {"half_life_seconds": 0}})).unwrap_err()),
        "decay.half_life_seconds must be between 1 and 315360000"
    );
}

#[test]
fn replace_and_patch_keep_identity_and_number_past_old_rules() {
    let rs = create(
        json!({"name": "a", "active": false, "decay": {"half_life_seconds": 60},
        "rules": [{"event_type": "x", "points": 1}, {"event_type": "y", "points": 2}]}),
    )
    .unwrap();
    let put: ReplaceRuleset = serde_json::from_value(json!({"name": "b", "rules": [
        {"id": "r2", "event_type": "y", "points": 3}, {"event_type": "z", "points": 1}]}))
    .unwrap();
    let r = put.validate(&rs, "2025-02-01T00:00:00Z").unwrap();
    assert_eq!(
        (r.id.as_str(), r.created_at.as_str(), r.updated_at.as_str()),
        ("rs_1", "2025-01-15T10:00:00Z", "2025-02-01T00:00:00Z")
    );
    let ids: Vec<&str> = r.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["r2", "r3"],
        "a new rule never reuses r1's per-lead state"
    );
    assert!(!r.active);
    assert_eq!(r.decay, None);
    let patch: PatchRuleset =
        serde_json::from_value(json!({"active": true, "decay": null})).unwrap();
    let p = patch.validate(&rs, "2025-02-01T00:00:00Z").unwrap();
    assert!(p.active);
    assert_eq!((p.decay, p.rules.len(), p.name.as_str()), (None, 2, "a"));
}

#[test]
fn every_faulty_field_is_reported_at_once() {
    let e = create(json!({"active": "yes", "rules": [{"points": 1}],
                          "decay": {"half_life_seconds": 0}}))
    .unwrap_err();
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "active",
            "rules[0].event_type",
            "decay.half_life_seconds"
        ]
    );
}
