//! The explicit list of providers.

use crate::config::SectionSpec;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::postprocess::PostRunners;
use crate::providers::api::Provider;
use crate::providers::params::JobTypeInfo;
use crate::steps::TaskRunners;

/// Every provider, in the order job types are documented. Adding a
/// provider is its folder, its `mod` line in `providers/mod.rs` and one
/// entry here.
pub static PROVIDERS: &[&dyn Provider] = &[
    &super::http_files::HttpFiles,
    &super::pixiv::Pixiv,
    &super::octoparse::Octoparse,
    &super::picwish::Picwish,
    &super::douyin::Douyin,
    &super::demo::Demo,
];

/// Finds the provider and documentation of a job type.
pub fn find_job_type(name: &str) -> Option<(&'static dyn Provider, &'static JobTypeInfo)> {
    PROVIDERS.iter().find_map(|p| p.job_types().iter().find(|t| t.name == name).map(|t| (*p, t)))
}

/// Something the registry finds by the name items give it (a post step,
/// a task runner).
pub trait Named {
    /// The name.
    fn name(&self) -> &'static str;
}

/// Registered pieces of one kind, by name; cheap to clone. Of two with one
/// name the first wins (the tests below keep names unique).
pub struct ByName<T: ?Sized + 'static>(Arc<HashMap<&'static str, &'static T>>);

impl<T: ?Sized + Named + 'static> ByName<T> {
    /// The set of `items`.
    pub fn new(items: impl IntoIterator<Item = &'static T>) -> ByName<T> {
        let mut map = HashMap::new();
        for it in items {
            map.entry(it.name()).or_insert(it);
        }
        ByName(Arc::new(map))
    }

    /// The one called `name`.
    pub fn get(&self, name: &str) -> Option<&'static T> {
        self.0.get(name).copied()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.0.keys().copied().collect();
        v.sort_unstable();
        v
    }
}

impl<T: ?Sized> Clone for ByName<T> {
    fn clone(&self) -> ByName<T> {
        ByName(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> Default for ByName<T> {
    fn default() -> ByName<T> {
        ByName(Arc::new(HashMap::new()))
    }
}

impl<T: ?Sized> fmt::Debug for ByName<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.0.keys().copied().collect();
        names.sort_unstable();
        f.debug_tuple("ByName").field(&names).finish()
    }
}

/// The post-processing steps of every provider, by name.
pub fn post_runners() -> PostRunners {
    PostRunners::new(PROVIDERS.iter().flat_map(|p| p.post_steps().iter().copied()))
}

/// The remote-task runners of every provider, by name.
pub fn task_runners() -> TaskRunners {
    TaskRunners::new(PROVIDERS.iter().flat_map(|p| p.task_runners().iter().copied()))
}

/// The configuration sections of every provider; a provider that declares
/// none still has one for the keys every section may hold
/// ([`crate::config::COMMON_KEYS`], its pacing).
pub fn section_specs() -> Vec<SectionSpec> {
    PROVIDERS
        .iter()
        .map(|p| p.config_section().unwrap_or(SectionSpec { name: p.name(), keys: &[] }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_type_names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for p in PROVIDERS {
            for t in p.job_types() {
                assert!(seen.insert(t.name), "duplicate job type {}", t.name);
                assert!(t.name.contains('.'), "{} lacks a provider prefix", t.name);
            }
        }
        assert!(find_job_type("http.files").is_some());
    }

    #[test]
    fn post_step_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in PROVIDERS {
            for s in p.post_steps() {
                assert!(seen.insert(s.name()), "two providers register the post step {:?}", s.name());
            }
        }
        assert_eq!(post_runners().names().len(), seen.len());
        let mut seen = std::collections::HashSet::new();
        for p in PROVIDERS {
            for r in p.task_runners() {
                assert!(seen.insert(r.name()), "two providers register the task runner {:?}", r.name());
            }
        }
    }

    /// The part of the README between `start` and the next heading of the
    /// same level.
    fn readme_part(start: &str) -> &'static str {
        let readme = include_str!("../../README.md");
        let level = start.split(' ').next().unwrap_or("##");
        let rest = readme.split_once(&format!("\n{start}\n")).map_or("", |(_, r)| r);
        rest.split(&format!("\n{level} ")).next().unwrap_or("")
    }

    #[test]
    fn every_section_key_is_documented_in_the_readme() {
        let config = readme_part("## Configuration");
        assert!(!config.is_empty(), "README.md has a Configuration section");
        for spec in section_specs() {
            for k in spec.keys {
                let name = format!("`{}.{}`", spec.name, k.name);
                let Some(row) = config.lines().find(|l| l.starts_with('|') && l.contains(&name)) else {
                    panic!("{name} has no row in README.md's configuration table");
                };
                if let Some(var) = k.env {
                    assert!(row.contains(&format!("`{var}`")), "{name}: its row lacks `{var}`");
                }
                if let Some(d) = k.default {
                    assert!(row.contains(d), "{name}: its row lacks the default {d}");
                }
                assert!(
                    k.example.is_none() || k.default.is_none(),
                    "{name}: an example is for keys without default"
                );
            }
        }
    }

    #[test]
    fn every_job_type_and_key_is_documented_in_the_readme() {
        let jobs = readme_part("### Job files");
        assert!(!jobs.is_empty(), "README.md has a Job files section");
        for p in PROVIDERS {
            for t in p.job_types() {
                assert!(jobs.contains(&format!("`{}`", t.name)), "{} is not in README.md", t.name);
                for k in t.keys() {
                    let quoted = [format!("`{}`", k.name), format!("`\"{}\"", k.name)];
                    assert!(
                        quoted.iter().any(|q| jobs.contains(q)),
                        "{}: `{}` is not in README.md",
                        t.name,
                        k.name
                    );
                }
            }
        }
    }
}
