//! SSRF protection for user-supplied URLs (webhooks, Slack, Teams).
//!
//! A trigger's URL is written by a tenant, so the notifier must not become a way to reach the
//! inside of the network: only `http`/`https`, and no loopback, private (RFC 1918, ULA),
//! link-local, CGNAT, cloud metadata, unspecified, multicast, broadcast, documentation or other
//! reserved addresses — unless `LEADSTREAM_WEBHOOK_ALLOW_PRIVATE` (comma-separated host names,
//! IPs and CIDRs, each optionally with a port: `hooks.internal:8443`, `10.0.0.0/8:8080`,
//! `[fd00::1]:443`) permits them. An entry with a port allows that port only.
//!
//! The check runs where it matters, at send time: [`GuardedResolver`] is the HTTP client's DNS
//! resolver and drops every address the policy refuses, so a name that resolved to a public
//! address when the trigger was saved and to `127.0.0.1` now (DNS rebinding) is still refused.
//! IP-literal hosts never reach a resolver, so [`Policy::check_url`] checks them (and resolves
//! names once more for a clear error). The resolver does not know the port, so it honours only
//! entries without one; a name allowed through an entry with a port is resolved and checked by
//! [`Policy::check_target`] with the URL's port, and those addresses are pinned for the request
//! ([`Target::pinned`]), so no second lookup can rebind it. The client never follows redirects
//! and ignores proxy variables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SsrfError {
    #[error("URL is not valid: {0}")]
    BadUrl(String),
    #[error("scheme `{0}` is not allowed (only http and https)")]
    Scheme(String),
    #[error("URL has no host")]
    NoHost,
    /// The message names the host the tenant wrote, never the address it resolved to (an
    /// internal address is the operator's business, not the tenant's); `addr` is for logs.
    #[error("`{host}` is {class}; refused (the operator can allow it with LEADSTREAM_WEBHOOK_ALLOW_PRIVATE)")]
    Refused {
        host: String,
        addr: IpAddr,
        class: &'static str,
    },
    #[error("`{0}` did not resolve to any address")]
    NoAddress(String),
    #[error("could not resolve `{host}`: {reason}")]
    Resolve { host: String, reason: String },
}

impl SsrfError {
    /// Whether trying again later might succeed (DNS trouble), as opposed to a policy refusal.
    pub fn is_transient(&self) -> bool {
        matches!(self, SsrfError::Resolve { .. } | SsrfError::NoAddress(_))
    }
}

/// The allow-list: host names (exact, case-insensitive) and CIDRs, each for any port or one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    hosts: Vec<(String, Option<u16>)>,
    nets: Vec<(IpNet, Option<u16>)>,
}

/// A checked URL, and the addresses to use for its host when they were allowed only for its port.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: url::Url,
    /// `(host, addresses)`: connect to these, do not resolve the host again.
    pub pinned: Option<(String, Vec<SocketAddr>)>,
}

/// `item` or `item:port`; IPv6 with a port in brackets: `[::1]:8080`, `[fd00::/8]:443`.
fn split_port(item: &str) -> Result<(&str, Option<u16>), String> {
    let bad_port = |p: &str| format!("`{item}`: `{p}` is not a port");
    if let Some(rest) = item.strip_prefix('[') {
        let (inner, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{item}`: missing `]`"))?;
        return match after {
            "" => Ok((inner, None)),
            p => {
                let p = p.strip_prefix(':').ok_or_else(|| bad_port(p))?;
                Ok((inner, Some(p.parse().map_err(|_| bad_port(p))?)))
            }
        };
    }
    match item.split_once(':') {
        Some((head, p)) if !p.contains(':') => {
            Ok((head, Some(p.parse().map_err(|_| bad_port(p))?)))
        }
        _ => Ok((item, None)),
    }
}

impl Policy {
    /// Parse `LEADSTREAM_WEBHOOK_ALLOW_PRIVATE`: e.g. `127.0.0.1/32,::1,hooks.internal`. A bare
    /// IP counts as a /32 or /128.
    pub fn parse(list: &str) -> Result<Policy, String> {
        let mut p = Policy::default();
        for entry in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (item, port) = split_port(entry)?;
            if let Ok(net) = item.parse::<IpNet>() {
                p.nets.push((net, port));
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                p.nets.push((IpNet::from(ip), port));
            } else if item.contains('/') {
                return Err(format!("`{item}` is not a valid CIDR"));
            } else if item.is_empty() {
                return Err(format!("`{entry}` names no host"));
            } else {
                p.hosts
                    .push((item.trim_end_matches('.').to_ascii_lowercase(), port));
            }
        }
        Ok(p)
    }

    /// Allow everything (a test convenience; never the default).
    pub fn allow_all() -> Policy {
        Policy::parse("0.0.0.0/0,::/0").unwrap_or_default()
    }

    /// Whether `addr`, reached through `host`, may be contacted on any port.
    pub fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), SsrfError> {
        self.check_addr_on(host, addr, None)
    }

    /// Whether `addr`, reached through `host`, may be contacted on `port` (`None`: on any port,
    /// so only entries without a port count).
    pub fn check_addr_on(
        &self,
        host: &str,
        addr: IpAddr,
        port: Option<u16>,
    ) -> Result<(), SsrfError> {
        let addr = canonical(addr);
        let Some(class) = forbidden_class(addr) else {
            return Ok(());
        };
        let fits = |p: &Option<u16>| p.is_none() || *p == port;
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        if self.hosts.iter().any(|(name, p)| *name == h && fits(p))
            || self.nets.iter().any(|(n, p)| n.contains(&addr) && fits(p))
        {
            return Ok(());
        }
        Err(SsrfError::Refused {
            host: host.to_string(),
            addr,
            class,
        })
    }

    /// Syntax and policy check of a URL; resolves names so the error is clear. The resolver
    /// checks again at connect time.
    pub async fn check_url(&self, raw: &str) -> Result<url::Url, SsrfError> {
        self.check_target(raw).await.map(|t| t.url)
    }

    /// [`Policy::check_url`], saying which addresses to pin (see the module header).
    pub async fn check_target(&self, raw: &str) -> Result<Target, SsrfError> {
        let url = url::Url::parse(raw).map_err(|e| SsrfError::BadUrl(e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(SsrfError::Scheme(other.to_string())),
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let pinned = match url.host() {
            None => return Err(SsrfError::NoHost),
            Some(url::Host::Ipv4(ip)) => {
                self.check_addr_on(&ip.to_string(), IpAddr::V4(ip), Some(port))?;
                None
            }
            Some(url::Host::Ipv6(ip)) => {
                self.check_addr_on(&ip.to_string(), IpAddr::V6(ip), Some(port))?;
                None
            }
            Some(url::Host::Domain(d)) => {
                let addrs = resolve_checked(self, d, port, Some(port)).await?;
                if addrs.is_empty() {
                    return Err(SsrfError::NoAddress(d.to_string()));
                }
                // Allowed only for this port: the resolver would refuse them, so pin them.
                let port_bound = addrs.iter().any(|a| self.check_addr(d, a.ip()).is_err());
                port_bound.then(|| (d.to_string(), addrs))
            }
        };
        Ok(Target { url, pinned })
    }
}

/// IPv4-mapped / compatible IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Why an address is not public, or `None` when it is.
pub fn forbidden_class(addr: IpAddr) -> Option<&'static str> {
    match canonical(addr) {
        IpAddr::V4(a) => v4_class(a),
        IpAddr::V6(a) => v6_class(a),
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    (u32::from(a) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v4_class(a: Ipv4Addr) -> Option<&'static str> {
    const TABLE: &[([u8; 4], u8, &str)] = &[
        ([169, 254, 169, 254], 32, "a cloud metadata address"),
        ([0, 0, 0, 0], 8, "unspecified / \"this network\""),
        ([10, 0, 0, 0], 8, "private"),
        ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 0, 0, 0], 24, "IETF protocol assignment"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([192, 88, 99, 0], 24, "6to4 relay anycast"),
        ([192, 168, 0, 0], 16, "private"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved / broadcast"),
    ];
    TABLE
        .iter()
        .find(|(net, len, _)| in_v4(a, *net, *len))
        .map(|(_, _, class)| *class)
}

fn v6_class(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata address");
    }
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if a.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = a.to_ipv4() {
        // IPv4-compatible (::a.b.c.d, deprecated) carries an IPv4 address; judge that.
        if s[0..6] == [0; 6] {
            return v4_class(v4).or(Some("IPv4-compatible (deprecated)"));
        }
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("private (unique local)"),
        x if x & 0xffc0 == 0xfe80 => Some("link-local"),
        x if x & 0xffc0 == 0xfec0 => Some("site-local (deprecated)"),
        x if x & 0xff00 == 0xff00 => Some("multicast"),
        0x0064 if s[1] == 0xff9b => Some("NAT64 (may reach IPv4 private space)"),
        0x0100 if s[1..4] == [0, 0, 0] => Some("discard-only"),
        0x2001 if s[1] == 0x0db8 => Some("documentation"),
        0x2001 if s[1] < 0x0200 => Some("IETF protocol assignment (Teredo, ORCHID…)"),
        0x2002 => Some("6to4 (may embed a private IPv4 address)"),
        _ => None,
    }
}

/// Resolve `host` and check every address; any refused address refuses the host (a name that
/// resolves to both public and private addresses is suspicious).
async fn resolve_checked(
    policy: &Policy,
    host: &str,
    port: u16,
    allowed_port: Option<u16>,
) -> Result<Vec<SocketAddr>, SsrfError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| SsrfError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    for a in &addrs {
        policy.check_addr_on(host, a.ip(), allowed_port)?;
    }
    Ok(addrs)
}

/// The HTTP client's DNS resolver: resolves with the system resolver and refuses addresses the
/// policy does not allow. The error is an [`SsrfError`] inside reqwest's error chain.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<Policy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<Policy>) -> GuardedResolver {
        GuardedResolver { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let addrs = resolve_checked(&policy, name.as_str(), 0, None).await?;
            if addrs.is_empty() {
                return Err(SsrfError::NoAddress(name.as_str().to_string()).into());
            }
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// Find an [`SsrfError`] in an error's source chain (reqwest wraps the resolver's error).
pub fn find_in_chain<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a SsrfError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(s) = e.downcast_ref::<SsrfError>() {
            return Some(s);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &Policy, ip: &str) -> bool {
        p.check_addr("h", ip.parse().unwrap()).is_err()
    }

    #[test]
    fn refuses_internal_addresses_by_default() {
        let p = Policy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(refused(&p, ip), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111"] {
            assert!(!refused(&p, ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn allow_list_takes_cidrs_ips_and_hosts() {
        let p = Policy::parse("127.0.0.1/32, ::1 ,hooks.internal").unwrap();
        assert!(!refused(&p, "127.0.0.1"));
        assert!(!refused(&p, "::1"));
        assert!(refused(&p, "127.0.0.2"));
        assert!(p
            .check_addr("HOOKS.internal.", "10.0.0.1".parse().unwrap())
            .is_ok());
        assert!(Policy::parse("10.0.0.0/33").is_err());
    }

    #[tokio::test]
    async fn allow_list_entries_can_name_a_port() {
        let p =
            Policy::parse("127.0.0.1:8080, [::1]:9090, localhost:7070, 10.0.0.0/8:443").unwrap();
        assert!(p.check_url("http://127.0.0.1:8080/x").await.is_ok());
        assert!(p.check_url("http://127.0.0.1:8081/x").await.is_err());
        assert!(p.check_url("http://[::1]:9090/x").await.is_ok());
        assert!(p.check_url("http://[::1]:9091/x").await.is_err());
        assert!(p.check_url("https://10.1.2.3/x").await.is_ok());
        assert!(p.check_url("http://10.1.2.3/x").await.is_err());
        // A name allowed for one port: checked with the URL's port and pinned ...
        let t = p.check_target("http://localhost:7070/x").await.unwrap();
        let (host, addrs) = t.pinned.expect("pinned addresses");
        assert_eq!(host, "localhost");
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
        assert!(p.check_url("http://localhost:7071/x").await.is_err());
        // ... and the resolver, which does not know the port, refuses it.
        assert!(p
            .check_addr("localhost", "127.0.0.1".parse().unwrap())
            .is_err());
        assert!(Policy::parse("127.0.0.1:http").is_err());
        assert!(Policy::parse("[::1").is_err());
    }

    #[tokio::test]
    async fn refusals_do_not_reveal_the_resolved_address() {
        let e = Policy::default()
            .check_url("http://localhost:9/x")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("`localhost`"), "{text}");
        assert!(
            !text.contains("127.0.0.1") && !text.contains("::1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn urls_need_http_and_a_public_host() {
        let p = Policy::default();
        assert!(matches!(
            p.check_url("ftp://example.com/").await,
            Err(SsrfError::Scheme(_))
        ));
        assert!(matches!(
            p.check_url("not a url").await,
            Err(SsrfError::BadUrl(_))
        ));
        assert!(matches!(
            p.check_url("http://127.0.0.1:8080/x").await,
            Err(SsrfError::Refused { .. })
        ));
        assert!(matches!(
            p.check_url("http://[::1]/x").await,
            Err(SsrfError::Refused { .. })
        ));
        assert!(matches!(
            p.check_url("http://localhost:9/x").await,
            Err(SsrfError::Refused { .. })
        ));
        let allow = Policy::parse("127.0.0.0/8").unwrap();
        assert!(allow.check_url("http://127.0.0.1:8080/x").await.is_ok());
    }
}
