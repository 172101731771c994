use serde_json::{Map, Value};

use crate::TaskError;
use crate::option_spec::{OptionKind, OptionSpec};

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
    pub fn canonical(&self) -> String {
        let sorted: std::collections::BTreeMap<&String, &Value> = self.values.iter().collect();
        serde_json::to_string(&sorted).unwrap_or_default()
    }

    /// Options from [`Options::canonical`] text.
    pub fn from_canonical(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self {
            values: serde_json::from_str(text)?,
        })
    }

    /// True when no option is left.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A caller's own default for `key`: set to `value` when the task takes `key` (it is in
    /// `known`, the task's table) and the request did not give it (the CLI's video skips
    /// drawing without an output; a live stream does not look ahead).
    pub fn default_unless_given(&mut self, known: &[OptionSpec], key: &str, value: Value) {
        if known.iter().any(|spec| spec.name == key) && !self.values.contains_key(key) {
            self.values.insert(key.to_string(), value);
        }
    }

    /// Removes and returns a raw value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// A `number` or `integer` option's value, or its default when absent; an error naming
    /// the option and its range when invalid.
    pub fn number(&mut self, spec: &OptionSpec) -> Result<f64, TaskError> {
        // The range check per kind, and the default; a non-numeric spec is our mistake.
        let (within, default): (&dyn Fn(f64) -> bool, f64) = match spec.kind {
            OptionKind::Number {
                min,
                max,
                min_exclusive,
                default,
            } => (
                &move |n| (n > min || (!min_exclusive && n == min)) && n <= max,
                default,
            ),
            OptionKind::Integer { min, max, default } => (
                &move |n: f64| n.fract() == 0.0 && n >= min as f64 && n <= max as f64,
                default as f64,
            ),
            OptionKind::Boolean { .. } | OptionKind::Choice { .. } => {
                return Err(TaskError::internal(format!(
                    "option `{}` is not numeric",
                    spec.name
                )));
            }
        };
        let Some(value) = self.take(spec.name) else {
            return Ok(default);
        };
        match value.as_f64() {
            Some(number) if within(number) => Ok(number),
            _ => Err(TaskError::bad_option(format!(
                "option `{}` must be {} in {}, got {value}",
                spec.name,
                if spec.type_name() == "integer" {
                    "a whole number"
                } else {
                    "a number"
                },
                spec.accepted()
            ))),
        }
    }

    /// An `integer` option's value, or its default.
    pub fn integer(&mut self, spec: &OptionSpec) -> Result<i64, TaskError> {
        // Whole and within an i64 range by number's check.
        Ok(self.number(spec)? as i64)
    }

    /// A count (`integer` option with a non-negative range), or its default.
    pub fn count(&mut self, spec: &OptionSpec) -> Result<usize, TaskError> {
        usize::try_from(self.integer(spec)?)
            .map_err(|_| TaskError::internal(format!("option `{}` is not a count", spec.name)))
    }

    /// A `boolean` option (`true`/`false`, `1`/`0`), or its default.
    pub fn flag(&mut self, spec: &OptionSpec) -> Result<bool, TaskError> {
        let OptionKind::Boolean { default } = spec.kind else {
            return Err(TaskError::internal(format!(
                "option `{}` is not a boolean",
                spec.name
            )));
        };
        match self.take(spec.name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
            Some(other) => Err(TaskError::bad_option(format!(
                "option `{}` must be true or false, got {other}",
                spec.name
            ))),
        }
    }

    /// Removes a choice option and reads it (case-insensitive): `None` when absent.
    pub fn choice_given(&mut self, spec: &OptionSpec) -> Result<Option<&'static str>, TaskError> {
        let Some(value) = self.take(spec.name) else {
            return Ok(None);
        };
        value
            .as_str()
            .and_then(|s| {
                spec.choices()
                    .iter()
                    .copied()
                    .find(|c| c.eq_ignore_ascii_case(s))
            })
            .map(Some)
            .ok_or_else(|| {
                TaskError::bad_option(format!(
                    "option `{}` must be {}, got {value}",
                    spec.name,
                    spec.accepted()
                ))
            })
    }

    /// A choice option's value, or its default (the first choice).
    pub fn choice(&mut self, spec: &OptionSpec) -> Result<&'static str, TaskError> {
        let default = spec.choices().first().copied().unwrap_or_default();
        Ok(self.choice_given(spec)?.unwrap_or(default))
    }

    /// Fails with `bad_option` if any option was not taken by the task, listing `known`.
    pub fn finish(self, known: &[OptionSpec]) -> Result<(), TaskError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let unknown: Vec<&str> = self.values.keys().map(String::as_str).collect();
        let known: Vec<&str> = known.iter().map(|o| o.name).collect();
        Err(TaskError::bad_option(format!(
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

    const SCORE: OptionSpec = OptionSpec::number("b", 0.5, 0.0, 1.0, "");
    const SIGMA: OptionSpec = OptionSpec::number("s", 60.0, 0.0, 200.0, "").above_min();
    const PEOPLE: OptionSpec = OptionSpec::integer("a", 10, 1, 20, "");
    const DRAW: OptionSpec = OptionSpec::boolean("c", true, "");
    const MODE: OptionSpec = OptionSpec::choice("d", &["blur", "box"], "");

    #[test]
    fn text_values_are_typed_and_absent_ones_default() {
        let mut o = Options::new();
        for (k, v) in [
            ("a", "5"),
            ("b", "0.5"),
            ("c", "false"),
            ("d", "BOX"),
            ("e", "nan"),
        ] {
            o.insert_text(k, v);
        }
        assert_eq!(o.count(&PEOPLE).unwrap(), 5);
        assert_eq!(o.number(&SCORE).unwrap(), 0.5);
        assert!(!o.flag(&DRAW).unwrap());
        assert_eq!(o.choice(&MODE).unwrap(), "box");
        let nan = OptionSpec::number("e", 0.5, 0.0, 1.0, "");
        assert!(o.number(&nan).is_err(), "`nan` stays text");
        assert!(o.finish(&[]).is_ok());
        let mut empty = Options::new();
        assert_eq!(empty.count(&PEOPLE).unwrap(), 10);
        assert_eq!(empty.number(&SIGMA).unwrap(), 60.0);
        assert!(empty.flag(&DRAW).unwrap());
        assert_eq!(empty.choice(&MODE).unwrap(), "blur");
        assert_eq!(empty.choice_given(&MODE).unwrap(), None);
    }

    #[test]
    fn bounds_are_the_tables() {
        let check = |spec: &OptionSpec, text: &str| {
            let mut o = Options::new();
            o.insert_text(spec.name, text);
            o.number(spec).is_ok()
        };
        assert!(check(&SCORE, "0") && check(&SCORE, "1") && !check(&SCORE, "1.01"));
        assert!(!check(&SIGMA, "0") && check(&SIGMA, "0.001") && check(&SIGMA, "200"));
        assert!(check(&PEOPLE, "1") && check(&PEOPLE, "20"));
        assert!(!check(&PEOPLE, "0") && !check(&PEOPLE, "21") && !check(&PEOPLE, "2.5"));
    }

    #[test]
    fn errors_name_the_option_and_its_range() {
        let mut o = Options::new();
        o.insert_text("b", "11");
        let e = o.number(&SCORE).unwrap_err().to_string();
        assert!(e.contains("`b`") && e.contains("[0, 1]"), "{e}");
        let mut o = Options::new();
        o.insert_text("strenght", "1");
        let e = o.finish(&[SCORE]).unwrap_err().to_string();
        assert!(e.contains("strenght") && e.contains("b"), "{e}");
        let mut o = Options::new();
        o.insert_text("d", "smudge");
        let e = o.choice(&MODE).unwrap_err().to_string();
        assert!(e.contains("blur or box"), "{e}");
        let mut o = Options::new();
        o.insert_text("c", "yes");
        assert!(o.flag(&DRAW).is_err());
    }
}
