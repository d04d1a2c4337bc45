pub mod fileserver;
pub mod http;
