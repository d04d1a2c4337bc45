//! Fixed IP addresses for configured host names (`proxy_mode` 2).
//!
//! Some users cannot reach the image CDN through their DNS (poisoned or
//! blocked answers) but can reach a known-good IP. The fix that keeps TLS
//! honest is the one `curl --resolve` uses: change only *where the TCP
//! connection goes*. The URL, the `Host` header, the TLS SNI and the
//! certificate name check all keep using the real host name, because ureq
//! takes those from the URL, never from the resolver's answer. Nothing here
//! disables or weakens certificate verification.
//!
//! `ureq::unversioned::resolver` is explicitly outside ureq's semver promise,
//! which is why `ureq` is pinned to `~3.5` and why this is the only file
//! that touches it; the tests in this file break loudly if it changes.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::agent::SetupError;

/// A resolver that answers pinned host names from a fixed table and hands
/// every other name to ureq's [`DefaultResolver`] (system DNS).
///
/// Delegation is not optional: ureq also asks the resolver for proxy hosts
/// and for hosts reached through redirects, which must keep working.
#[derive(Debug)]
pub struct PinnedResolver {
    /// Normalised (lower-case, no trailing dot) host name → IP.
    pins: BTreeMap<String, IpAddr>,
    /// Where unpinned names go.
    fallback: DefaultResolver,
}

impl PinnedResolver {
    /// Builds the resolver from the configured `host → IP` table.
    ///
    /// Host names are matched case-insensitively and a trailing dot is
    /// ignored, because DNS names are compared that way and a config typo in
    /// case should not silently disable the pin. Entries that cannot be a
    /// bare host name (empty, containing a port, a scheme or a path) are
    /// rejected, since they could never match and the user would wonder why
    /// the pin "does nothing".
    pub fn new(pins: &BTreeMap<String, IpAddr>) -> Result<Self, SetupError> {
        let mut table = BTreeMap::new();
        for (host, ip) in pins {
            let name = normalize_host(host);
            if let Err(reason) = check_host_name(&name) {
                return Err(SetupError::PinnedHost { host: host.clone(), reason });
            }
            table.insert(name, *ip);
        }
        Ok(PinnedResolver { pins: table, fallback: DefaultResolver::default() })
    }

    /// The socket address for `uri` if its host is pinned.
    ///
    /// The port comes from the URL (or the scheme's default), so one pin
    /// serves both `http://` and `https://` URLs of the same host.
    fn pinned_addr(&self, uri: &Uri) -> Option<SocketAddr> {
        let ip = self.pins.get(&normalize_host(uri.host()?))?;
        let port = uri.port_u16().or_else(|| match uri.scheme_str()? {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })?;
        Some(SocketAddr::new(*ip, port))
    }
}

impl Resolver for PinnedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match self.pinned_addr(uri) {
            Some(addr) => {
                log::debug!("pinned {} -> {addr}", uri.host().unwrap_or_default());
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            // Unpinned (or unusual scheme): behave exactly like a plain agent,
            // including DefaultResolver's own URL validation and timeout.
            None => self.fallback.resolve(uri, config, timeout),
        }
    }
}

/// Lower-cases and strips one trailing dot, the DNS notion of "same name".
fn normalize_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// Accepts what can appear as the host of a URL: ASCII letters, digits, `-`,
/// `_` and `.`, at most 253 characters. (Non-ASCII names reach ureq in
/// punycode form, so the config must use that form too.)
fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty host name".to_string());
    }
    if name.len() > 253 {
        return Err("host name longer than 253 characters".to_string());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!(
            "character {c:?} not allowed; give a bare host name without scheme, port or path"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
pub(super) mod tests {
    use super::super::agent::{NetOptions, Route, build_agent};
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Ipv4Addr, TcpListener};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// Starts a plain HTTP/1.1 server on 127.0.0.1 that answers `n`
    /// connections with `200 body` and sends each request head (request line
    /// + headers) down the channel.
    pub(crate) fn serve(n: usize, body: &'static str) -> (u16, mpsc::Receiver<String>) {
        let response =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        serve_raw(n, response)
    }

    /// Like [`serve`] with a complete raw response. Sockets have read
    /// timeouts so a broken client cannot hang the test.
    pub(crate) fn serve_raw(n: usize, response: String) -> (u16, mpsc::Receiver<String>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for _ in 0..n {
                let Ok((mut sock, _)) = listener.accept() else {
                    return;
                };
                sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let head = read_head(&mut BufReader::new(&mut sock));
                let _ = sock.write_all(response.as_bytes());
                let _ = tx.send(head);
            }
        });
        (port, rx)
    }

    /// Reads lines up to the blank line that ends an HTTP head.
    pub(crate) fn read_head(r: &mut impl BufRead) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => head.push_str(&line),
            }
        }
        head
    }

    /// Short timeouts keep every network test bounded.
    pub(crate) fn opts(route: Route) -> NetOptions {
        NetOptions {
            route,
            ca_file: None,
            timeout: Duration::from_secs(5),
            user_agent: "spoolfetch-test/0".to_string(),
            max_idle_per_host: 2,
        }
    }

    pub(crate) fn pins(host: &str) -> BTreeMap<String, IpAddr> {
        BTreeMap::from([(host.to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))])
    }

    fn resolve(r: &PinnedResolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let config = ureq::Agent::config_builder().build();
        r.resolve(&uri, &config, NextTimeout::default()).map(|a| a.iter().copied().collect())
    }

    #[test]
    fn pinned_host_connects_to_ip_but_keeps_host_header() {
        let (port, heads) = serve(1, "pinned");
        let agent = build_agent(&opts(Route::Pinned(pins("images.test")))).unwrap();
        let mut resp = agent.get(&format!("http://images.test:{port}/x")).call().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_mut().read_to_string().unwrap(), "pinned");
        let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains(&format!("\r\nhost: images.test:{port}\r\n")), "{head}");
    }

    #[test]
    fn unpinned_host_uses_system_resolver() {
        let (port, heads) = serve(1, "dns");
        let agent = build_agent(&opts(Route::Pinned(pins("images.test")))).unwrap();
        let mut resp = agent.get(&format!("http://localhost:{port}/y")).call().unwrap();
        assert_eq!(resp.body_mut().read_to_string().unwrap(), "dns");
        let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(head.starts_with("GET /y "), "{head}");
    }

    #[test]
    fn resolver_matching_rules() {
        let map = BTreeMap::from([
            ("Images.Test.".to_string(), "10.1.2.3".parse().unwrap()),
            ("v6.test".to_string(), "2001:db8::1".parse().unwrap()),
        ]);
        let r = PinnedResolver::new(&map).unwrap();
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        assert_eq!(resolve(&r, "https://images.test/a").unwrap(), [a("10.1.2.3:443")]);
        assert_eq!(resolve(&r, "http://IMAGES.test/a").unwrap(), [a("10.1.2.3:80")]);
        assert_eq!(resolve(&r, "https://images.test.:8443/").unwrap(), [a("10.1.2.3:8443")]);
        assert_eq!(resolve(&r, "https://v6.test/").unwrap(), [a("[2001:db8::1]:443")]);
        // Subdomains are not covered by a pin: only exact names are.
        let err = resolve(&r, "https://x.images.test.invalid/").unwrap_err();
        assert!(matches!(err, ureq::Error::HostNotFound | ureq::Error::Io(_)), "{err:?}");
    }

    #[test]
    fn bad_pin_names_are_rejected() {
        for bad in ["", "images.test:443", "https://images.test", "images.test/x", "a b"] {
            let map = BTreeMap::from([(bad.to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))]);
            let err = PinnedResolver::new(&map).unwrap_err();
            assert!(matches!(err, SetupError::PinnedHost { .. }), "{bad:?}: {err}");
        }
    }
}
