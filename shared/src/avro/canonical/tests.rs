use super::*;

/// The Avro project's own vectors: `share/test/data/schema-tests.txt` in apache/avro (cases 000 to
/// 033: input, Parsing Canonical Form, and the fingerprint as Java's signed 64-bit number, which
/// the Java suite cross-checks with a direct implementation). Cases without a fingerprint share
/// their canonical form with a case that has one.
const SPEC_VECTORS: &[(&str, &str, Option<i64>)] = &[
    (r#""null""#, r#""null""#, Some(7195948357588979594)),
    (r#"{"type":"null"}"#, r#""null""#, None),
    (r#""boolean""#, r#""boolean""#, Some(-6970731678124411036)),
    (r#"{"type":"boolean"}"#, r#""boolean""#, None),
    (r#""int""#, r#""int""#, Some(8247732601305521295)),
    (r#"{"type":"int"}"#, r#""int""#, None),
    (r#""long""#, r#""long""#, Some(-3434872931120570953)),
    (r#"{"type":"long"}"#, r#""long""#, None),
    (r#""float""#, r#""float""#, Some(5583340709985441680)),
    (r#"{"type":"float"}"#, r#""float""#, None),
    (r#""double""#, r#""double""#, Some(-8181574048448539266)),
    (r#"{"type":"double"}"#, r#""double""#, None),
    (r#""bytes""#, r#""bytes""#, Some(5746618253357095269)),
    (r#"{"type":"bytes"}"#, r#""bytes""#, None),
    (r#""string""#, r#""string""#, Some(-8142146995180207161)),
    (r#"{"type":"string"}"#, r#""string""#, None),
    (r#"[  ]"#, r#"[]"#, Some(-1241056759729112623)),
    (r#"[ "int"  ]"#, r#"["int"]"#, Some(-5232228896498058493)),
    (
        r#"[ "int" , {"type":"boolean"} ]"#,
        r#"["int","boolean"]"#,
        Some(5392556393470105090),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo"}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
        r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
        Some(5916914534497305771),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}"#,
        r#"{"name":"a.b.foo","type":"record","fields":[]}"#,
        Some(-4616218487480524110),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ),
    (
        r#"{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}"#,
        r#"{"name":"foo","type":"record","fields":[]}"#,
        Some(-4824392279771201922),
    ),
    (
        r#"{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}"#,
        Some(7843277075252814651),
    ),
    (
        r#"{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
  "type":"record", "name":"foo"
}"#,
        r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}"#,
        Some(-4860222112080293046),
    ),
    (
        r#"{"type":"enum", "name":"foo", "symbols":["A1"]}"#,
        r#"{"name":"foo","type":"enum","symbols":["A1"]}"#,
        Some(-6342190197741309591),
    ),
    (
        r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
        r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
        Some(-4448647247586288245),
    ),
    (
        r#"{"name":"foo","type":"fixed","size":15}"#,
        r#"{"name":"foo","type":"fixed","size":15}"#,
        Some(1756455273707447556),
    ),
    (
        r#"{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}"#,
        r#"{"name":"x.y.z.foo","type":"fixed","size":32}"#,
        Some(-3064184465700546786),
    ),
    (
        r#"{ "items":{"type":"null"}, "type":"array"}"#,
        r#"{"type":"array","items":"null"}"#,
        Some(-589620603366471059),
    ),
    (
        r#"{ "values":"string", "type":"map"}"#,
        r#"{"type":"map","values":"string"}"#,
        Some(-8732877298790414990),
    ),
    (
        r#"{"name":"PigValue","type":"record",
   "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
        r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
        Some(-1759257747318642341),
    ),
];

#[test]
fn the_specifications_vectors() {
    for (i, (input, canonical, fp)) in SPEC_VECTORS.iter().enumerate() {
        let form = parsing_canonical_form(input).unwrap();
        assert_eq!(&form, canonical, "case {i:03}");
        let ours = fingerprint(input).unwrap();
        assert_eq!(ours, crc64_avro(canonical.as_bytes()), "case {i:03}");
        if let Some(fp) = fp {
            assert_eq!(i64::from_le_bytes(ours), *fp, "case {i:03}");
        }
    }
}

#[test]
fn logical_types_reduce_to_their_primitive() {
    // The case apache-avro 0.21 gets wrong: [PRIMITIVES] after [STRIP].
    let form = parsing_canonical_form(
        r#"{"type":"record","name":"r","fields":[
            {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"u","type":["null",{"type":"string","logicalType":"uuid"}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        form,
        r#"{"name":"r","type":"record","fields":[{"name":"t","type":"long"},{"name":"u","type":["null","string"]}]}"#
    );
}

#[test]
fn nested_names_take_the_enclosing_namespace_and_are_written_once() {
    let form = parsing_canonical_form(
        r#"{"type":"record","name":"Outer","namespace":"a.b","fields":[
            {"name":"x","type":{"type":"record","name":"Inner","fields":[]}},
            {"name":"y","type":"Inner"},
            {"name":"z","type":{"type":"enum","name":"c.E","symbols":["A"]}},
            {"name":"w","type":{"type":"map","values":"c.E"}}]}"#,
    )
    .unwrap();
    assert_eq!(
        form,
        concat!(
            r#"{"name":"a.b.Outer","type":"record","fields":["#,
            r#"{"name":"x","type":{"name":"a.b.Inner","type":"record","fields":[]}},"#,
            r#"{"name":"y","type":"a.b.Inner"},"#,
            r#"{"name":"z","type":{"name":"c.E","type":"enum","symbols":["A"]}},"#,
            r#"{"name":"w","type":{"type":"map","values":"c.E"}}]}"#
        )
    );
}

#[test]
fn bad_schemas_are_clear_errors() {
    for bad in [
        "{",
        "42",
        r#""Unknown""#,
        r#"{"type":"record","fields":[]}"#,
        r#"{"type":"array"}"#,
        r#"{"type":"fixed","name":"f"}"#,
        r#"{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"record","name":"r","fields":[]}}]}"#,
    ] {
        assert!(parsing_canonical_form(bad).is_err(), "{bad}");
    }
}
