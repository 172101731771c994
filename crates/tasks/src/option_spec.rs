//! One table entry per task option: its name, type, range, default and description. The same
//! entry validates a request ([`crate::Options`] reads values through it), is listed by
//! `/v1/tasks` and `/openapi.json` (with `minimum`/`maximum`, which the page turns into its
//! inputs' bounds) and is printed by `percept run --help`, so a range is written once.

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// The JSON type of an option, with its accepted values and its default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptionKind {
    /// A number in `[min, max]`, or `(min, max]` when `min_exclusive`.
    Number {
        /// Lower bound.
        min: f64,
        /// Upper bound (always included).
        max: f64,
        /// True when `min` itself is refused (a size that must be positive).
        min_exclusive: bool,
        /// Used when the option is absent.
        default: f64,
    },
    /// A whole number in `[min, max]`.
    Integer {
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
        /// Used when the option is absent.
        default: i64,
    },
    /// `true`/`false` (also `1`/`0`).
    Boolean {
        /// Used when the option is absent.
        default: bool,
    },
    /// One of a list of strings (case-insensitive); the first is the default.
    Choice {
        /// The accepted values, default first.
        choices: &'static [&'static str],
    },
}

/// One option of a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptionSpec {
    /// Name, as in the query string, the JSON body or `-O name=value`.
    pub name: &'static str,
    /// Type, range and default.
    pub kind: OptionKind,
    /// What it does (the range and default are printed from `kind`, not written here).
    pub description: &'static str,
}

impl OptionSpec {
    /// A number in `[min, max]`.
    pub const fn number(
        name: &'static str,
        default: f64,
        min: f64,
        max: f64,
        description: &'static str,
    ) -> Self {
        let kind = OptionKind::Number {
            min,
            max,
            min_exclusive: false,
            default,
        };
        Self {
            name,
            kind,
            description,
        }
    }

    /// This number option with its lower bound refused: `(min, max]` (a size that must be
    /// positive). Other kinds are returned unchanged.
    pub const fn above_min(mut self) -> Self {
        if let OptionKind::Number {
            min, max, default, ..
        } = self.kind
        {
            self.kind = OptionKind::Number {
                min,
                max,
                min_exclusive: true,
                default,
            };
        }
        self
    }

    /// A whole number in `[min, max]`.
    pub const fn integer(
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
        description: &'static str,
    ) -> Self {
        let kind = OptionKind::Integer { min, max, default };
        Self {
            name,
            kind,
            description,
        }
    }

    /// A boolean.
    pub const fn boolean(name: &'static str, default: bool, description: &'static str) -> Self {
        Self {
            name,
            kind: OptionKind::Boolean { default },
            description,
        }
    }

    /// One of `choices`, the first being the default.
    pub const fn choice(
        name: &'static str,
        choices: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        Self {
            name,
            kind: OptionKind::Choice { choices },
            description,
        }
    }

    /// The JSON type name: `number`, `integer`, `boolean` or `string`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            OptionKind::Number { .. } => "number",
            OptionKind::Integer { .. } => "integer",
            OptionKind::Boolean { .. } => "boolean",
            OptionKind::Choice { .. } => "string",
        }
    }

    /// The default as text (`1.3`, `10`, `true`, `blur`).
    pub fn default_text(&self) -> String {
        match self.kind {
            OptionKind::Number { default, .. } => format_number(default),
            OptionKind::Integer { default, .. } => default.to_string(),
            OptionKind::Boolean { default } => default.to_string(),
            OptionKind::Choice { choices } => choices.first().copied().unwrap_or("").into(),
        }
    }

    /// The default as a typed JSON value (`1.3`, `10`, `true`, `"blur"`), for schemas.
    pub fn default_value(&self) -> serde_json::Value {
        match self.kind {
            OptionKind::Number { default, .. } => default.into(),
            OptionKind::Integer { default, .. } => default.into(),
            OptionKind::Boolean { default } => default.into(),
            OptionKind::Choice { choices } => choices.first().copied().unwrap_or("").into(),
        }
    }

    /// The accepted values in words, for messages and help: `[0.1, 10]`, `(0, 200]`,
    /// `1..=20`, `true or false`, `blur, pixelate or box`.
    pub fn accepted(&self) -> String {
        match self.kind {
            OptionKind::Number {
                min,
                max,
                min_exclusive,
                ..
            } => format!(
                "{}{}, {}]",
                if min_exclusive { "(" } else { "[" },
                format_number(min),
                format_number(max)
            ),
            OptionKind::Integer { min, max, .. } => format!("{min}..={max}"),
            OptionKind::Boolean { .. } => "true or false".into(),
            OptionKind::Choice { choices } => match choices.split_last() {
                Some((last, [])) => (*last).to_string(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            },
        }
    }

    /// The description with the accepted values and the default, as `/v1/tasks`, the OpenAPI
    /// document and the page show it.
    pub fn full_description(&self) -> String {
        format!(
            "{} Accepts {}; default {}.",
            self.description,
            self.accepted(),
            self.default_text()
        )
    }

    /// The choices of a choice option (empty otherwise).
    pub fn choices(&self) -> &'static [&'static str] {
        match self.kind {
            OptionKind::Choice { choices } => choices,
            _ => &[],
        }
    }

    /// The bounds of a numeric option: (min, max, min_exclusive).
    pub fn bounds(&self) -> Option<(f64, f64, bool)> {
        match self.kind {
            OptionKind::Number {
                min,
                max,
                min_exclusive,
                ..
            } => Some((min, max, min_exclusive)),
            OptionKind::Integer { min, max, .. } => Some((min as f64, max as f64, false)),
            _ => None,
        }
    }
}

/// `60` rather than `60.0`, `0.07` as written.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// As `/v1/tasks` lists an option: `name`, `kind` (its JSON type), `default` as text,
/// `description` ending with the accepted values, and `minimum`/`maximum`
/// (`exclusive_minimum` when the lower bound is refused) or `choices`.
impl Serialize for OptionSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bounds = self.bounds();
        let exclusive = bounds.is_some_and(|(_, _, exclusive)| exclusive);
        let fields = 4
            + usize::from(bounds.is_some()) * 2
            + usize::from(exclusive)
            + usize::from(!self.choices().is_empty());
        let mut s = serializer.serialize_struct("OptionSpec", fields)?;
        s.serialize_field("name", self.name)?;
        s.serialize_field("kind", self.type_name())?;
        s.serialize_field("default", &self.default_text())?;
        s.serialize_field("description", &self.full_description())?;
        if let Some((min, max, exclusive)) = bounds {
            s.serialize_field("minimum", &min)?;
            s.serialize_field("maximum", &max)?;
            if exclusive {
                s.serialize_field("exclusive_minimum", &true)?;
            }
        }
        if !self.choices().is_empty() {
            s.serialize_field("choices", self.choices())?;
        }
        s.end()
    }
}

/// For tests that hold a table against its library: `check` gets, for each numeric spec,
/// options holding just its lower bound (the smallest accepted step above an exclusive one)
/// and then just its upper bound.
#[cfg(test)]
pub(crate) fn at_each_bound(
    specs: &[OptionSpec],
    mut check: impl FnMut(&OptionSpec, crate::Options),
) {
    for spec in specs {
        let Some((min, max, min_exclusive)) = spec.bounds() else {
            continue;
        };
        let integer = matches!(spec.kind, OptionKind::Integer { .. });
        let lowest = match (min_exclusive, integer) {
            (false, _) => min,
            (true, true) => min + 1.0,
            (true, false) => min + 1e-3,
        };
        for value in [lowest, max] {
            let mut options = crate::Options::new();
            let json = if integer {
                serde_json::json!(value as i64)
            } else {
                serde_json::json!(value)
            };
            options.insert(spec.name, json);
            check(spec, options);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_defaults_and_json_come_from_one_entry() {
        let strength = OptionSpec::number("strength", 1.0, 0.1, 10.0, "How strong.");
        assert_eq!(strength.accepted(), "[0.1, 10]");
        assert_eq!(strength.default_text(), "1");
        let json = serde_json::to_value(strength).unwrap_or_default();
        assert_eq!(json["minimum"], 0.1);
        assert_eq!(json["maximum"], 10.0);
        assert_eq!(json["kind"], "number");
        assert_eq!(json["default"], "1");
        assert!(json.get("exclusive_minimum").is_none());
        assert_eq!(
            json["description"],
            "How strong. Accepts [0.1, 10]; default 1."
        );

        let sigma = OptionSpec::number("sigma_s", 60.0, 0.0, 200.0, "Extent.").above_min();
        assert_eq!(sigma.accepted(), "(0, 200]");
        assert_eq!(
            serde_json::to_value(sigma).unwrap_or_default()["exclusive_minimum"],
            true
        );
        let mode = OptionSpec::choice("mode", &["blur", "pixelate", "box"], "How.");
        assert_eq!(mode.accepted(), "blur, pixelate or box");
        assert_eq!(mode.default_text(), "blur");
        let json = serde_json::to_value(mode).unwrap_or_default();
        assert_eq!(json["choices"][2], "box");
        assert!(json.get("minimum").is_none());
        let people = OptionSpec::integer("max_people", 10, 1, 20, "People.");
        assert_eq!(people.accepted(), "1..=20");
        assert_eq!(
            OptionSpec::boolean("draw", true, "Draw.").default_text(),
            "true"
        );
    }
}
