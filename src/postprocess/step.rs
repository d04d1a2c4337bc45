//! The interface of a post-processing step and the set of them.
//!
//! Owns the name → step map the post-processing thread looks steps up
//! in. The kernel never knows what a step does: a provider supplies its
//! steps ([`crate::providers::Provider::post_steps`]), its items name
//! them, and the thread runs them. Invariant: one name, one step; an item
//! naming a step this build lacks fails that step with a reason and keeps
//! its download.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::PostStep;

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

/// Every registered step, by name; cheap to clone.
#[derive(Clone, Default)]
pub struct PostRunners(Arc<HashMap<&'static str, &'static dyn PostRunner>>);

impl PostRunners {
    /// The set of `steps`; of two with one name, the first wins (the
    /// provider registry's test keeps names unique).
    pub fn new(steps: impl IntoIterator<Item = &'static dyn PostRunner>) -> PostRunners {
        let mut map = HashMap::new();
        for s in steps {
            map.entry(s.name()).or_insert(s);
        }
        PostRunners(Arc::new(map))
    }

    /// The step called `name`.
    pub fn get(&self, name: &str) -> Option<&'static dyn PostRunner> {
        self.0.get(name).copied()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.0.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl fmt::Debug for PostRunners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PostRunners").field(&self.names()).finish()
    }
}
