//! Schema-only mirrors of the JSON percept answers with, for `/openapi.json`.
//!
//! The task results are built from `percept-vision`'s types (which stay free of an OpenAPI
//! dependency) and from `serde_json` values in the handlers, so these structs only describe
//! them; nothing constructs them. `tests/openapi.rs` checks real responses of a live server
//! against these schemas (every key declared, with its JSON type), so they cannot drift from
//! the code unnoticed.
#![allow(dead_code)] // descriptions only: never constructed

use utoipa::ToSchema;

use crate::error::ErrorBody;

// ---------------------------------------------------------------- parse

/// A box in image pixels.
#[derive(ToSchema)]
pub struct PixelBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// How a parsed person was found.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PersonSeed {
    /// The whole-photo pose detector.
    Pose,
    /// A crop around a detected face.
    Face,
}

/// One parsed person.
#[derive(ToSchema)]
pub struct ParsedPerson {
    /// Index used by `segments[].person`.
    pub index: u32,
    /// Box of the person's labelled pixels.
    pub bbox: PixelBox,
    /// The pose model's person-presence probability.
    pub score: f32,
    /// How the person was found.
    pub seed: PersonSeed,
    /// Pixels labelled for this person.
    pub pixel_count: u64,
}

/// One (person, label) region.
#[derive(ToSchema)]
pub struct Segment {
    /// LIP label name.
    pub label: String,
    /// Label value in the mask.
    pub label_index: u8,
    /// Mean per-pixel evidence, in [0, 1].
    pub confidence: f32,
    /// Pixels with this label for this person.
    pub pixel_count: u64,
    /// Their box.
    pub bbox: PixelBox,
    /// The person (`persons[].index`).
    pub person: u32,
}

/// One legend entry.
#[derive(ToSchema)]
pub struct PaletteEntry {
    /// Label value in the mask.
    pub index: u8,
    /// Label name.
    pub label: String,
    /// Display colour, RGB.
    pub color: [u8; 3],
}

/// The JSON of `POST /v1/parse`.
#[derive(ToSchema)]
pub struct ParseResult {
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// Which parser produced the labels: `learned:<manifest name>` or `pose-guided`.
    pub parser: String,
    /// People found, most confident first.
    pub persons: Vec<ParsedPerson>,
    /// How many people were parsed (the length of `persons`).
    pub person_count: u32,
    /// Labelled regions, by person then label.
    pub segments: Vec<Segment>,
    /// Label colours, for a legend.
    pub palette: Vec<PaletteEntry>,
    /// The label-index PNG (one label value per pixel), base64; absent with `mask=false`.
    #[schema(required = false)]
    pub mask: String,
    /// The label colours over the photo, base64 in `image_format`.
    pub image: String,
    /// `png` or `jpeg`.
    pub image_format: ImageFormat,
}

/// The encoding of a result image.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
}

// ---------------------------------------------------------------- anonymize

/// A point in image pixels.
#[derive(ToSchema)]
pub struct Point {
    /// Horizontal position.
    pub x: f32,
    /// Vertical position.
    pub y: f32,
}

/// A box in photo pixels (sub-pixel): top-left corner and size, clipped to the photo.
#[derive(ToSchema)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// One detected face.
#[derive(ToSchema)]
pub struct Face {
    /// The box.
    pub bbox: BBox,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Image-left eye, image-right eye, nose, image-left and image-right mouth corners (the
    /// `fast` detector has one mouth point, the mouth's centre, in both corners).
    pub landmarks: [Point; 5],
}

/// The face detector that ran.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Detector {
    /// CenterFace.
    Accurate,
    /// BlazeFace full range.
    Fast,
}

/// The JSON of `POST /v1/anonymize`.
#[derive(ToSchema)]
pub struct AnonymizeResult {
    /// Every face found (and hidden).
    pub faces: Vec<Face>,
    /// The number of faces.
    pub count: u32,
    /// The detector that ran.
    pub detector: Detector,
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// The anonymised photo, base64 in `image_format`.
    pub image: String,
    /// `png` or `jpeg`.
    pub image_format: ImageFormat,
}

// ---------------------------------------------------------------- holistic

/// One landmark of a pose, hand or face mesh.
#[derive(ToSchema)]
pub struct Landmark {
    /// Horizontal position in image pixels.
    pub x: f32,
    /// Vertical position in image pixels.
    pub y: f32,
    /// Depth in the same pixel scale as `x` (smaller is nearer the camera).
    pub z: f32,
    /// `x` divided by the image width.
    pub nx: f32,
    /// `y` divided by the image height.
    pub ny: f32,
    /// Probability that the point is visible (pose landmarks only).
    #[schema(required = false)]
    pub visibility: f32,
    /// Probability that the point is inside the photo (pose landmarks only).
    #[schema(required = false)]
    pub presence: f32,
}

/// A rotated region of interest.
#[derive(ToSchema)]
pub struct Roi {
    /// Centre x in pixels.
    pub cx: f32,
    /// Centre y in pixels.
    pub cy: f32,
    /// Width in pixels.
    pub width: f32,
    /// Height in pixels.
    pub height: f32,
    /// Clockwise rotation in degrees.
    pub rotation_deg: f32,
}

/// Whether a part was found, how sure the model is, and where it looked.
#[derive(ToSchema)]
pub struct PartInfo {
    /// The part was found.
    pub present: bool,
    /// The model's presence probability for it (0 when not found).
    pub score: f32,
    /// The crop its landmarks came from (absent when not found).
    #[schema(required = false)]
    pub roi: Roi,
}

/// Per part: found or not.
#[derive(ToSchema)]
pub struct Parts {
    /// The body.
    pub pose: PartInfo,
    /// The person's left hand.
    pub left_hand: PartInfo,
    /// The person's right hand.
    pub right_hand: PartInfo,
    /// The face mesh.
    pub face: PartInfo,
}

/// The pose detector's box of the person: a `BBox` and its score, flattened into one object
/// (the mirror spells the fields out: the schema stays one plain object).
#[derive(ToSchema)]
pub struct PersonBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
    /// Pose-detector confidence.
    pub score: f32,
}

/// One tracked person: up to 543 landmarks (a missing part is an empty list).
#[derive(ToSchema)]
pub struct HolisticPerson {
    /// Position in `people` (0 = the most prominent, the one the top-level fields repeat).
    pub index: u32,
    /// Box of the person's landmarks, clipped to the photo.
    pub bbox: PixelBox,
    /// The pose model's person-presence probability.
    pub score: f32,
    /// How the person was found.
    pub seed: PersonSeed,
    /// 33 pose landmarks.
    pub pose: Vec<Landmark>,
    /// 21 landmarks of the person's left hand, or none.
    pub left_hand: Vec<Landmark>,
    /// 21 landmarks of the person's right hand, or none.
    pub right_hand: Vec<Landmark>,
    /// 468 face-mesh landmarks (478 with `refine_face_landmarks`), or none.
    pub face: Vec<Landmark>,
    /// How many landmarks this person has (543 when everything was found).
    pub landmark_count: u32,
    /// Per part: found, score, ROI.
    pub parts: Parts,
}

/// The JSON of `POST /v1/holistic`: every person's landmarks in `people`; the top-level
/// landmark fields repeat the most prominent person's (a missing part is an empty list).
#[derive(ToSchema)]
pub struct HolisticResult {
    /// Photo width.
    pub width: u32,
    /// Photo height.
    pub height: u32,
    /// 33 pose landmarks, or none.
    pub pose: Vec<Landmark>,
    /// 21 landmarks of the person's left hand, or none.
    pub left_hand: Vec<Landmark>,
    /// 21 landmarks of the person's right hand, or none.
    pub right_hand: Vec<Landmark>,
    /// 468 face-mesh landmarks (478 with `refine_face_landmarks`: the irises, five each, the
    /// eye at points 33/133 first), or none.
    pub face: Vec<Landmark>,
    /// How many landmarks were returned in all (543 when everything was found).
    pub landmark_count: u32,
    /// Per part: found, score, ROI.
    pub parts: Parts,
    /// The most prominent person's pose-detector box; null when nobody was found.
    pub person: Option<PersonBox>,
    /// How many people were tracked.
    pub person_count: u32,
    /// Every person tracked, most prominent (largest) first.
    pub people: Vec<HolisticPerson>,
    /// With `enable_segmentation=true`: the person mask, a greyscale PNG the photo's size
    /// (0-255 for probability 0-1, every tracked person), base64.
    #[schema(required = false)]
    pub segmentation_mask: String,
    /// The photo with the landmarks drawn, base64 in `image_format`; absent with `draw=false`.
    #[schema(required = false)]
    pub image: String,
    /// `png` or `jpeg`; absent with `draw=false`.
    #[schema(required = false)]
    pub image_format: ImageFormat,
}

// ---------------------------------------------------------------- art

/// The JSON of `POST /v1/art/{style}`.
#[derive(ToSchema)]
pub struct ArtResult {
    /// The style, e.g. `oil`.
    pub style: String,
    /// Width of the rendered image.
    pub width: u32,
    /// Height of the rendered image.
    pub height: u32,
    /// The rendered image, base64 in `image_format`.
    pub image: String,
    /// `png` or `jpeg`.
    pub image_format: ImageFormat,
}

/// Any task's result (in a batch slot or a job's result): one of the task result schemas.
pub struct TaskResult;

impl utoipa::PartialSchema for TaskResult {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut any = utoipa::openapi::schema::AnyOfBuilder::new()
            .description(Some("Any task's result: the schema of the task that ran."));
        for name in [
            "InspectResult",
            "ParseResult",
            "AnonymizeResult",
            "HolisticResult",
            "ArtResult",
        ] {
            any = any.item(utoipa::openapi::Ref::from_schema_name(name));
        }
        any.into()
    }
}

impl ToSchema for TaskResult {
    fn name() -> std::borrow::Cow<'static, str> {
        "TaskResult".into()
    }
}

// ---------------------------------------------------------------- batch and jobs

/// One image's slot in a batch answer: `result` when `status` is 200, `error` otherwise.
#[derive(ToSchema)]
pub struct BatchItem {
    /// Position of the image in the request.
    pub index: u32,
    /// The client's file name of a multipart part; null otherwise.
    pub filename: Option<String>,
    /// The HTTP status this image alone would have had.
    pub status: u16,
    /// The task's result (status 200).
    #[schema(required = false)]
    pub result: TaskResult,
    /// Why this image failed (status ≠ 200).
    #[schema(required = false)]
    pub error: ErrorBody,
}

/// The answer of `POST /v1/batch/{task}`: per-image results in request order.
#[derive(ToSchema)]
pub struct BatchResponse {
    /// The task.
    pub task: String,
    /// Images in the request.
    pub count: u32,
    /// Slots with status 200.
    pub succeeded: u32,
    /// Slots with an error.
    pub failed: u32,
    /// One slot per image, in request order.
    pub results: Vec<BatchItem>,
}

/// A job's state.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// On a worker.
    Running,
    /// Finished; the result is at `result_url`.
    Done,
    /// Finished with an error.
    Failed,
}

/// The 202 answer of `POST /v1/jobs/{task}`.
#[derive(ToSchema)]
pub struct JobAccepted {
    /// The job's id.
    pub id: String,
    /// `queued`.
    pub status: JobState,
    /// `GET` it for the job's status.
    pub status_url: String,
    /// `GET` it for the result once done.
    pub result_url: String,
    /// `video` for a video job (absent for a photo).
    #[schema(required = false)]
    pub kind: JobKind,
    /// A video job's output video, once done (`video/mp4`).
    #[schema(required = false)]
    pub video_url: String,
}

/// What a job runs on.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JobKind {
    /// A video file, frame by frame.
    Video,
}

/// A video job's progress in frames.
#[derive(ToSchema)]
pub struct JobProgress {
    /// Frames processed and written so far.
    pub frames_done: u64,
    /// Frames in the video, as its container says (null when it does not).
    pub frames_total: Option<u64>,
}

/// Totals of one per-frame finding over a video (e.g. `faces`, `hidden`, `people`).
#[derive(ToSchema)]
pub struct FrameCount {
    /// Found over all frames.
    pub total: u64,
    /// The most in one frame.
    pub max_per_frame: u64,
    /// Frames with at least one.
    pub frames_with: u64,
}

/// What a video job found, frame by frame, for each field its task's JSON has.
#[derive(ToSchema)]
pub struct FrameCounts {
    /// anonymize: faces detected.
    #[schema(required = false)]
    pub faces: FrameCount,
    /// anonymize: faces hidden (detected, or tracked from neighbouring frames).
    #[schema(required = false)]
    pub hidden: FrameCount,
    /// holistic: people found.
    #[schema(required = false)]
    pub people: FrameCount,
    /// parse: people parsed.
    #[schema(required = false)]
    pub persons: FrameCount,
}

/// A video job's result (`GET /v1/jobs/{id}/result`): a summary; the video itself is at
/// `video_url`.
#[derive(ToSchema)]
pub struct VideoJobResult {
    /// The task that ran.
    pub task: String,
    /// `video`.
    pub kind: JobKind,
    /// Frames processed (and in the output video).
    pub frames: u64,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second (the input's).
    pub frame_rate: f64,
    /// The output's length in seconds.
    pub duration: f64,
    /// The input's audio codec, copied (or re-encoded to AAC) into the output; null without.
    pub audio: Option<String>,
    /// Time the job took, seconds.
    pub seconds: f64,
    /// Frames processed per second of that time.
    pub frames_per_second: f64,
    /// Per-frame findings summed over the video: those of the fields the task gives.
    pub counts: FrameCounts,
    /// `video/mp4`.
    pub content_type: String,
    /// Size of the output video in bytes.
    pub video_bytes: u64,
    /// `GET` it for the output video.
    pub video_url: String,
}

/// `GET /v1/jobs/{id}` (and the 202 of its result before it finishes).
#[derive(ToSchema)]
pub struct JobStatus {
    /// The job's id.
    pub id: String,
    /// The task it runs.
    pub task: Option<String>,
    /// Its state.
    pub status: JobState,
    /// Submission time, Unix milliseconds.
    pub created_unix_ms: Option<u64>,
    /// Time waiting for a worker, ms; null before it started.
    pub queue_ms: Option<f64>,
    /// Time on a worker, ms; null before it finished.
    pub compute_ms: Option<f64>,
    /// The replica that ran it (with the Redis job store only).
    #[schema(required = false)]
    pub replica: Option<String>,
    /// `video` for a video job (absent for a photo).
    #[schema(required = false)]
    pub kind: JobKind,
    /// A video job's frames done and in all (absent for a photo).
    #[schema(required = false)]
    pub progress: JobProgress,
    /// Why it failed (status `failed`).
    #[schema(required = false)]
    pub error: ErrorBody,
}

// ---------------------------------------------------------------- compatibility

/// `POST /api/parse`'s body.
#[derive(ToSchema)]
pub struct ApiParseRequest {
    /// The photo, base64 (a data-URL prefix is allowed).
    pub image: String,
}

/// One region in `/api/parse`'s answer.
#[derive(ToSchema)]
pub struct ApiParseSegment {
    /// LIP label name.
    pub label: String,
    /// Mean per-pixel evidence, in [0, 1].
    pub confidence: f32,
    /// Pixels with this label.
    pub pixel_count: u64,
}

/// `data` of `/api/parse`'s answer.
#[derive(ToSchema)]
pub struct ApiParseData {
    /// Absolute URL of the coloured mask PNG, served for the result TTL.
    pub colored_mask_url: String,
    /// Labelled regions.
    pub segments: Vec<ApiParseSegment>,
    /// People parsed.
    pub person_count: u32,
}

/// `POST /api/parse`'s answer, the shape of the parsing service percept replaces.
#[derive(ToSchema)]
pub struct ApiParseResponse {
    /// 0 on success.
    pub code: i32,
    /// `success`.
    pub message: String,
    /// The parse.
    pub data: ApiParseData,
}

// ---------------------------------------------------------------- request bodies

/// One image as a multipart form: the `image` file part; other fields are task options.
#[derive(ToSchema)]
pub struct ImageUpload {
    /// The photo (JPEG, PNG, WebP, BMP, GIF, TIFF).
    #[schema(value_type = String, format = Binary)]
    pub image: Vec<u8>,
}

/// One image as JSON: base64 `image`; other fields are task options.
#[derive(ToSchema)]
pub struct ImageJson {
    /// The photo, base64 (a data-URL prefix is allowed).
    pub image: String,
}

/// Several images as a multipart form: repeated `image` file parts; other fields are task
/// options.
#[derive(ToSchema)]
pub struct ImagesUpload {
    /// The photos, in order.
    #[schema(value_type = Vec<String>, format = Binary)]
    pub image: Vec<Vec<u8>>,
}

/// Several images as JSON: base64 strings in `images`; other fields are task options.
#[derive(ToSchema)]
pub struct ImagesJson {
    /// The photos, base64, in order.
    pub images: Vec<String>,
}

// ---------------------------------------------------------------- service routes

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ok`, `loading` or `shutting_down`.
    pub status: String,
    /// Models loaded and warmed.
    pub model_loaded: bool,
    /// The inference engine.
    pub engine: String,
    /// Models loaded.
    pub models: u32,
    /// Model reloads since start.
    pub reloads: u64,
    /// Worker threads.
    pub workers: u32,
    /// Requests that may wait.
    pub queue_capacity: u32,
    /// Requests waiting now.
    pub queued: u32,
}

/// `GET /v1/models`.
#[derive(ToSchema)]
pub struct ModelsResponse {
    /// The inference engine.
    pub engine: String,
    /// Models loaded.
    pub models: Vec<crate::state::ModelInfo>,
}

/// One task option, as `/v1/tasks` lists it.
#[derive(ToSchema)]
pub struct OptionInfo {
    /// Option name, as in the query string or body.
    pub name: String,
    /// JSON type: `number`, `integer`, `string` or `boolean`.
    pub kind: String,
    /// Default value, as text.
    pub default: String,
    /// What it does, its accepted values and its default.
    pub description: String,
    /// Lower bound of a `number` or `integer` option.
    #[schema(required = false)]
    pub minimum: Option<f64>,
    /// Upper bound (included) of a `number` or `integer` option.
    #[schema(required = false)]
    pub maximum: Option<f64>,
    /// Present (true) when `minimum` itself is refused.
    #[schema(required = false)]
    pub exclusive_minimum: Option<bool>,
    /// The accepted values of a choice option.
    #[schema(required = false)]
    pub choices: Vec<String>,
}

/// One task, as `/v1/tasks` lists it.
#[derive(ToSchema)]
pub struct TaskInfo {
    /// Route after `/v1/`.
    pub name: String,
    /// One line.
    pub summary: String,
    /// Its own options.
    pub options: Vec<OptionInfo>,
}

/// The upload limits.
#[derive(ToSchema)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Largest image, in pixels.
    pub max_pixels: u64,
    /// Longest image side.
    pub max_side: u32,
    /// Largest video an async job takes (`POST /v1/jobs/{task}`), in bytes.
    pub max_video_bytes: u64,
    /// Longest video an async job takes, in seconds.
    pub max_video_seconds: u64,
}

/// `GET /v1/tasks`.
#[derive(ToSchema)]
pub struct TasksResponse {
    /// Tasks offered.
    pub tasks: Vec<TaskInfo>,
    /// Options every task takes.
    pub common_options: Vec<OptionInfo>,
    /// Upload limits.
    pub limits: Limits,
}

/// `POST /v1/admin/reload`'s answer.
#[derive(ToSchema)]
pub struct ReloadResponse {
    /// `reloaded`.
    pub status: String,
    /// The inference engine.
    pub engine: String,
    /// Models now loaded.
    pub models: Vec<String>,
    /// Tasks now served.
    pub tasks: Vec<String>,
    /// Time to load, verify and warm them, ms.
    pub ms: u64,
}
