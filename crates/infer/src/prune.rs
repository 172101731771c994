//! Cutting an ONNX graph down to some of its outputs, so a pipeline that does not need an
//! output does not pay for the layers that only feed it (BlazePose's person-mask head is half
//! of `pose_landmark_full`'s time, and holistic tracking never returns the mask).
//!
//! ONNX Runtime runs every node of a session whatever outputs a run asks for, so the cut has to
//! happen in the model bytes before the session is built; tract gets the same bytes.

use std::collections::HashSet;
use std::path::Path;

use prost::Message;
use sha2::{Digest, Sha256};
use tract_onnx::pb::{ModelProto, NodeProto};

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
}
