//! The explicit list of providers.

use crate::config::SectionSpec;
use crate::providers::api::Provider;
use crate::providers::params::JobTypeInfo;

/// Every provider, in the order job types are documented. Adding a
/// provider is its folder, its `mod` line in `providers/mod.rs` and one
/// entry here.
pub static PROVIDERS: &[&dyn Provider] =
    &[&super::http_files::HttpFiles, &super::pixiv::Pixiv, &super::octoparse::Octoparse, &super::demo::Demo];

/// Finds the provider and documentation of a job type.
pub fn find_job_type(name: &str) -> Option<(&'static dyn Provider, &'static JobTypeInfo)> {
    PROVIDERS.iter().find_map(|p| p.job_types().iter().find(|t| t.name == name).map(|t| (*p, t)))
}

/// The configuration sections of every provider.
pub fn section_specs() -> Vec<SectionSpec> {
    PROVIDERS.iter().filter_map(|p| p.config_section()).collect()
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
}
