use std::sync::Arc;
use std::time::{Duration, Instant};

use percept_core::{DecodeLimits, Decoded, OutputFormat, RgbImage, decode, encode};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::option_spec::OptionSpec;
use crate::{Options, TaskError};

/// Named durations of the stages one request went through, in order.
#[derive(Debug, Clone, Default)]
pub struct Stages {
    entries: Vec<(&'static str, Duration)>,
}

impl Stages {
    /// Runs `f` and records its duration under `name`.
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let value = f();
        self.record(name, start.elapsed());
        value
    }

    /// Records a duration measured elsewhere.
    pub fn record(&mut self, name: &'static str, duration: Duration) {
        self.entries.push((name, duration));
    }

    /// The recorded stages in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Duration)> + '_ {
        self.entries.iter().copied()
    }
}

/// What a task produced: its JSON fields and, for tasks that draw, an image.
#[derive(Debug, Clone, Default)]
pub struct TaskOutput {
    /// The task's JSON body (without the rendered image, which the server adds).
    pub json: Map<String, Value>,
    /// The rendered result, if the task produces one.
    pub image: Option<RgbImage>,
}

impl TaskOutput {
    /// An output from a serialisable value (which must serialise to a JSON object).
    pub fn from_serialize(
        value: &impl Serialize,
        image: Option<RgbImage>,
    ) -> Result<Self, TaskError> {
        match serde_json::to_value(value).map_err(TaskError::internal)? {
            Value::Object(json) => Ok(Self { json, image }),
            other => Err(TaskError::internal(format!(
                "task output is not an object: {other}"
            ))),
        }
    }
}

/// A task's work, validated and ready to run on a worker.
pub type PreparedJob =
    Box<dyn FnOnce(Decoded, &mut Stages) -> Result<TaskOutput, TaskError> + Send>;

/// One kind of work percept does on a photo. The server and the CLI both run tasks through
/// this trait, which keeps the HTTP and `--json` outputs identical.
pub trait Task: Send + Sync {
    /// The route after `/v1/` and the `task` label in metrics, e.g. `inspect`, `art/pencil`.
    fn name(&self) -> &str;
    /// One line for the API description.
    fn summary(&self) -> &str;
    /// The options it accepts.
    fn options(&self) -> &[OptionSpec];
    /// Validates `options` (before any queueing, so bad options cost nothing) and returns the
    /// work to run on the decoded image.
    fn prepare(&self, options: Options) -> Result<PreparedJob, TaskError>;
    /// Whether its results with `options` come with a processed picture, so a video of them
    /// can be written: asked before a video is taken, so a video that could only fail at its
    /// first frame is refused at once. Options it cannot read count as drawing (`prepare`
    /// reports them).
    fn draws(&self, options: &Options) -> bool {
        let _ = options;
        true
    }
    /// A job over the frames of a video of `frame_rate` frames per second that uses more than
    /// one frame at a time (tracking, look ahead), with `options` validated; `None` (the
    /// default): each frame runs as a photo.
    fn video(
        &self,
        options: Options,
        frame_rate: f64,
    ) -> Option<Result<Box<dyn VideoJob>, TaskError>> {
        let _ = (options, frame_rate);
        None
    }
}

/// A task running over a video's frames (`video` builds the usual one). A job that looks
/// ahead (anonymize hides a face seen in the next frames too) holds frames until it can
/// finish them, so results may come later than their frames, but always in order.
pub trait VideoJob: Send {
    /// Takes the next frame and returns the results that are now final, in frame order.
    fn push(&mut self, frame: RgbImage) -> Result<Vec<TaskOutput>, TaskError>;
    /// Live video, after each frame: the results that need no later frame, now (a frame
    /// held to run beside the next one runs alone). Frames a look-ahead still needs stay held.
    fn flush(&mut self) -> Result<Vec<TaskOutput>, TaskError> {
        Ok(Vec::new())
    }
    /// At the end of the video: the results of every frame still held.
    fn finish(&mut self) -> Result<Vec<TaskOutput>, TaskError>;
}

/// The tasks a server or CLI offers, looked up by name.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    tasks: Vec<Arc<dyn Task>>,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tasks.iter().map(|t| t.name()))
            .finish()
    }
}

impl TaskRegistry {
    /// Adds a task; a later task with the same name replaces the earlier one.
    pub fn register(&mut self, task: Arc<dyn Task>) {
        self.tasks.retain(|t| t.name() != task.name());
        self.tasks.push(task);
    }

    /// The task called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Task>> {
        self.tasks.iter().find(|t| t.name() == name).cloned()
    }

    /// Every task, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Task>> {
        self.tasks.iter()
    }

    /// Task names, for messages.
    pub fn names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name().to_string()).collect()
    }
}

/// How the result should be rendered, decided from `Accept` and the `format` / `quality`
/// options before the work is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Render {
    /// Encoding of the result image.
    pub format: OutputFormat,
    /// Answer with the image itself instead of JSON.
    pub raw_image: bool,
}

/// The encoding of the result image (`Accept: image/jpeg` implies jpeg; `jpg` = `jpeg`).
const FORMAT: OptionSpec = OptionSpec::choice(
    "format",
    &["png", "jpeg", "jpg"],
    "Encoding of the result image (jpg is jpeg). `Accept: image/jpeg` implies jpeg.",
);
const QUALITY: OptionSpec = OptionSpec::integer("quality", 90, 1, 100, "JPEG quality.");

/// The options every task accepts besides its own.
pub const COMMON_OPTIONS: &[OptionSpec] = &[FORMAT, QUALITY];

impl Render {
    /// Takes `format` and `quality` from `options`; `accept` is the request's `Accept` header.
    pub fn from_request(accept: Option<&str>, options: &mut Options) -> Result<Self, TaskError> {
        let accept = accept.unwrap_or_default().to_ascii_lowercase();
        let wants_jpeg = accept.contains("image/jpeg") || accept.contains("image/jpg");
        let wants_png = accept.contains("image/png");
        // 1..=100 by the table.
        let quality = options.integer(&QUALITY)? as u8;
        let format = match options.choice_given(&FORMAT)? {
            Some("png") => OutputFormat::Png,
            Some(_) => OutputFormat::Jpeg { quality },
            None if wants_jpeg && !wants_png => OutputFormat::Jpeg { quality },
            None => OutputFormat::Png,
        };
        Ok(Self {
            format,
            raw_image: wants_jpeg || wants_png,
        })
    }
}

/// The outcome of running a task on one image.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The task's JSON fields.
    pub json: Map<String, Value>,
    /// The encoded result image, if the task produced one.
    pub image: Option<Vec<u8>>,
    /// The encoding of `image`.
    pub format: OutputFormat,
    /// Stage timings: decode, the task's own stages, encode.
    pub stages: Stages,
}

impl Executed {
    /// The API's JSON body for this result: the task's fields plus the rendered image as
    /// base64 in `image` (with its `image_format`).
    pub fn into_json(self) -> Value {
        use base64::Engine;
        let mut json = self.json;
        if let Some(image) = self.image {
            json.insert(
                "image".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(image)),
            );
            json.insert(
                "image_format".into(),
                Value::String(self.format.extension().into()),
            );
        }
        Value::Object(json)
    }
}

/// Decodes `bytes`, runs `job` and encodes its image: the whole synchronous path of one
/// request, shared by the worker pool and the CLI.
pub fn execute(
    job: PreparedJob,
    bytes: &[u8],
    limits: &DecodeLimits,
    render: Render,
) -> Result<Executed, TaskError> {
    let mut stages = Stages::default();
    let decoded = stages.time("decode", || decode(bytes, limits))?;
    let start = Instant::now();
    let recorded = stages.entries.len();
    let output = job(decoded, &mut stages)?;
    // Tasks with sub-stages (detect, landmarks…) time them; the others are one `infer` stage.
    if stages.entries.len() == recorded {
        stages.record("infer", start.elapsed());
    }
    let image = output
        .image
        .as_ref()
        .map(|img| stages.time("encode", || encode(img, render.format)))
        .transpose()?;
    Ok(Executed {
        json: output.json,
        image,
        format: render.format,
        stages,
    })
}
