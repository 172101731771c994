//! The tract engine: pure Rust, single-threaded per call, so `workers × 1` never oversubscribes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::{
    Datum, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable, TValue, TVec,
    TypedRunnableModel,
};

use crate::engine::{Engine, EngineKind, Session};
use crate::manifest::{Layout, ModelSpec};
use crate::{InferError, Result, Tensor};

/// Plans kept per dynamic model; beyond this the cache is cleared, which bounds memory when
/// callers feed many distinct sizes (pipelines quantise sizes, so this is a backstop).
const MAX_CACHED_PLANS: usize = 24;

/// The tract engine.
#[derive(Debug, Clone, Copy, Default)]
pub struct TractEngine;

impl Engine for TractEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Tract
    }

    fn load(&self, path: &Path, spec: &ModelSpec) -> Result<Arc<dyn Session>> {
        Ok(Arc::new(TractSession::load(path, spec)?))
    }
}

/// A tract session. Models with a fixed input shape get one optimised plan at load; models with
/// dynamic height/width (CenterFace) get one plan per input size, built on first use and cached,
/// because a concrete shape lets tract pick its fastest kernels and fold every shape computation.
pub struct TractSession {
    name: String,
    layout: Layout,
    fixed: Option<Arc<TypedRunnableModel>>,
    proto: Option<InferenceModel>,
    plans: Mutex<HashMap<Vec<usize>, Arc<TypedRunnableModel>>>,
}

fn engine_err(name: &str, e: impl std::fmt::Display) -> InferError {
    InferError::Engine {
        model: name.to_string(),
        message: format!("{e:#}"),
    }
}

impl TractSession {
    /// Loads the ONNX file at `path` (already verified) as described by `spec`.
    pub fn load(path: &Path, spec: &ModelSpec) -> Result<Self> {
        let name = spec.name.clone();
        let bytes = crate::graph::model_bytes(path, spec, false)?;
        let model = tract_onnx::onnx()
            .model_for_read(&mut bytes.as_slice())
            .map_err(|e| engine_err(&name, e))?;
        let fixed_shape: Option<Vec<usize>> = spec
            .input
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect();
        let (fixed, proto) = match fixed_shape {
            Some(shape) => (Some(optimise(&name, model, &shape)?), None),
            None => (None, Some(model)),
        };
        Ok(Self {
            name,
            layout: spec.input.layout,
            fixed,
            proto,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The plan for an input of `shape`.
    fn plan(&self, shape: &[usize]) -> Result<Arc<TypedRunnableModel>> {
        if let Some(plan) = &self.fixed {
            return Ok(plan.clone());
        }
        let proto = self
            .proto
            .as_ref()
            .ok_or_else(|| engine_err(&self.name, "no model to plan from"))?;
        if let Some(plan) = self.lock_plans().get(shape) {
            return Ok(plan.clone());
        }
        // Built outside the lock: optimising takes a while and other sizes must not wait.
        let plan = optimise(&self.name, proto.clone(), shape)?;
        let mut plans = self.lock_plans();
        if plans.len() >= MAX_CACHED_PLANS {
            plans.clear();
        }
        plans.insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }

    fn lock_plans(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Vec<usize>, Arc<TypedRunnableModel>>> {
        // A panic while holding the lock cannot leave the map inconsistent (one insert or clear).
        self.plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The layout of the image input.
    pub fn layout(&self) -> Layout {
        self.layout
    }
}

fn optimise(name: &str, model: InferenceModel, shape: &[usize]) -> Result<Arc<TypedRunnableModel>> {
    let fact = InferenceFact::dt_shape(f32::datum_type(), shape);
    model
        .with_input_fact(0, fact)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| engine_err(name, e))
}

impl Session for TractSession {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let [input] = inputs else {
            return Err(InferError::Shape(format!(
                "model `{}` takes one input, got {}",
                self.name,
                inputs.len()
            )));
        };
        let plan = self.plan(input.shape())?;
        let tensor = tract_onnx::prelude::Tensor::from_shape::<f32>(input.shape(), input.data())
            .map_err(|e| engine_err(&self.name, e))?;
        let mut feed: TVec<TValue> = TVec::new();
        feed.push(tensor.into());
        let outputs = plan.run(feed).map_err(|e| engine_err(&self.name, e))?;
        outputs
            .iter()
            .map(|value| {
                let shape = value.shape().to_vec();
                let view = value
                    .try_as_plain_ram()
                    .map_err(|e| engine_err(&self.name, e))?;
                let data = view
                    .as_slice::<f32>()
                    .map_err(|e| engine_err(&self.name, e))?;
                Tensor::new(shape, data.to_vec())
            })
            .collect()
    }

    fn engine(&self) -> EngineKind {
        EngineKind::Tract
    }
}
