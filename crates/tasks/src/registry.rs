//! Which tasks exist, the models each needs, and the registries the server and CLI build.

use std::sync::Arc;

use crate::{Anonymize, Art, Holistic, Inspect, OptionSpec, Parse, TaskRegistry};

/// Every task that needs no model.
pub fn default_registry() -> TaskRegistry {
    let mut registry = TaskRegistry::default();
    registry.register(Arc::new(Inspect));
    for style in percept_art::Style::ALL {
        registry.register(Arc::new(Art::new(style)));
    }
    registry
}

/// The models the model tasks need, by manifest name.
pub fn model_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for task in MODEL_TASKS {
        for name in models_of_task(task).unwrap_or_default() {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    names
}

/// The tasks that need models, by route name.
pub const MODEL_TASKS: &[&str] = &["anonymize", "holistic", "parse"];

/// The models one model task needs, by manifest name; `None` for a task without models.
/// `run` and `batch` load only these (a user running one task should not pay for the others'
/// memory and load time).
pub fn models_of_task(task: &str) -> Option<&'static [&'static str]> {
    const ANONYMIZE: [&str; 2] = [
        percept_vision::FaceDetector::MODEL,
        percept_vision::FastFaceDetector::MODEL,
    ];
    match task {
        "anonymize" => Some(&ANONYMIZE),
        "holistic" => Some(&percept_vision::Holistic::MODELS),
        "parse" => Some(&percept_vision::Parser::MODELS),
        _ => None,
    }
}

/// Every task: the model-free ones plus those built on `models` (loaded with
/// [`model_names`]).
pub fn registry_with_models(
    models: &percept_vision::Models,
) -> Result<TaskRegistry, percept_vision::VisionError> {
    let mut registry = default_registry();
    for task in MODEL_TASKS {
        register_model_task(&mut registry, task, models)?;
    }
    Ok(registry)
}

/// The model-free tasks plus the model task `task`, built on `models` (loaded with
/// [`models_of_task`]).
pub fn registry_with_task(
    task: &str,
    models: &percept_vision::Models,
) -> Result<TaskRegistry, percept_vision::VisionError> {
    let mut registry = default_registry();
    register_model_task(&mut registry, task, models)?;
    Ok(registry)
}

fn register_model_task(
    registry: &mut TaskRegistry,
    task: &str,
    models: &percept_vision::Models,
) -> Result<(), percept_vision::VisionError> {
    match task {
        "anonymize" => {
            let accurate = Arc::new(percept_vision::FaceDetector::new(models)?);
            let fast = Arc::new(percept_vision::FastFaceDetector::new(models)?);
            registry.register(Arc::new(Anonymize::new(accurate, fast)));
        }
        "holistic" => {
            let holistic = Arc::new(percept_vision::Holistic::new(models)?);
            registry.register(Arc::new(Holistic::new(holistic)));
        }
        "parse" => {
            let parser = Arc::new(percept_vision::Parser::new(models)?);
            registry.register(Arc::new(Parse::new(parser)));
        }
        // Not a model task: the model-free registry already has it (or nothing does).
        _ => {}
    }
    Ok(())
}

/// Every task and its options as text (for `percept run --help`): the model tasks from their
/// option tables, so listing them loads no model, and the model-free tasks from their registry.
pub fn options_help() -> String {
    use std::fmt::Write;
    let common: Vec<&str> = crate::COMMON_OPTIONS.iter().map(|o| o.name).collect();
    let mut out = format!(
        "Tasks and their options (-O KEY=VALUE; every task also takes {}):\n",
        common.join(", ")
    );
    let mut write = |task: &str, options: &[OptionSpec]| {
        // Writing into a String cannot fail.
        let _ = writeln!(out, "\n  {task}");
        for option in options {
            let values = match (option.kind, option.choices()) {
                (crate::OptionKind::Boolean { .. }, _) => "true|false".to_string(),
                (_, []) => format!("{} {}", option.type_name(), option.accepted()),
                (_, choices) => choices.join("|"),
            };
            let _ = writeln!(
                out,
                "    {}={values} [default: {}]  {}",
                option.name,
                option.default_text(),
                option.description
            );
        }
    };
    write("parse", crate::parse::OPTIONS);
    write("anonymize (also --mode)", crate::anonymize::OPTIONS);
    write("holistic", crate::holistic::OPTIONS);
    let registry = default_registry();
    for name in registry.names() {
        if let Some(task) = registry.get(&name) {
            let shown = match name.strip_prefix("art/") {
                Some(style) => format!("art --style {style}"),
                None => name.clone(),
            };
            write(&shown, task.options());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_task_names_its_models_and_the_server_loads_them_all() {
        let manifest = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/manifest.toml"
        ))
        .expect("models/manifest.toml");
        let served = model_names();
        for task in MODEL_TASKS {
            let names = models_of_task(task).expect("a model task names its models");
            assert!(!names.is_empty());
            for name in names {
                assert!(served.contains(name), "{task}: {name} not served");
                let declared = ["[[model]]", "[[variant]]"]
                    .iter()
                    .any(|table| manifest.contains(&format!("{table}\nname = \"{name}\"")));
                assert!(declared, "{task}: {name} not in the manifest");
            }
        }
        let mut unique = served.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), served.len(), "each model loaded once");
        assert_eq!(models_of_task("inspect"), None);
        assert_eq!(models_of_task("art/oil"), None);
    }
}
