//! Edits to an ONNX graph made at load, on the verified bytes:
//!
//! - cutting a graph down to some of its outputs, so a pipeline that does not need an output
//!   does not pay for the layers that only feed it (BlazePose's person-mask head is half of
//!   `pose_landmark_full`'s time, and holistic tracking never returns the mask). ONNX Runtime
//!   runs every node of a session whatever outputs a run asks for, so the cut has to happen in
//!   the bytes before the session is built; tract gets the same bytes;
//! - for ONNX Runtime, spelling `PRelu` with a per-channel slope as `x + (slope - 1)·min(x, 0)`:
//!   its `PRelu` kernel takes a slow broadcasting path and leaves the blocked (NCHWc) layout
//!   its convolutions use, while `Min`, `Mul` and `Add` stay fast (face mesh 2.9 → 1.0 ms).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use prost::Message;
use sha2::{Digest, Sha256};
use tract_onnx::pb::{GraphProto, ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

use crate::manifest::{ModelSpec, check_hash};
use crate::{InferError, Result};

fn bad(model: &str, message: impl Into<String>) -> InferError {
    InferError::Engine {
        model: model.to_string(),
        message: message.into(),
    }
}

/// Cuts `graph` down to the outputs named in `keep` (in that order) and the nodes and
/// initializers they depend on.
fn keep_outputs(model: &str, graph: &mut GraphProto, keep: &[&str]) -> Result<()> {
    let mut outputs = Vec::with_capacity(keep.len());
    for &name in keep {
        let output = graph
            .output
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| bad(model, format!("the graph has no output `{name}`")))?;
        outputs.push(output.clone());
    }
    if graph.node.iter().any(has_subgraph) {
        // Nodes with subgraphs read outer values implicitly; none of our models has them.
        return Err(bad(model, "cannot cut a graph with control-flow subgraphs"));
    }
    // Nodes are stored in topological order, so one walk from the back finds every producer.
    let mut needed: HashSet<String> = keep.iter().map(|s| (*s).to_string()).collect();
    let mut kept = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            kept[i] = true;
            needed.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
        }
    }
    let mut kept = kept.into_iter();
    graph.node.retain(|_| kept.next().unwrap_or(false));
    graph.output = outputs;
    graph.initializer.retain(|t| needed.contains(&t.name));
    graph.sparse_initializer.retain(|t| {
        t.values
            .as_ref()
            .is_some_and(|values| needed.contains(&values.name))
    });
    graph.value_info.retain(|v| needed.contains(&v.name));
    Ok(())
}

fn has_subgraph(node: &NodeProto) -> bool {
    node.attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
}

/// The bytes an engine builds `spec`'s session from: the file, checked against the manifest's
/// sha256 (so a file changed since it was verified is refused), cut down to the variant's
/// outputs when `spec` is a `[[variant]]`, with `PRelu` expanded when `expand_prelus` (ONNX
/// Runtime). The protobuf is decoded at most once, and only when there is something to edit.
pub fn model_bytes(path: &Path, spec: &ModelSpec, expand_prelus: bool) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|source| InferError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_hash(path, spec, hex::encode(Sha256::digest(&bytes)))?;
    // Op types are stored as plain strings: a graph without the bytes "PRelu" has none.
    let has_prelu = expand_prelus && bytes.windows(5).any(|w| w == b"PRelu");
    if spec.variant_of.is_none() && !has_prelu {
        return Ok(bytes);
    }
    let mut proto = ModelProto::decode(bytes.as_slice())
        .map_err(|e| bad(&spec.name, format!("not an ONNX model: {e}")))?;
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| bad(&spec.name, "the model has no graph"))?;
    if spec.variant_of.is_some() {
        let keep: Vec<&str> = spec.outputs.iter().map(|o| o.name.as_str()).collect();
        keep_outputs(&spec.name, graph, &keep)?;
    }
    if has_prelu {
        expand_prelu(graph);
    }
    Ok(proto.encode_to_vec())
}

/// The values of a float initializer stored inline, or None (external data, other types).
fn float_values(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != DataType::Float as i32 || !t.external_data.is_empty() {
        return None;
    }
    if !t.float_data.is_empty() {
        return Some(t.float_data.clone());
    }
    t.raw_data.len().is_multiple_of(4).then(|| {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

fn float_tensor(name: String, dims: Vec<i64>, values: &[f32]) -> TensorProto {
    TensorProto {
        name,
        dims,
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..TensorProto::default()
    }
}

fn op(op_type: &str, name: String, input: [&str; 2], output: String) -> NodeProto {
    NodeProto {
        op_type: op_type.to_string(),
        name,
        input: input.iter().map(|s| (*s).to_string()).collect(),
        output: vec![output],
        ..NodeProto::default()
    }
}

/// Writes every `PRelu` of `graph` whose slope is a float initializer as
/// `x + (slope - 1)·min(x, 0)` (equal up to float rounding: 1e-5 of the face mesh's outputs).
fn expand_prelu(graph: &mut GraphProto) {
    let slopes: HashMap<String, (Vec<i64>, Vec<f32>)> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.clone(), (t.dims.clone(), float_values(t)?))))
        .collect();
    let zero = "percept_prelu_zero".to_string();
    let mut added: HashSet<String> = HashSet::new();
    let mut extra = vec![float_tensor(zero.clone(), vec![1], &[0.0])];
    let old = std::mem::take(&mut graph.node);
    for node in old {
        let slope = node.input.get(1).and_then(|s| slopes.get(s));
        let (Some((dims, values)), "PRelu", [x, slope_name], [y]) = (
            slope,
            node.op_type.as_str(),
            node.input.as_slice(),
            node.output.as_slice(),
        ) else {
            graph.node.push(node);
            continue;
        };
        let minus_one = format!("{slope_name}__minus_one");
        if added.insert(minus_one.clone()) {
            let shifted: Vec<f32> = values.iter().map(|v| v - 1.0).collect();
            extra.push(float_tensor(minus_one.clone(), dims.clone(), &shifted));
        }
        let (negative, scaled) = (format!("{y}__negative"), format!("{y}__scaled"));
        let base = &node.name;
        graph.node.push(op(
            "Min",
            format!("{base}__min"),
            [x, &zero],
            negative.clone(),
        ));
        graph.node.push(op(
            "Mul",
            format!("{base}__mul"),
            [&negative, &minus_one],
            scaled.clone(),
        ));
        graph
            .node
            .push(op("Add", format!("{base}__add"), [x, &scaled], y.clone()));
    }
    graph.initializer.extend(extra);
    // The old slopes now feed nothing; ONNX Runtime would warn about each one.
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.input.iter().map(|i| i.name.as_str()))
        .collect();
    graph.initializer.retain(|t| used.contains(t.name.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
    }

    fn graph_of(file: &str) -> GraphProto {
        let bytes = std::fs::read(models_dir().join(file)).expect("shipped model");
        ModelProto::decode(bytes.as_slice())
            .expect("decode")
            .graph
            .expect("graph")
    }

    #[test]
    fn cutting_the_mask_drops_its_layers_and_keeps_the_order_asked_for() {
        let full = graph_of("pose_landmark_full.onnx");
        let mut cut = full.clone();
        keep_outputs("p", &mut cut, &["Identity_4", "Identity"]).expect("cut");
        let names: Vec<&str> = cut.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["Identity_4", "Identity"]);
        assert!(cut.node.len() < full.node.len());
        assert!(cut.initializer.len() < full.initializer.len());
        // Every value a kept node reads is produced by a kept node, an initializer or an input.
        let mut known: HashSet<&str> = cut.input.iter().map(|i| i.name.as_str()).collect();
        known.extend(cut.initializer.iter().map(|t| t.name.as_str()));
        for node in &cut.node {
            for input in node.input.iter().filter(|i| !i.is_empty()) {
                assert!(
                    known.contains(input.as_str()),
                    "{input} read before it is made"
                );
            }
            known.extend(node.output.iter().map(String::as_str));
        }
    }

    #[test]
    fn unknown_outputs_and_garbage_are_errors() {
        let mut graph = graph_of("pose_landmark_full.onnx");
        assert!(keep_outputs("p", &mut graph, &["nope"]).is_err());
        let manifest = crate::Manifest::load(&models_dir()).expect("manifest");
        let mut spec = manifest
            .model("pose_landmark_full_no_mask")
            .expect("variant")
            .clone();
        let garbage = b"not a model at all";
        // Its own hash, so the bytes get as far as decoding.
        spec.sha256 = hex::encode(Sha256::digest(garbage));
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), garbage).expect("write");
        assert!(matches!(
            model_bytes(file.path(), &spec, false),
            Err(InferError::Engine { .. })
        ));
    }

    #[test]
    fn prelu_becomes_min_mul_add_and_graphs_without_it_are_untouched() {
        let before = graph_of("face_landmark.onnx");
        let mut after = before.clone();
        expand_prelu(&mut after);
        let count = |g: &tract_onnx::pb::GraphProto, op: &str| {
            g.node.iter().filter(|n| n.op_type == op).count()
        };
        let prelus = count(&before, "PRelu");
        assert!(prelus > 0);
        assert_eq!(count(&after, "PRelu"), 0);
        assert_eq!(after.node.len(), before.node.len() + 2 * prelus);
        let made: HashSet<&str> = after
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str))
            .collect();
        let inits: HashSet<&str> = after.initializer.iter().map(|t| t.name.as_str()).collect();
        for node in &after.node {
            for input in &node.input {
                let from_graph = after.input.iter().any(|i| &i.name == input);
                assert!(
                    made.contains(input.as_str()) || inits.contains(input.as_str()) || from_graph,
                    "{input}"
                );
            }
        }
        let manifest = crate::Manifest::load(&models_dir()).expect("manifest");
        let spec = manifest.model("hand_landmark_full").expect("model");
        let plain = std::fs::read(models_dir().join(&spec.file)).expect("shipped model");
        let path = models_dir().join(&spec.file);
        assert_eq!(model_bytes(&path, spec, true).expect("bytes"), plain);
    }
}
