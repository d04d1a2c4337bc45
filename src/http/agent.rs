//! Construction of the single shared `ureq::Agent`.
//!
//! Every request of the daemon goes through one agent (cloned into each
//! thread; a clone is a reference-count bump) so that the connection pool,
//! TLS session cache and resolver are shared and `Agent::shutdown` reaches
//! every in-flight transfer. All network policy — route, trust store,
//! timeouts, pool size — is decided here, once, from [`NetOptions`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ureq::Agent;
use ureq::config::Config;
use ureq::tls::TlsConfig;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::DefaultConnector;

use super::pinning::PinnedResolver;
use super::proxy::parse_proxy;
use super::resolver::{Cached, LiteralFirst};
use super::roots::root_certs;

/// How requests reach servers (config key `proxy_mode` 0/1/2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Mode 0: connect straight to the server, resolving names with system
    /// DNS. Proxy environment variables are deliberately ignored.
    Direct,
    /// Mode 1: every connection goes through this proxy. The value is a URL
    /// with scheme `http://`, `https://` (HTTP CONNECT, the proxy resolves
    /// names), `socks4://`, `socks5://` (names resolved locally) or
    /// `socks5h://` (the proxy resolves names), optionally with
    /// `user:password@`.
    Proxy(String),
    /// Mode 2: connect to a fixed IP for the listed host names (like
    /// `curl --resolve`); TLS still verifies the certificate against the real
    /// host name. Unlisted names use system DNS.
    Pinned(BTreeMap<String, IpAddr>),
}

/// Everything needed to build the agent; filled from the config file.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Where connections go.
    pub route: Route,
    /// Extra PEM CA certificates trusted *in addition to* the built-in
    /// Mozilla roots (for TLS-intercepting proxies, private CAs).
    pub ca_file: Option<PathBuf>,
    /// Budget for name resolution, connecting (TCP + proxy + TLS), waiting
    /// for response headers, and the longest allowed stall between two reads
    /// or writes. Deliberately not a whole-request limit: a large download on
    /// a slow but live link must not be killed; callers add a per-request
    /// `timeout_global` where they want one (API calls).
    pub timeout: Duration,
    /// `User-Agent` header sent with every request.
    pub user_agent: String,
    /// Idle keep-alive connections kept per host; set it to the number of
    /// download threads, or connections to the image host get closed and
    /// reopened constantly (ureq's default is 3).
    pub max_idle_per_host: usize,
}

/// Why the agent could not be built. Every message is one lower-case line
/// and never contains a proxy password, so it can go straight to a log or to
/// the terminal.
#[derive(Debug)]
#[non_exhaustive]
pub enum SetupError {
    /// The proxy URL is unusable.
    Proxy {
        /// The URL with any password replaced by `***`.
        url_redacted: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The extra CA file cannot be used.
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A pinned host name can never match a URL host.
    PinnedHost {
        /// The name as configured.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The user agent cannot be sent as a header value.
    UserAgent {
        /// What is wrong with it.
        reason: String,
    },
    /// A zero timeout would make every request fail immediately.
    ZeroTimeout,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Proxy { url_redacted, reason } => {
                write!(f, "invalid proxy {url_redacted:?}: {reason}")
            }
            SetupError::CaFile { path, reason } => {
                write!(f, "cannot use ca_file {}: {reason}", path.display())
            }
            SetupError::PinnedHost { host, reason } => {
                write!(f, "invalid pinned host {host:?}: {reason}")
            }
            SetupError::UserAgent { reason } => write!(f, "invalid user agent: {reason}"),
            SetupError::ZeroTimeout => write!(f, "network timeout must be greater than zero"),
        }
    }
}

impl std::error::Error for SetupError {}

/// Builds the one agent the whole daemon shares.
///
/// Invariants this establishes:
/// * the proxy is always set explicitly — ureq's default config would read
///   `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY`, making behaviour differ between
///   a shell and a service;
/// * HTTP error statuses are returned as responses (`http_status_as_error`
///   off), so callers can read `Retry-After` and other headers on 429/503;
/// * certificates are always verified, against the real host name;
/// * no end-to-end timeout (see [`NetOptions::timeout`]).
pub fn build_agent(opts: &NetOptions) -> Result<Agent, SetupError> {
    if opts.timeout.is_zero() {
        return Err(SetupError::ZeroTimeout);
    }
    check_user_agent(&opts.user_agent)?;

    let proxy = match &opts.route {
        Route::Proxy(url) => Some(parse_proxy(url)?),
        Route::Direct | Route::Pinned(_) => None,
    };
    let tls = TlsConfig::builder().root_certs(root_certs(opts.ca_file.as_deref())?).build();
    let t = Some(opts.timeout);
    let config: Config = Agent::config_builder()
        .http_status_as_error(false)
        .proxy(proxy)
        .tls_config(tls)
        .user_agent(opts.user_agent.as_str())
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_send_request(t)
        .timeout_recv_response(t)
        .timeout_per_read(t)
        .timeout_per_write(t)
        // The total must not be the limiting factor for one busy host, and
        // the API host plus image host(s) each need room: keep at least the
        // ureq default of 10, and twice the per-host figure.
        .max_idle_connections(opts.max_idle_per_host.saturating_mul(2).max(10))
        .max_idle_connections_per_host(opts.max_idle_per_host)
        .build();

    Ok(match &opts.route {
        Route::Pinned(pins) => {
            let resolver = LiteralFirst::new(Cached::new(PinnedResolver::new(pins)?), pins.keys());
            log::debug!("pinned hosts: {:?}", pins);
            Agent::with_parts(config, DefaultConnector::default(), resolver)
        }
        Route::Direct | Route::Proxy(_) => {
            let resolver =
                LiteralFirst::new(Cached::new(DefaultResolver::default()), std::iter::empty::<&String>());
            Agent::with_parts(config, DefaultConnector::default(), resolver)
        }
    })
}

/// Rejects user agents that cannot be a header value, so the mistake shows
/// at startup instead of as a failure of every request.
fn check_user_agent(ua: &str) -> Result<(), SetupError> {
    if ua.trim().is_empty() {
        return Err(SetupError::UserAgent { reason: "empty".to_string() });
    }
    if ua.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(SetupError::UserAgent {
            reason: "only printable ascii characters are allowed".to_string(),
        });
    }
    Ok(())
}

impl NetOptions {
    /// The network options of a resolved configuration (ProxyMode 0/1/2,
    /// `ca_file`, `timeout_secs`), with the pool sized for `concurrency`.
    pub fn from_config(config: &crate::config::Config) -> NetOptions {
        use crate::config::ProxyMode;
        let route = match config.proxy_mode {
            ProxyMode::Direct => Route::Direct,
            ProxyMode::Proxy => Route::Proxy(config.proxy.clone().unwrap_or_default()),
            ProxyMode::Pinned => Route::Pinned(config.hosts.clone()),
        };
        NetOptions {
            route,
            ca_file: config.ca_file.clone(),
            timeout: config.timeout,
            user_agent: format!("spoolfetch/{}", env!("CARGO_PKG_VERSION")),
            max_idle_per_host: config.concurrency,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::super::error::{describe, is_transient};
    use super::super::pinning::tests::{opts, pins, read_head, serve, serve_raw};
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::{BufReader, Read, Write};
    use std::net::{Ipv4Addr, TcpListener};
    use std::path::Path;
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(5);

    fn get_string(agent: &Agent, url: &str) -> Result<(u16, String), ureq::Error> {
        let mut resp = agent.get(url).call()?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string()?))
    }

    // ---------------------------------------------------------------- basics

    #[test]
    fn status_errors_are_responses_and_user_agent_is_sent() {
        let (port, heads) = serve_raw(
            1,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
                .to_string(),
        );
        let agent = build_agent(&opts(Route::Direct)).unwrap();
        let resp = agent.get(&format!("http://127.0.0.1:{port}/")).call().unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        let head = heads.recv_timeout(WAIT).unwrap().to_ascii_lowercase();
        assert!(head.contains("\r\nuser-agent: spoolfetch-test/0\r\n"), "{head}");
    }

    #[test]
    fn pool_and_timeout_settings() {
        let mut o = opts(Route::Direct);
        o.max_idle_per_host = 16;
        let agent = build_agent(&o).unwrap();
        let c = agent.config();
        assert!(!c.http_status_as_error());
        assert!(c.proxy().is_none());
        assert_eq!(c.max_idle_connections_per_host(), 16);
        assert!(c.max_idle_connections() >= 16);
        assert_eq!(c.timeout_per_read(), Some(o.timeout));
        assert_eq!(c.timeouts().connect, Some(o.timeout));
        assert_eq!(c.timeouts().global, None);

        o.timeout = Duration::ZERO;
        assert!(matches!(build_agent(&o), Err(SetupError::ZeroTimeout)));
        let mut o = opts(Route::Direct);
        o.user_agent = "bad\r\nx: y".into();
        assert!(matches!(build_agent(&o), Err(SetupError::UserAgent { .. })));
    }

    #[test]
    fn pinned_ip_literal_key_still_wins() {
        let (port, _heads) = serve(1, "pinned-literal");
        // A request for 10.255.255.1 (not routable here) goes to 127.0.0.1.
        let pins = BTreeMap::from([("10.255.255.1".to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))]);
        let agent = build_agent(&opts(Route::Pinned(pins))).unwrap();
        let got = get_string(&agent, &format!("http://10.255.255.1:{port}/")).unwrap();
        assert_eq!(got, (200, "pinned-literal".to_string()));
    }

    // ---------------------------------------------------------------- proxy

    #[test]
    fn proxy_url_validation() {
        let bad = [
            ("ftp://proxy:21", "unsupported scheme \"ftp\""),
            ("127.0.0.1:3128", "missing scheme"),
            ("http://user:hunter2@:3128", "missing proxy host"),
            ("socks5://", "missing proxy host"),
            ("http://user:hunter2@pro xy:3128", "not a valid proxy url"),
        ];
        for (url, want) in bad {
            let err = build_agent(&opts(Route::Proxy(url.into()))).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SetupError::Proxy { .. }), "{url}: {msg}");
            assert!(msg.contains(want), "{url}: {msg}");
            assert!(!msg.contains("hunter2"), "password leaked: {msg}");
            assert_eq!(msg, msg.to_lowercase());
            if want.contains("scheme") {
                assert!(msg.contains("http, https, socks4, socks5, socks5h"), "{msg}");
            }
        }
        for good in [
            "http://127.0.0.1:3128",
            "HTTPS://proxy.example:443",
            "socks4://10.0.0.1:1080",
            "socks5://u:p%40ss@10.0.0.1",
            "socks5h://10.0.0.1:1080",
        ] {
            let agent = build_agent(&opts(Route::Proxy(good.into()))).unwrap();
            assert!(agent.config().proxy().is_some(), "{good}");
        }
    }

    /// A minimal HTTP CONNECT proxy: records the CONNECT head, then plays
    /// the origin server itself inside the tunnel.
    fn connect_proxy() -> (u16, mpsc::Receiver<(String, String)>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            sock.set_read_timeout(Some(WAIT)).unwrap();
            let mut reader = BufReader::new(sock.try_clone().unwrap());
            let connect = read_head(&mut reader);
            let _ = sock.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            let inner = read_head(&mut reader);
            let _ =
                sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nvia-proxy");
            let _ = tx.send((connect, inner));
        });
        (port, rx)
    }

    #[test]
    fn proxy_mode_sends_traffic_through_the_proxy() {
        let (pport, heads) = connect_proxy();
        let route = Route::Proxy(format!("http://user:p%40ss@127.0.0.1:{pport}"));
        let agent = build_agent(&opts(route)).unwrap();
        // The origin name does not resolve locally: only the proxy can reach it.
        let got = get_string(&agent, "http://origin.invalid:81/z").unwrap();
        assert_eq!(got, (200, "via-proxy".to_string()));
        let (connect, inner) = heads.recv_timeout(WAIT).unwrap();
        assert!(connect.starts_with("CONNECT origin.invalid:81 HTTP/1.1\r\n"), "{connect}");
        // base64("user:p@ss"): the percent-encoded password is decoded once.
        assert!(connect.contains("Proxy-Authorization: Basic dXNlcjpwQHNz\r\n"), "{connect}");
        assert!(inner.starts_with("GET /z HTTP/1.1\r\n"), "{inner}");
    }

    /// A minimal SOCKS5 proxy (no auth) that records the requested target
    /// and plays the origin server itself.
    fn socks5_proxy() -> (u16, mpsc::Receiver<(String, u16)>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut hello = [0u8; 2];
            s.read_exact(&mut hello).unwrap();
            let mut methods = vec![0u8; usize::from(hello[1])];
            s.read_exact(&mut methods).unwrap();
            s.write_all(&[5, 0]).unwrap();
            let mut req = [0u8; 4];
            s.read_exact(&mut req).unwrap();
            let host = match req[3] {
                3 => {
                    let mut len = [0u8; 1];
                    s.read_exact(&mut len).unwrap();
                    let mut name = vec![0u8; usize::from(len[0])];
                    s.read_exact(&mut name).unwrap();
                    String::from_utf8(name).unwrap()
                }
                1 => {
                    let mut ip = [0u8; 4];
                    s.read_exact(&mut ip).unwrap();
                    Ipv4Addr::from(ip).to_string()
                }
                other => panic!("unexpected address type {other}"),
            };
            let mut port = [0u8; 2];
            s.read_exact(&mut port).unwrap();
            s.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
            let _ = read_head(&mut BufReader::new(&mut s));
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nsocks");
            let _ = tx.send((host, u16::from_be_bytes(port)));
        });
        (port, rx)
    }

    #[test]
    fn socks5h_proxy_resolves_remotely() {
        let (pport, targets) = socks5_proxy();
        let agent = build_agent(&opts(Route::Proxy(format!("socks5h://127.0.0.1:{pport}")))).unwrap();
        let got = get_string(&agent, "http://origin.invalid:82/").unwrap();
        assert_eq!(got, (200, "socks".to_string()));
        assert_eq!(targets.recv_timeout(WAIT).unwrap(), ("origin.invalid".to_string(), 82));
    }

    /// Name of the child half of the env-proxy test, as libtest filters it
    /// (module path without the crate name).
    fn child_test_name() -> String {
        let path = module_path!();
        let path = path.split_once("::").map_or(path, |(_, rest)| rest);
        format!("{path}::env_proxy_child")
    }

    const CHILD_ENV: &str = "SPOOLFETCH_TEST_ENV_PROXY_CHILD";

    /// Runs [`env_proxy_child`] in a child process whose environment points
    /// every proxy variable at a dead port (edition 2024 makes `set_var`
    /// unsafe, and it would race other tests anyway).
    #[test]
    fn env_proxy_is_ignored_in_direct_and_pinned_mode() {
        let dead = {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
        }; // listener dropped: connecting there is refused
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([child_test_name().as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            cmd.env(var, &dead);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "child test did not run:\n{stdout}");
    }

    /// Child half of the test above; does nothing in a normal test run.
    #[test]
    fn env_proxy_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let (port, _heads) = serve(2, "direct");
        let url = format!("http://127.0.0.1:{port}/env");
        // Control: ureq's defaults do pick up the dead proxy, so the
        // environment is really in effect.
        assert!(ureq::Agent::new_with_defaults().get(&url).call().is_err());
        let direct = build_agent(&opts(Route::Direct)).unwrap();
        assert_eq!(get_string(&direct, &url).unwrap().1, "direct");
        let pinned = build_agent(&opts(Route::Pinned(pins("images.test")))).unwrap();
        assert_eq!(get_string(&pinned, &url).unwrap().1, "direct");
    }

    // ---------------------------------------------------------------- TLS

    /// A test CA: its PEM and an issuer to sign leaves with.
    struct TestCa {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn test_ca() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "spoolfetch test ca");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        TestCa { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    fn leaf(ca: &TestCa, name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert =
            CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&key, &ca.issuer).unwrap();
        (cert.der().clone(), PrivatePkcs8KeyDer::from(key.serialize_der()).into())
    }

    /// One-shot HTTPS server on 127.0.0.1. Sends the request head, or an
    /// empty string when the handshake failed.
    fn tls_server(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> (u16, mpsc::Receiver<String>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let Ok((sock, _)) = listener.accept() else {
                return;
            };
            sock.set_read_timeout(Some(WAIT)).unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, sock);
            let head = read_head(&mut BufReader::new(&mut tls));
            if !head.is_empty() {
                let _ =
                    tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure");
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            let _ = tx.send(head);
        });
        (port, rx)
    }

    fn write_temp(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn pinned_tls_agent(ca_file: Option<&Path>) -> Agent {
        let mut o = opts(Route::Pinned(pins("images.test")));
        o.ca_file = ca_file.map(Path::to_path_buf);
        build_agent(&o).unwrap()
    }

    #[test]
    fn tls_with_ca_file_and_pinning_verifies_real_host_name() {
        let ca = test_ca();
        let (cert, key) = leaf(&ca, "images.test");
        let (port, heads) = tls_server(cert, key);
        let ca_file = write_temp(&ca.pem);
        let agent = pinned_tls_agent(Some(ca_file.path()));
        let got = get_string(&agent, &format!("https://images.test:{port}/img.jpg")).unwrap();
        assert_eq!(got, (200, "secure".to_string()));
        let head = heads.recv_timeout(WAIT).unwrap();
        assert!(head.starts_with("GET /img.jpg HTTP/1.1\r\n"), "{head}");
    }

    #[test]
    fn tls_without_ca_file_is_a_fatal_certificate_error() {
        let ca = test_ca();
        let (cert, key) = leaf(&ca, "images.test");
        let (port, _heads) = tls_server(cert, key);
        let agent = pinned_tls_agent(None);
        let err = get_string(&agent, &format!("https://images.test:{port}/")).unwrap_err();
        assert!(!is_transient(&err), "{err:?}");
        let msg = describe(&err);
        assert!(msg.contains("unknown issuer"), "{msg} / {err:?}");
    }

    #[test]
    fn tls_leaf_for_another_name_is_rejected() {
        let ca = test_ca();
        let (cert, key) = leaf(&ca, "other.test");
        let (port, _heads) = tls_server(cert, key);
        let ca_file = write_temp(&ca.pem);
        let agent = pinned_tls_agent(Some(ca_file.path()));
        let err = get_string(&agent, &format!("https://images.test:{port}/")).unwrap_err();
        assert!(!is_transient(&err), "{err:?}");
        assert_eq!(describe(&err), "certificate not valid for host images.test");
    }

    #[test]
    fn ca_file_errors_are_reported() {
        let ca = test_ca();
        let key_only = KeyPair::generate().unwrap().serialize_pem();
        let damaged = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let cases = [
            ("", "no pem certificate found"),
            ("just some text\n", "no pem certificate found"),
            (key_only.as_str(), "no pem certificate found"),
            (damaged, "certificate #1 is not valid"),
        ];
        for (contents, want) in cases {
            let f = write_temp(contents);
            let mut o = opts(Route::Direct);
            o.ca_file = Some(f.path().to_path_buf());
            let err = build_agent(&o).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, SetupError::CaFile { .. }), "{msg}");
            assert!(msg.contains(want), "{contents:?}: {msg}");
        }
        let mut o = opts(Route::Direct);
        o.ca_file = Some("/nonexistent/ca.pem".into());
        let msg = build_agent(&o).unwrap_err().to_string();
        assert!(msg.contains("cannot read it (no such file"), "{msg}");
        // A bundle of several certificates plus a stray key is fine.
        let bundle = format!("{}{}{}", ca.pem, test_ca().pem, key_only);
        let f = write_temp(&bundle);
        let mut o = opts(Route::Direct);
        o.ca_file = Some(f.path().to_path_buf());
        build_agent(&o).unwrap();
    }
}
