use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;

/// Task options gathered from the query string and the body (JSON fields or multipart text
/// fields), body winning. Tasks take the keys they know; [`Options::finish`] then rejects
/// whatever is left, so a misspelt option is a 422 rather than silently ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    values: Map<String, Value>,
}

impl Options {
    /// Empty options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value given as text (query string, form field, CLI `key=value`): numbers and
    /// booleans are recognised so that `strength=5` and `{"strength": 5}` mean the same.
    pub fn insert_text(&mut self, key: &str, text: &str) {
        let value = if let Ok(i) = text.parse::<i64>() {
            Value::from(i)
        } else if let Some(n) = text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(serde_json::Number::from_f64)
        {
            Value::Number(n)
        } else {
            match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(text.to_string()),
            }
        };
        self.values.insert(key.to_string(), value);
    }

    /// Adds a typed JSON value.
    pub fn insert(&mut self, key: &str, value: Value) {
        self.values.insert(key.to_string(), value);
    }

    /// The options as JSON text with keys sorted, so equal options give equal text whatever
    /// order they arrived in (the cache key and the Redis job record use it).
    pub(crate) fn canonical(&self) -> String {
        let sorted: std::collections::BTreeMap<&String, &Value> = self.values.iter().collect();
        serde_json::to_string(&sorted).unwrap_or_default()
    }

    /// Options from [`Options::canonical`] text.
    pub(crate) fn from_canonical(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self {
            values: serde_json::from_str(text)?,
        })
    }

    /// True when no option is left.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Removes and returns a raw value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// Removes `key` and reads it as a number in `range`.
    pub fn take_f64(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<f64>,
    ) -> Result<Option<f64>, ApiError> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let number = value.as_f64().ok_or_else(|| {
            ApiError::bad_option(format!("option `{key}` must be a number, got {value}"))
        })?;
        if !range.contains(&number) {
            return Err(ApiError::bad_option(format!(
                "option `{key}` must be between {} and {}, got {number}",
                range.start(),
                range.end()
            )));
        }
        Ok(Some(number))
    }

    /// Removes `key` and reads it as a whole number in `range` (a count: people, pixels).
    pub fn take_count(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<Option<usize>, ApiError> {
        let within = *range.start() as f64..=*range.end() as f64;
        match self.take_f64(key, within)? {
            Some(v) if v.fract() != 0.0 => Err(ApiError::bad_option(format!(
                "option `{key}` must be a whole number, got {v}"
            ))),
            Some(v) => Ok(Some(v as usize)),
            None => Ok(None),
        }
    }

    /// Removes `key` and reads it as a boolean (`true`/`false`, `1`/`0`).
    pub fn take_bool(&mut self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(Some(false)),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(Some(true)),
            Some(other) => Err(ApiError::bad_option(format!(
                "option `{key}` must be true or false, got {other}"
            ))),
        }
    }

    /// Removes `key` and reads it as one of `choices`.
    pub fn take_choice(
        &mut self,
        key: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        value
            .as_str()
            .and_then(|s| choices.iter().copied().find(|c| c.eq_ignore_ascii_case(s)))
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_option(format!(
                    "option `{key}` must be one of {}, got {value}",
                    choices.join(", ")
                ))
            })
    }

    /// Moves every remaining option into a typed struct (`#[serde(deny_unknown_fields)]`
    /// structs reject unknown keys with a message naming them).
    pub fn take_struct<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        let values = std::mem::take(&mut self.values);
        serde_json::from_value(Value::Object(values))
            .map_err(|e| ApiError::bad_option(format!("invalid options: {e}")))
    }

    /// Fails with `bad_option` if any option was not taken by the task.
    pub fn finish(self, known: &[&str]) -> Result<(), ApiError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let unknown: Vec<&str> = self.values.keys().map(String::as_str).collect();
        Err(ApiError::bad_option(format!(
            "unknown option(s) {}; this task accepts: {}",
            unknown.join(", "),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_are_typed() {
        let mut o = Options::new();
        for (k, v) in [
            ("a", "5"),
            ("b", "0.5"),
            ("c", "true"),
            ("d", "blur"),
            ("e", "nan"),
        ] {
            o.insert_text(k, v);
        }
        assert_eq!(o.take_f64("a", 0.0..=10.0).unwrap(), Some(5.0));
        assert_eq!(o.take_f64("b", 0.0..=1.0).unwrap(), Some(0.5));
        assert_eq!(o.take_bool("c").unwrap(), Some(true));
        assert_eq!(o.take_choice("d", &["blur", "box"]).unwrap(), Some("blur"));
        assert!(o.take_f64("e", 0.0..=1.0).is_err());
        assert!(o.finish(&[]).is_ok());
    }

    #[test]
    fn errors_name_the_option() {
        let mut o = Options::new();
        o.insert_text("strength", "11");
        let e = o.take_f64("strength", 0.0..=10.0).unwrap_err();
        assert!(e.message.contains("strength"), "{}", e.message);
        let mut o = Options::new();
        o.insert_text("strenght", "1");
        let e = o.finish(&["strength"]).unwrap_err();
        assert!(e.message.contains("strenght") && e.message.contains("strength"));
        let mut o = Options::new();
        o.insert_text("mode", "smudge");
        assert!(o.take_choice("mode", &["blur"]).is_err());
    }
}
