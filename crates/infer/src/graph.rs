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
use tract_onnx::pb::{ModelProto, NodeProto, TensorProto, tensor_proto::DataType};

use crate::manifest::ModelSpec;
use crate::{InferError, Result};

fn bad(model: &str, message: impl Into<String>) -> InferError {
    InferError::Engine {
        model: model.to_string(),
        message: message.into(),
    }
}

/// The serialized model `bytes` with only the graph outputs named in `keep` (in that order) and
/// the nodes and initializers they depend on.
pub fn keep_outputs(model: &str, bytes: &[u8], keep: &[&str]) -> Result<Vec<u8>> {
    let mut proto =
        ModelProto::decode(bytes).map_err(|e| bad(model, format!("not an ONNX model: {e}")))?;
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| bad(model, "the model has no graph"))?;
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
    let nodes = std::mem::take(&mut graph.node);
    graph.node = nodes
        .into_iter()
        .zip(kept)
        .filter_map(|(node, keep)| keep.then_some(node))
        .collect();
    graph.output = outputs;
    graph.initializer.retain(|t| needed.contains(&t.name));
    graph.sparse_initializer.retain(|t| {
        t.values
            .as_ref()
            .is_some_and(|values| needed.contains(&values.name))
    });
    graph.value_info.retain(|v| needed.contains(&v.name));
    Ok(proto.encode_to_vec())
}

fn has_subgraph(node: &NodeProto) -> bool {
    node.attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
}

/// The bytes an engine builds `spec`'s session from: the file, checked against the manifest's
/// sha256 (so a file changed since it was verified is refused), cut down to the variant's
/// outputs when `spec` is a `[[variant]]`.
pub fn model_bytes(path: &Path, spec: &ModelSpec) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|source| InferError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if !actual.eq_ignore_ascii_case(&spec.sha256) {
        return Err(InferError::HashMismatch {
            path: path.to_path_buf(),
            expected: spec.sha256.clone(),
            actual,
        });
    }
    if spec.variant_of.is_none() {
        return Ok(bytes);
    }
    let keep: Vec<&str> = spec.outputs.iter().map(|o| o.name.as_str()).collect();
    keep_outputs(&spec.name, &bytes, &keep)
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

/// `bytes` with every `PRelu` whose slope is a float initializer written as
/// `x + (slope - 1)·min(x, 0)` (equal up to float rounding: 1e-5 of the face mesh's outputs);
/// the bytes unchanged when the graph has none.
pub fn expand_prelu(model: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    let mut proto = ModelProto::decode(bytes.as_slice())
        .map_err(|e| bad(model, format!("not an ONNX model: {e}")))?;
    let Some(graph) = proto.graph.as_mut() else {
        return Ok(bytes);
    };
    if !graph.node.iter().any(|n| n.op_type == "PRelu") {
        return Ok(bytes);
    }
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
    Ok(proto.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pose_landmark_bytes() -> Vec<u8> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/pose_landmark_full.onnx");
        std::fs::read(path).expect("shipped model")
    }

    #[test]
    fn cutting_the_mask_drops_its_layers_and_keeps_the_order_asked_for() {
        let bytes = pose_landmark_bytes();
        let full = ModelProto::decode(bytes.as_slice()).expect("decode");
        let cut = keep_outputs("p", &bytes, &["Identity_4", "Identity"]).expect("cut");
        let cut = ModelProto::decode(cut.as_slice()).expect("decode");
        let (full, cut) = (full.graph.expect("graph"), cut.graph.expect("graph"));
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
        let bytes = pose_landmark_bytes();
        assert!(keep_outputs("p", &bytes, &["nope"]).is_err());
        assert!(keep_outputs("p", b"not a model at all", &["Identity"]).is_err());
    }

    #[test]
    fn prelu_becomes_min_mul_add_and_graphs_without_it_are_untouched() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let bytes = std::fs::read(dir.join("face_landmark.onnx")).expect("shipped model");
        let before = ModelProto::decode(bytes.as_slice()).expect("decode");
        let after = expand_prelu("face", bytes).expect("expand");
        let after = ModelProto::decode(after.as_slice()).expect("decode");
        let (before, after) = (before.graph.expect("graph"), after.graph.expect("graph"));
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
        let plain = std::fs::read(dir.join("hand_landmark_full.onnx")).expect("shipped model");
        assert_eq!(expand_prelu("hand", plain.clone()).expect("expand"), plain);
    }
}
