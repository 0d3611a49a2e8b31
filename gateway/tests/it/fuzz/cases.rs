//! The ingredients of a fuzz case: what happens to the valid body ([`Mutation`], [`Bad`]
//! values), its encoding, content type, credential, active-OU header, query string and path ids.

use proptest::prelude::*;
use serde_json::{json, Value};

/// A value to put where a valid one was.
#[derive(Debug, Clone)]
pub(super) enum Bad {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Huge(usize),
    Deep(usize),
    Wide(usize),
}

pub(super) fn bad() -> impl Strategy<Value = Bad> {
    let odd = [
        "",
        " ",
        "\u{0}",
        "\u{202e}x",
        "ld_1\n",
        "../../etc/passwd",
        "a@b",
        "1e400",
        "NaN",
        "2025-13-45T99:99:99Z",
        "-1",
        "99999999999999999999",
        "%FF",
        "unit_default\r\nx: y",
    ];
    prop_oneof![
        Just(Bad::Null),
        any::<bool>().prop_map(Bad::Bool),
        prop_oneof![any::<i64>(), Just(i64::MIN), Just(-1i64), Just(0i64)].prop_map(Bad::Int),
        prop::sample::select(vec![0.5, -1.5, 1e300, -1e300]).prop_map(Bad::Float),
        "\\PC{0,24}".prop_map(Bad::Text),
        prop::sample::select(odd.to_vec()).prop_map(|s| Bad::Text(s.into())),
        prop::sample::select(vec![600usize, 70_000, 300_000]).prop_map(Bad::Huge),
        prop::sample::select(vec![20usize, 120]).prop_map(Bad::Deep),
        prop::sample::select(vec![200usize, 5_000]).prop_map(Bad::Wide),
    ]
}

pub(super) fn value_of(b: &Bad) -> Value {
    match b {
        Bad::Null => Value::Null,
        Bad::Bool(x) => json!(x),
        Bad::Int(n) => json!(n),
        Bad::Float(f) => json!(f),
        Bad::Text(s) => json!(s),
        Bad::Huge(n) => json!("é".repeat(n / 2)),
        Bad::Deep(n) => (0..*n).fold(json!("leaf"), |v, i| {
            if i % 2 == 0 {
                json!([v])
            } else {
                json!({"k": v})
            }
        }),
        Bad::Wide(n) => Value::Object((0..*n).map(|i| (format!("k{i}"), json!(i))).collect()),
    }
}

/// What happens to the valid body.
#[derive(Debug, Clone)]
pub(super) enum Mutation {
    Valid,
    Set(usize, Bad),
    Remove(usize),
    Add(String, Bad),
    InvalidUtf8(usize),
    Truncate(u16),
    Json(Value),
    Bytes(Vec<u8>),
    DeepRaw(usize),
}

pub(super) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub(super) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::Valid),
        6 => (any::<usize>(), bad()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => ("[a-zA-Z_]{1,10}", bad()).prop_map(|(k, b)| Mutation::Add(k, b)),
        2 => any::<usize>().prop_map(Mutation::InvalidUtf8),
        1 => (1u16..1000).prop_map(Mutation::Truncate),
        1 => arb_json().prop_map(Mutation::Json),
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Mutation::Bytes),
        1 => prop::sample::select(vec![127usize, 128, 129, 100_000]).prop_map(Mutation::DeepRaw),
    ]
}

/// Every position in a document, as a path of keys / indexes.
pub(super) fn positions(v: &Value, at: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    let kids: Vec<(Value, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, x)| (json!(k), x)).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, x)| (json!(i), x)).collect(),
        _ => return,
    };
    for (k, x) in kids {
        let mut p = at.clone();
        p.push(k);
        out.push(p.clone());
        positions(x, p, out);
    }
}

/// The parent container of the position and the last step.
pub(super) fn slot<'a>(v: &'a mut Value, path: &[Value]) -> Option<(&'a mut Value, Value)> {
    let (last, init) = path.split_last()?;
    let mut cur = v;
    for step in init {
        cur = match step {
            Value::String(k) => cur.get_mut(k.as_str())?,
            Value::Number(i) => cur.get_mut(i.as_u64()? as usize)?,
            _ => return None,
        };
    }
    Some((cur, last.clone()))
}

pub(super) fn put(v: &mut Value, path: &[Value], new: Option<Value>) {
    let Some((parent, last)) = slot(v, path) else {
        return;
    };
    match (parent, last, new) {
        (Value::Object(m), Value::String(k), Some(n)) => {
            m.insert(k, n);
        }
        (Value::Object(m), Value::String(k), None) => {
            m.remove(&k);
        }
        (Value::Array(a), Value::Number(i), Some(n)) => a[i.as_u64().unwrap_or(0) as usize] = n,
        (Value::Array(a), Value::Number(i), None) => {
            a.remove(i.as_u64().unwrap_or(0) as usize);
        }
        _ => {}
    }
}

/// The request body after the mutation.
pub(super) fn mutate(valid: Option<&Value>, m: &Mutation) -> Vec<u8> {
    let mut v = valid.cloned().unwrap_or_else(|| json!({}));
    let mut paths = Vec::new();
    positions(&v, Vec::new(), &mut paths);
    let pick = |i: &usize| paths.get(i % paths.len().max(1)).cloned();
    match m {
        Mutation::Valid => {}
        Mutation::Set(i, b) => match pick(i) {
            Some(p) => put(&mut v, &p, Some(value_of(b))),
            None => v = value_of(b),
        },
        Mutation::Remove(i) => pick(i).into_iter().for_each(|p| put(&mut v, &p, None)),
        Mutation::Add(k, b) => {
            if let Some(o) = v.as_object_mut() {
                o.insert(k.clone(), value_of(b));
            }
        }
        Mutation::InvalidUtf8(i) => {
            match pick(i) {
                Some(p) => put(&mut v, &p, Some(json!("@@BAD@@"))),
                None => v = json!("@@BAD@@"),
            }
            let text = serde_json::to_string(&v).unwrap();
            return text
                .replace("@@BAD@@", "a\u{FFFF}b")
                .into_bytes()
                .into_iter()
                .flat_map(|c| {
                    if c == 0xEF {
                        vec![0xC3, 0x28, 0xFF]
                    } else {
                        vec![c]
                    }
                })
                .collect();
        }
        Mutation::Truncate(permille) => {
            let b = serde_json::to_vec(&v).unwrap();
            return b[..b.len() * *permille as usize / 1000].to_vec();
        }
        Mutation::Json(j) => v = j.clone(),
        Mutation::Bytes(b) => return b.clone(),
        Mutation::DeepRaw(n) => return ["[".repeat(*n), "]".repeat(*n)].concat().into_bytes(),
    }
    serde_json::to_vec(&v).unwrap()
}

#[derive(Debug, Clone)]
pub(super) enum Enc {
    Plain,
    Gzip,
    GzipGarbage(Vec<u8>),
    GzipTruncated,
    /// The body replaced by a gzip of `{"items": [1,1,…]}` with more items than any request may
    /// carry (issue 12: refused while inflating, nothing written).
    GzipManyItems,
    Other(&'static str),
}

#[derive(Debug, Clone)]
pub(super) struct Case {
    pub(super) id: Option<usize>,
    pub(super) mutation: Mutation,
    pub(super) enc: Enc,
    pub(super) content_type: usize,
    pub(super) auth: usize,
    pub(super) ou: usize,
    pub(super) query: Vec<(usize, usize)>,
    /// `Idempotency-Key`: none, one of a few (replays and conflicts), or a fresh one.
    pub(super) idem: Option<u32>,
}

pub(super) const CONTENT_TYPES: [&str; 8] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "",
    "application/x-ndjson",
    "multipart/form-data; boundary=x",
    "application/jso",
    "application/*",
];
pub(super) const GARBAGE_IDS: [&str; 8] = [
    "nope",
    "%FF%FE",
    "%00",
    "a%2Fb",
    "..",
    "%E2%98%83",
    "trg_%22%27",
    "x%",
];
pub(super) const QUERY_KEYS: [&str; 11] = [
    "limit",
    "offset",
    "cursor",
    "alias_kind",
    "alias",
    "trigger_id",
    "lead_id",
    "status",
    "sequence_id",
    "fired_id",
    "zz",
];
pub(super) const QUERY_VALUES: [&str; 14] = [
    "-1",
    "0",
    "1",
    "501",
    "abc",
    "",
    "99999999999999999999999",
    "%FF",
    "%",
    "%ZZ",
    "a%00b",
    "succeeded",
    "email",
    "MTB8MXxh",
];

pub(super) fn case() -> impl Strategy<Value = Case> {
    let enc = prop_oneof![
        8 => Just(Enc::Plain),
        1 => Just(Enc::Gzip),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Enc::GzipGarbage),
        1 => Just(Enc::GzipTruncated),
        1 => Just(Enc::GzipManyItems),
        1 => prop::sample::select(vec!["br", "deflate", "gzip, gzip", "x"]).prop_map(Enc::Other),
    ];
    (
        prop_oneof![3 => Just(None), 1 => (0..GARBAGE_IDS.len() + 1).prop_map(Some)],
        mutation(),
        enc,
        prop_oneof![6 => Just(0usize), 1 => 0..CONTENT_TYPES.len()],
        prop_oneof![6 => 0usize..3, 4 => 3usize..14],
        prop_oneof![4 => Just(0usize), 1 => 0usize..8],
        prop::collection::vec((0..QUERY_KEYS.len(), 0..QUERY_VALUES.len()), 0..4),
        prop_oneof![
            Just(None),
            (0u32..3).prop_map(Some),
            any::<u32>().prop_map(Some)
        ],
    )
        .prop_map(
            |(id, mutation, enc, content_type, auth, ou, query, idem)| Case {
                id,
                mutation,
                enc,
                content_type,
                auth,
                ou,
                query,
                idem,
            },
        )
}
