//! The agent's resolver: a short-lived cache of host addresses in front
//! of the system (or pinned) lookup, and IP literals answered directly.
//!
//! Owns the one DNS cache of the process (a mutex-guarded map, bounded to
//! [`DNS_CACHE_MAX`] names); failures are never cached, so a name that
//! stops resolving is retried on the next request.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ureq::config::{Config, IpFamily};
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a host name's addresses are reused (curl's default DNS cache
/// time).
const DNS_TTL: Duration = Duration::from_secs(60);
/// Most host names remembered; a job talks to a handful.
const DNS_CACHE_MAX: usize = 256;

/// A resolver that remembers each host's addresses for [`DNS_TTL`].
///
/// Why: ureq resolves before every request, even one that then reuses a
/// pooled connection, and with `timeout_resolve` set each lookup runs on a
/// new thread. A gallery job fetches thousands of files from one CDN name;
/// without a cache each costs a thread and, on a NAS without a local DNS
/// cache, a DNS round trip. Failures are not remembered.
#[derive(Debug)]
pub(super) struct Cached<R> {
    /// Where lookups go.
    inner: R,
    /// `scheme://host:port` → (when looked up, addresses).
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, ResolvedSocketAddrs)>>,
}

impl<R: Resolver> Cached<R> {
    /// Wraps `inner`.
    pub(super) fn new(inner: R) -> Self {
        Cached { inner, entries: std::sync::Mutex::default() }
    }
}

impl<R: Resolver> Resolver for Cached<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}:{}",
            uri.scheme_str().unwrap_or(""),
            uri.host().unwrap_or(""),
            uri.port_u16().map_or(String::new(), |p| p.to_string())
        );
        let now = std::time::Instant::now();
        // A poisoned lock only means another thread panicked mid-update of
        // a cache; looking up again is always correct.
        if let Ok(map) = self.entries.lock()
            && let Some((at, addrs)) = map.get(&key)
            && now.duration_since(*at) < DNS_TTL
        {
            return Ok(addrs.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut map) = self.entries.lock() {
            if map.len() >= DNS_CACHE_MAX {
                map.retain(|_, (at, _)| now.duration_since(*at) < DNS_TTL);
                if map.len() >= DNS_CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(key, (now, addrs.clone()));
        }
        Ok(addrs)
    }
}

/// A resolver that answers URLs whose host is an IP literal itself and hands
/// every name to `inner`.
///
/// Why: with `timeout_resolve` set (timeouts are always set here), ureq's
/// [`DefaultResolver`] runs every lookup on a freshly spawned thread so that
/// it can give up on a hung DNS server — also for `http://127.0.0.1/…`, and
/// also when a pooled connection is then reused, because ureq resolves
/// before it looks in the pool. That thread costs about 16 syscalls per
/// request, a measurable share of a small-file download. An IP literal needs
/// no lookup at all, so no thread and no timeout are involved; names still
/// get the bounded, threaded lookup.
#[derive(Debug)]
pub(super) struct LiteralFirst<R> {
    /// Where names (and anything unusual) go.
    inner: R,
    /// IP literals that are configured as pinned "host names" (mode 2 accepts
    /// `1.2.3.4` as a key): these must keep going to the pin table.
    pinned_literals: Vec<IpAddr>,
}

impl<R: Resolver> LiteralFirst<R> {
    /// Wraps `inner`; `pinned` are the configured pin keys (empty outside
    /// mode 2).
    pub(super) fn new<'a>(inner: R, pinned: impl Iterator<Item = &'a String>) -> Self {
        let pinned_literals = pinned.filter_map(|h| h.strip_suffix('.').unwrap_or(h).parse().ok()).collect();
        LiteralFirst { inner, pinned_literals }
    }

    /// The socket address of `uri` when its host is an IP literal that needs
    /// no lookup; `None` sends the URL to the inner resolver.
    ///
    /// Only `http`/`https` are answered here: ureq also resolves proxy URLs
    /// (`socks5://…`) through the resolver, and their default ports are
    /// ureq's business. Only the default address family setting is handled,
    /// so that a (future) IPv4-only agent still gets ureq's own filtering.
    fn literal_addr(&self, uri: &Uri, config: &Config) -> Option<SocketAddr> {
        if config.ip_family() != IpFamily::Any {
            return None;
        }
        let default_port = match uri.scheme_str()? {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let host = uri.host()?;
        // `Uri::host` keeps the brackets of an IPv6 literal.
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let ip: IpAddr = bare.parse().ok()?;
        if self.pinned_literals.contains(&ip) {
            return None;
        }
        Some(SocketAddr::new(ip, uri.port_u16().unwrap_or(default_port)))
    }
}

impl<R: Resolver> Resolver for LiteralFirst<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match self.literal_addr(uri, config) {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.inner.resolve(uri, config, timeout),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // panicking is how tests fail
mod tests {
    use super::*;
    use ureq::Agent;

    /// Counts the lookups that reach it and answers with a fixed address.
    #[derive(Debug, Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Resolver for Counting {
        fn resolve(&self, _: &Uri, _: &Config, _: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut a = self.empty();
            a.push("10.9.9.9:9".parse().unwrap());
            Ok(a)
        }
    }

    #[test]
    fn names_are_looked_up_once_per_ttl() {
        let r = Cached::new(Counting::default());
        let config = Agent::config_builder().build();
        let resolve = |url: &str| {
            let uri: Uri = url.parse().expect("uri");
            r.resolve(&uri, &config, NextTimeout::default()).expect("resolves").len()
        };
        for _ in 0..5 {
            assert_eq!(resolve("https://i.pximg.net/img-original/a.jpg"), 1);
        }
        assert_eq!(r.inner.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        resolve("https://i.pximg.net:8443/b.jpg");
        resolve("http://i.pximg.net/c.jpg");
        assert_eq!(
            r.inner.0.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "port and scheme are part of the key"
        );
        // An entry older than the TTL is looked up again.
        if let Ok(mut m) = r.entries.lock() {
            for (at, _) in m.values_mut() {
                *at = at.checked_sub(DNS_TTL).unwrap_or(*at);
            }
        }
        resolve("https://i.pximg.net/d.jpg");
        assert_eq!(r.inner.0.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn ip_literals_are_answered_without_a_lookup() {
        let keys = ["10.0.0.7".to_string(), "images.test".to_string()];
        let r = LiteralFirst::new(Counting::default(), keys.iter());
        let config = Agent::config_builder().build();
        let resolve = |url: &str| -> Vec<SocketAddr> {
            let uri: Uri = url.parse().unwrap();
            r.resolve(&uri, &config, NextTimeout::default()).unwrap().iter().copied().collect()
        };
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        assert_eq!(resolve("http://127.0.0.1:8080/x"), [a("127.0.0.1:8080")]);
        assert_eq!(resolve("http://127.0.0.1/x"), [a("127.0.0.1:80")]);
        assert_eq!(resolve("https://192.0.2.1/x"), [a("192.0.2.1:443")]);
        assert_eq!(resolve("https://[::1]:8443/x"), [a("[::1]:8443")]);
        assert_eq!(r.inner.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        // Names, an IP literal that is itself pinned, and proxy schemes go
        // to the inner resolver.
        for url in
            ["http://images.test/x", "http://localhost:1/", "http://10.0.0.7/", "socks5://127.0.0.1:1080"]
        {
            assert_eq!(resolve(url), [a("10.9.9.9:9")], "{url}");
        }
        assert_eq!(r.inner.0.load(std::sync::atomic::Ordering::SeqCst), 4);
        // Another address family setting keeps ureq's own filtering.
        let v4 = Agent::config_builder().ip_family(IpFamily::Ipv4Only).build();
        let uri: Uri = "http://[::1]/".parse().unwrap();
        r.resolve(&uri, &v4, NextTimeout::default()).unwrap();
        assert_eq!(r.inner.0.load(std::sync::atomic::Ordering::SeqCst), 5);
    }
}
