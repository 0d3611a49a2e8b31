use super::*;
use proptest::prelude::*;

fn event() -> EngagementEvent {
    let mut metadata = serde_json::Map::new();
    metadata.insert("path".into(), serde_json::json!("/pricing"));
    metadata.insert("n".into(), serde_json::json!({"deep": [1, 2.5, null]}));
    EngagementEvent {
        event_id: "evt_1".into(),
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: Some("ld_1".into()),
        aliases: vec![Alias::normalise(AliasKind::Email, "A@b.co").unwrap()],
        source: Some("brand.pos".into()),
        producer_event_id: Some("txn_1".into()),
        event_type: "page_view".into(),
        event_time_ms: 1_736_935_200_000,
        received_at_ms: 1_736_935_200_123,
        metadata,
        origin: Origin::Cdp,
        environment: Some("production".into()),
        severity: None,
    }
}

#[test]
fn event_round_trips() {
    let e = event();
    let bytes = encode_event(&e).unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    assert_eq!(decode_event(&bytes).unwrap(), e);
}

#[test]
fn header_is_the_standard_single_object_header() {
    // The crate's own single-object writer must produce the same first ten bytes.
    let mut w =
        apache_avro::GenericSingleObjectWriter::new_with_capacity(EVENT_CODEC.schema(), 1024)
            .unwrap();
    let mut buf = Vec::new();
    let ours = encode_event(&event()).unwrap();
    let Value::Record(fields) =
        apache_avro::from_avro_datum(EVENT_CODEC.schema(), &mut &ours[10..], None).unwrap()
    else {
        panic!("not a record")
    };
    w.write_value(Value::Record(fields), &mut buf).unwrap();
    assert_eq!(&buf[..10], &ours[..10]);
    assert_eq!(buf, ours);
}

#[test]
fn a_record_written_with_schema_v1_is_still_read() {
    let v1 = Schema::parse_str(ENGAGEMENT_EVENT_V1_SCHEMA).unwrap();
    let value = Value::Record(vec![
        ("event_id".into(), s("evt_old")),
        ("org_id".into(), s("org_default")),
        ("ou_id".into(), s("unit_default")),
        ("lead_id".into(), Value::Union(1, Box::new(s("ld_9")))),
        ("aliases".into(), Value::Array(vec![])),
        ("source".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "producer_event_id".into(),
            Value::Union(0, Box::new(Value::Null)),
        ),
        ("event_type".into(), s("email_open")),
        ("event_time".into(), Value::TimestampMillis(1000)),
        ("received_at".into(), Value::TimestampMillis(2000)),
        ("metadata_json".into(), s("{\"a\":1}")),
        ("origin".into(), s("kafka")),
    ]);
    let mut bytes = RabinFingerprintHeader::from_schema(&v1).build_header();
    bytes.extend(apache_avro::to_avro_datum(&v1, value).unwrap());
    let e = decode_event(&bytes).unwrap();
    assert_eq!(e.event_id, "evt_old");
    assert_eq!(e.lead_id.as_deref(), Some("ld_9"));
    assert_eq!(e.environment, None, "new field takes its default");
    assert_eq!(e.metadata["a"], 1);
    assert_eq!(e.origin, Origin::Kafka);
}

#[test]
fn fired_round_trips() {
    let f = TriggerFired {
        fired_id: "fir_1".into(),
        org_id: "org_default".into(),
        ou_id: "unit_default".into(),
        lead_id: "ld_1".into(),
        trigger_id: "trg_1".into(),
        trigger_name: "Hot Lead Alert".into(),
        kind: TriggerKind::Milestone,
        event_id: "evt_1".into(),
        fired_at_ms: 5,
        score: 82,
        payload: serde_json::json!({"trigger": {"id": "trg_1"}, "score": 82}),
        targets: Targets {
            webhook_url: Some("https://hooks.example.com/x".into()),
            emails: vec!["sales@example.com".into()],
            email_subject: Some("Hot".into()),
            ..Targets::default()
        },
    };
    assert_eq!(decode_fired(&encode_fired(&f).unwrap()).unwrap(), f);
}

#[test]
fn dead_letter_round_trips() {
    let d = DeadLetter {
        reason: "bad".into(),
        source_topic: "t".into(),
        source_partition: 3,
        source_offset: 42,
        key: Some(b"k".to_vec()),
        payload: vec![0, 1, 2],
        failed_at_ms: 7,
        target: None,
        attempts: 0,
    };
    assert_eq!(
        decode_dead_letter(&encode_dead_letter(&d).unwrap()).unwrap(),
        d
    );
}

#[test]
fn garbage_is_a_clear_error() {
    assert!(matches!(decode_event(b"{}"), Err(AvroError::TooShort(2))));
    assert!(matches!(
        decode_event(b"0123456789abc"),
        Err(AvroError::NoMarker)
    ));
    let mut unknown = vec![0xC3, 0x01];
    unknown.extend([9u8; 10]);
    assert!(matches!(
        decode_event(&unknown),
        Err(AvroError::UnknownSchema(_))
    ));
    let good = encode_event(&event()).unwrap();
    for cut in 1..good.len() - 10 {
        assert!(
            decode_event(&good[..good.len() - cut]).is_err(),
            "truncated by {cut}"
        );
    }
    assert!(decode_fired(&good).is_err(), "wrong schema");
}

proptest! {
    #[test]
    fn decoding_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let good = encode_event(&event()).unwrap();
        let mut bytes = good[..10].to_vec();
        bytes.extend(tail);
        let _ = decode_event(&bytes);
    }

    #[test]
    fn truncations_never_panic(cut in 0usize..400) {
        let good = encode_event(&event()).unwrap();
        let cut = cut.min(good.len());
        let _ = decode_event(&good[..cut]);
    }
}
