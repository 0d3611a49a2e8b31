use super::*;
use apache_avro::headers::{HeaderBuilder, RabinFingerprintHeader};
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

/// The fingerprints of `schemas/` as the specification defines them, each printed by Python's
/// fastavro 1.13 (`fingerprint(to_parsing_canonical_form(parse_schema(...)), "CRC-64-AVRO")`) and,
/// for the events schema, by Java's `SchemaNormalization` as quoted in issue 18
/// (`0x058bd3a060e6b920`). The interop test (`e2e/tests/pipeline/interop.rs`) checks the same
/// agreement at run time against fastavro itself.
#[test]
fn fingerprints_agree_with_other_avro_implementations() {
    let cases = [
        (&*EVENT_CODEC, "20b9e660a0d38b05"),
        (&*FIRED_CODEC, "51b352a586393fad"),
        (&*DEAD_LETTER_CODEC, "1905fa40e8370c7c"),
    ];
    for (codec, fp) in cases {
        assert_eq!(hex::encode(&codec.header()[2..]), fp);
    }
    assert_eq!(
        u64::from_le_bytes(EVENT_CODEC.header()[2..].try_into().unwrap()),
        0x058bd3a060e6b920
    );
    assert_eq!(
        hex::encode(canonical::fingerprint(ENGAGEMENT_EVENT_V1_SCHEMA).unwrap()),
        "8e7fd07aa81b1c00"
    );
}

#[test]
fn records_are_the_header_then_the_plain_avro_body() {
    let ours = encode_event(&event()).unwrap();
    assert_eq!(ours[..10], EVENT_CODEC.header());
    let Value::Record(fields) =
        apache_avro::from_avro_datum(EVENT_CODEC.schema(), &mut &ours[10..], None).unwrap()
    else {
        panic!("not a record")
    };
    let body = apache_avro::to_avro_datum(EVENT_CODEC.schema(), Value::Record(fields)).unwrap();
    assert_eq!(&ours[10..], &body[..]);
}

#[test]
fn records_with_the_legacy_fingerprint_stay_readable() {
    // apache-avro 0.21's own single-object writer: the header leadstream wrote before.
    let legacy = |codec: &Codec, body: Vec<u8>| {
        let mut out = RabinFingerprintHeader::from_schema(codec.schema()).build_header();
        assert_ne!(out[..], codec.header()[..], "the legacy header differs");
        out.extend(body);
        out
    };
    let e = event();
    let body = encode_event(&e).unwrap()[10..].to_vec();
    assert_eq!(decode_event(&legacy(&EVENT_CODEC, body)).unwrap(), e);
    let d = DeadLetter {
        reason: "r".into(),
        source_topic: "t".into(),
        source_partition: 0,
        source_offset: 1,
        key: None,
        payload: vec![1],
        failed_at_ms: 2,
        target: None,
        attempts: 1,
    };
    let body = encode_dead_letter(&d).unwrap()[10..].to_vec();
    assert_eq!(
        decode_dead_letter(&legacy(&DEAD_LETTER_CODEC, body)).unwrap(),
        d
    );
    let legacy_count = EVENT_CODEC.read_fingerprints().filter(|(_, l)| *l).count();
    assert_eq!(
        legacy_count, 2,
        "v2 and v1 each under their legacy fingerprint"
    );
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
    let body = apache_avro::to_avro_datum(&v1, value).unwrap();
    // Under its specification fingerprint and under the legacy one.
    let mut bytes = vec![0xC3, 0x01];
    bytes.extend(canonical::fingerprint(ENGAGEMENT_EVENT_V1_SCHEMA).unwrap());
    bytes.extend(&body);
    let mut legacy = RabinFingerprintHeader::from_schema(&v1).build_header();
    legacy.extend(&body);
    assert_eq!(
        decode_event(&legacy).unwrap(),
        decode_event(&bytes).unwrap()
    );
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

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(".{0,300}")
}

prop_compose! {
    fn any_event()(
        ids in proptest::collection::vec(".{0,40}", 4),
        lead_id in opt_text(),
        aliases in proptest::collection::vec((0usize..5, "[a-z0-9@.]{1,200}"), 0..4),
        (source, producer_event_id, environment, severity) in (opt_text(), opt_text(), opt_text(), opt_text()),
        times in (any::<i64>(), any::<i64>()),
        metadata in proptest::collection::btree_map("[a-zé_]{0,12}", "\\PC{0,80}", 0..6),
        origin in 0usize..5,
    ) -> EngagementEvent {
        let origins = [Origin::Ingest, Origin::Events, Origin::Cdp, Origin::Import, Origin::Kafka];
        EngagementEvent {
            event_id: ids[0].clone(),
            org_id: ids[1].clone(),
            ou_id: ids[2].clone(),
            lead_id,
            aliases: aliases
                .into_iter()
                .map(|(k, v)| Alias { kind: AliasKind::ALL[k], value: v })
                .collect(),
            source,
            producer_event_id,
            event_type: ids[3].clone(),
            event_time_ms: times.0,
            received_at_ms: times.1,
            metadata: metadata
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
            origin: origins[origin],
            environment,
            severity,
        }
    }
}

proptest! {
    /// The direct encoder writes exactly what apache-avro's generic encoder writes for the same
    /// schema: long strings (multi-byte length prefixes), empty and several aliases, extreme
    /// timestamps, non-ASCII text.
    #[test]
    fn direct_encoder_matches_the_generic_one(e in any_event()) {
        // (Not decoded back: the decoder validates aliases, which these random values are not.)
        prop_assert_eq!(encode_event(&e).unwrap(), encode_event_generic(&e).unwrap());
    }
}

#[test]
fn direct_encoder_matches_the_generic_one_on_the_fixture() {
    assert_eq!(
        encode_event(&event()).unwrap(),
        encode_event_generic(&event()).unwrap()
    );
    let mut big = event();
    big.metadata
        .insert("long".into(), serde_json::json!("x".repeat(70_000)));
    assert_eq!(
        encode_event(&big).unwrap(),
        encode_event_generic(&big).unwrap()
    );
}
