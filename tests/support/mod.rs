pub mod http;
pub mod fileserver;
