//! Field checks with precise messages, shared by every model's `validate`.

use super::ValidationError;
use serde_json::Value;

type R<T> = Result<T, ValidationError>;

/// The faults of one request body: the first fault of every field, in the order the fields are
/// checked. Every model validates through one of these, so a request with several bad fields
/// is told about all of them at once (one message each).
#[derive(Debug, Default)]
pub struct Faults(Vec<ValidationError>);

impl Faults {
    /// Note `e`, unless its field already has a fault.
    pub fn note(&mut self, e: ValidationError) {
        if !self.0.iter().any(|x| x.field == e.field) {
            self.0.push(e);
        }
    }

    /// A fault of `field` when `broken`.
    pub fn check(&mut self, broken: bool, field: &str, message: impl Into<String>) {
        if broken {
            self.note(ValidationError::new(field, message));
        }
    }

    /// The checked value, or (its fault noted) `T::default()` in its place, so checking goes on
    /// with the next field.
    pub fn take<T: Default>(&mut self, r: R<T>) -> T {
        self.get(r).unwrap_or_default()
    }

    /// The checked value, or `None` with its fault noted.
    pub fn get<T>(&mut self, r: R<T>) -> Option<T> {
        r.map_err(|e| self.note(e)).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `v` when no field had a fault, else every fault.
    pub fn finish<T>(self, v: T) -> Result<T, Vec<ValidationError>> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(self.0)
        }
    }
}

/// `None` and `null` are both "not given".
pub fn given(v: Option<Value>) -> Option<Value> {
    v.filter(|v| !v.is_null())
}

pub fn required(field: &str, v: Option<Value>) -> R<Value> {
    given(v).ok_or_else(|| ValidationError::new(field, "is required"))
}

/// A non-empty (after trimming) string of at most `max` characters, trimmed.
pub fn text(field: &str, v: Value, max: usize) -> R<String> {
    let Value::String(s) = v else {
        return Err(ValidationError::new(field, "must be a string"));
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(t.to_string())
}

pub fn opt_text(field: &str, v: Option<Value>, max: usize) -> R<Option<String>> {
    given(v).map(|v| text(field, v, max)).transpose()
}

/// Text that goes into a mail header: no line breaks (header injection).
pub fn header_text(field: &str, v: Option<Value>, max: usize) -> R<Option<String>> {
    let t = opt_text(field, v, max)?;
    if t.as_deref().is_some_and(|s| s.contains(['\r', '\n'])) {
        return Err(ValidationError::new(field, "must not contain line breaks"));
    }
    Ok(t)
}

pub fn integer(field: &str, v: &Value) -> R<i64> {
    v.as_i64()
        .ok_or_else(|| ValidationError::new(field, "must be an integer"))
}

/// An integer in `min..=max`.
pub fn int_in(field: &str, v: &Value, min: i64, max: i64) -> R<i64> {
    let n = integer(field, v)?;
    if n < min || n > max {
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(n)
}

pub fn boolean(field: &str, v: &Value) -> R<bool> {
    v.as_bool()
        .ok_or_else(|| ValidationError::new(field, "must be a boolean"))
}

pub fn opt_bool(field: &str, v: Option<Value>) -> R<Option<bool>> {
    given(v).map(|v| boolean(field, &v)).transpose()
}

/// An absolute `http`/`https` URL with a host.
pub fn http_url(field: &str, v: Option<Value>) -> R<Option<String>> {
    let Some(s) = opt_text(field, v, 2048)? else {
        return Ok(None);
    };
    match url::Url::parse(&s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(s)),
        _ => Err(ValidationError::new(
            field,
            "must be an absolute http(s) URL",
        )),
    }
}

/// An array of e-mail addresses (at most `max`), each trimmed.
pub fn emails(field: &str, v: Option<Value>, max: usize) -> R<Vec<String>> {
    let Some(v) = given(v) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(ValidationError::new(field, "must be an array of strings"));
    };
    if items.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must list at most {max} addresses"),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let f = format!("{field}[{i}]");
        let s = text(&f, item, 320)?;
        let kind = crate::event::AliasKind::Email;
        if crate::event::Alias::normalise(kind, &s).is_err() {
            return Err(ValidationError::new(f, "must be an email address"));
        }
        out.push(s);
    }
    Ok(out)
}

/// A stable identifier: 1 to 64 ASCII letters, digits, `_`, `-` or `.`.
pub fn ident(field: &str, v: Value) -> R<String> {
    let ok = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    };
    match v {
        Value::String(s) if ok(&s) => Ok(s),
        _ => Err(ValidationError::new(
            field,
            "must be 1 to 64 letters, digits, '_', '-' or '.'",
        )),
    }
}

/// Parses a nested object into its request struct; serde's message names unknown fields.
pub fn object<T: serde::de::DeserializeOwned>(field: &str, v: Value) -> R<T> {
    if !v.is_object() {
        return Err(ValidationError::new(field, "must be an object"));
    }
    serde_json::from_value(v).map_err(|e| ValidationError::new(field, e.to_string()))
}

/// Rejects a read-only `id` that names another object than `expected` (or any on create).
pub fn read_only_id(v: Option<&Value>, expected: Option<&str>) -> R<()> {
    match (v.filter(|v| !v.is_null()), expected) {
        (None, _) => Ok(()),
        (Some(Value::String(s)), Some(e)) if s == e => Ok(()),
        (Some(_), Some(_)) => Err(ValidationError::new(
            "id",
            "does not match the object being updated",
        )),
        (Some(_), None) => Err(ValidationError::new("id", "is assigned by the server")),
    }
}
