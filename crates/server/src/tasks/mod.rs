//! The tasks percept offers, as adapters from typed results to the API's JSON.

mod art;
mod inspect;

use std::sync::Arc;

pub use art::Art;
pub use inspect::{Inspect, InspectResult};

use crate::TaskRegistry;

/// Every task that needs no model.
pub fn default_registry() -> TaskRegistry {
    let mut registry = TaskRegistry::default();
    registry.register(Arc::new(Inspect));
    for style in percept_art::Style::ALL {
        registry.register(Arc::new(Art::new(style)));
    }
    registry
}
