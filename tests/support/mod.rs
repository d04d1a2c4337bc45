pub mod client;
pub mod fileserver;
pub mod http;
pub mod live;
pub mod octoparse;
pub mod picwish;
pub mod pixiv;
pub mod tasks;
