//! Safe names for files and folders.
//!
//! Owns every rule that turns text from a job file or a server (a task
//! name, a URL, a title) into a path component. The invariant: whatever
//! goes in, what comes out is one non-empty path component of at most 255
//! bytes that cannot climb out of its folder (no `/`, `\`, NUL, `.` or
//! `..`) and is legal on the SMB shares our users save to. Naming
//! templates, which providers declare fields for, render through the same
//! rules, and so do the names servers give in `Content-Disposition`.

mod disposition;
mod escape;
mod sanitize;
mod template;

pub use disposition::file_name_from_disposition;
pub use escape::{escape_display, is_unsafe_char};
pub use sanitize::{
    MAX_COMPONENT_BYTES, file_name_from_url, percent_decode_lossy, sanitize_component, truncate_keeping_ext,
    with_suffix,
};
pub use template::{Field, FieldKind, Template, TemplateError, cut};
