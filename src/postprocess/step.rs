//! The interface of a post-processing step and the set of them.
//!
//! Owns the name → step map the post-processing thread looks steps up
//! in. The kernel never knows what a step does: a provider supplies its
//! steps ([`crate::providers::Provider::post_steps`]), its items name
//! them, and the thread runs them. Invariant: one name, one step; an item
//! naming a step this build lacks fails that step with a reason and keeps
//! its download.

use std::path::Path;

use crate::checkpoint::PostStep;
use crate::providers::{ByName, Named};

/// A step a provider supplies, run on a downloaded file.
pub trait PostRunner: Send + Sync {
    /// The name items give in [`PostStep::name`].
    fn name(&self) -> &'static str;

    /// Turns the complete download `input` into `output`. It must write
    /// `output` only complete (a temporary file renamed when done), never
    /// change `input`, and return a one-line reason when it fails. It runs
    /// on the post-processing thread, so it may take its time.
    fn run(&self, input: &Path, step: &PostStep, output: &Path) -> Result<(), String>;
}

/// Every registered step, by name.
pub type PostRunners = ByName<dyn PostRunner>;

impl Named for dyn PostRunner {
    fn name(&self) -> &'static str {
        PostRunner::name(self)
    }
}
