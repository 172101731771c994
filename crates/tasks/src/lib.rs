//! percept-tasks: the work percept does on one photo, as tasks the server and the CLI both
//! run (so `POST /v1/parse` and `percept run parse --json` answer the same JSON).
//!
//! A [`Task`] reads its [`Options`] through its table of [`OptionSpec`]s (the one place a
//! range and default are written), returns a [`PreparedJob`] before any queueing, and the job
//! turns a decoded photo into JSON and an image. [`execute`] is the whole synchronous path:
//! decode, run, encode. Failures are [`TaskError`]s with stable codes; the server maps them
//! to HTTP statuses. This crate knows nothing of HTTP.

// Imports run one way: the task modules build on `task`, `options` and `option_spec`;
// `registry` builds on the task modules; nothing imports `registry` back.
mod anonymize;
mod art;
mod error;
mod holistic;
mod inspect;
mod option_spec;
mod options;
mod parse;
mod png;
mod registry;
mod task;
mod video;

pub use anonymize::Anonymize;
pub use art::Art;
pub use error::TaskError;
pub use holistic::Holistic;
pub use inspect::{Inspect, InspectResult};
pub use option_spec::{OptionKind, OptionSpec};
pub use options::Options;
pub use parse::Parse;
pub use registry::{
    MODEL_TASKS, default_registry, model_names, models_of_task, options_help, registry_with_models,
    registry_with_task,
};
pub use task::{
    COMMON_OPTIONS, Executed, PreparedJob, Render, Stages, Task, TaskOutput, TaskRegistry,
    VideoJob, execute,
};
pub use video::video_job;
