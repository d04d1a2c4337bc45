//! Local inputs: the files a job may read from this machine (images to
//! upload for processing, for example).
//!
//! Owns the policy for reading a local path a job names. The configured
//! `input_roots` are the only folders jobs may read from (none by
//! default: a job that names a local file is refused until the operator
//! says where inputs live). Invariants: a path is canonicalized, so a
//! symbolic link counts for where it leads; it is read only if it is a
//! regular file inside a root and within the size limit; everything else
//! fails that one input with a one-line reason and is never opened for
//! reading; and the file is opened without following a link, so a path
//! swapped for a link after the check is still refused. A URL input that
//! must be uploaded is fetched first into the job's own scratch folder
//! ([`stage_url`]), complete or not at all, and read from there. What a
//! file is comes from its bytes ([`sniff_file`]): kind, dimensions, and
//! whether its end is there.

mod policy;
mod sniff;
mod stage;

pub use policy::{InputError, InputPolicy, LocalInput};
pub use sniff::{ImageInfo, ImageKind, NotAnImage, sniff, sniff_file};
pub use stage::stage_url;
