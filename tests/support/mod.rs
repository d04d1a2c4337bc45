pub mod fileserver;
pub mod http;
pub mod pixiv;
