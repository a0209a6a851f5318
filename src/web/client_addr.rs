//! The client's address behind reverse proxies.
//!
//! By default the TCP peer is the client and no header is believed: anyone can send
//! `X-Forwarded-For`. Only when the peer is inside one of `LATCHKEY_TRUSTED_PROXIES` (CIDRs) are the
//! proxy headers read: `Forwarded` (RFC 7239 §4, its `for=` parameters) or, only when no `Forwarded`
//! header is present, `X-Forwarded-For`. The list is walked right to left (each proxy appends the
//! address it saw), skipping addresses that are themselves trusted proxies; the first untrusted
//! address is the client (RFC 7239 §7.5 and the OWASP guidance on `X-Forwarded-For`: only the hops
//! you control are believed). An obfuscated or `unknown` identifier (RFC 7239 §6.2, §6.3) or a
//! malformed value ends the walk at the last trusted hop: a garbled header never fails a request.
//!
//! Per-address limits key IPv6 addresses by their /64 ([`limit_key`]): one subscriber usually holds a
//! whole /64 (RFC 6177), so counting single IPv6 addresses would let one host rotate freely.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;

/// The non-standard but ubiquitous proxy header, read only when no `Forwarded` header is present.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
/// IPv6 addresses share a per-address limit within this prefix length.
pub const IPV6_LIMIT_PREFIX: u8 = 64;

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_v4(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_v6(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    bits & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    bits & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    /// Host bits after the prefix are cleared (`10.1.2.3/8` is `10.0.0.0/8`).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let ip = ip.to_canonical();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length outside 0..={max}"))?,
        };
        let network = match ip {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), prefix).into()),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose forwarding headers are believed (`LATCHKEY_TRUSTED_PROXIES`); empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs or bare addresses (blank: none).
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The list as `LATCHKEY_TRUSTED_PROXIES` takes it: `10.0.0.0/8,2001:db8::/32`.
impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, cidr) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}/{}", cidr.network, cidr.prefix)?;
        }
        Ok(())
    }
}

/// The client address of a request that came from `peer` (see the module doc).
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let hops = if headers.contains_key(FORWARDED) {
        forwarded_hops(&joined(headers, FORWARDED.as_str()))
    } else if headers.contains_key(X_FORWARDED_FOR) {
        joined(headers, X_FORWARDED_FOR)
            .map(|v| {
                split_outside_quotes(&v, ',')
                    .map(|h| parse_node(h.trim()))
                    .collect()
            })
            .unwrap_or_else(|| vec![None])
    } else {
        return peer;
    };
    let mut last_trusted = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if trusted.contains(ip) => last_trusted = ip,
            Some(ip) => return ip,
            // Unknown, obfuscated or malformed: nothing to the left of it can be believed.
            None => return last_trusted,
        }
    }
    last_trusted
}

/// Every value of header `name`, joined with commas in order (RFC 9110 §5.3); `None` when one is not
/// visible ASCII.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Option<Vec<&str>> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    values.map(|v| v.join(","))
}

/// The `for=` node of each `Forwarded` element, left to right; `None` for an element without a
/// usable address. An unreadable header is a single malformed hop.
fn forwarded_hops(value: &Option<String>) -> Vec<Option<IpAddr>> {
    let Some(value) = value else {
        return vec![None];
    };
    split_outside_quotes(value, ',')
        .map(|element| {
            split_outside_quotes(element, ';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, node)| parse_node(unquote(node.trim())?))
        })
        .collect()
}

/// Splits at `sep` where it is not inside a quoted string (RFC 9110 §5.6.4).
fn split_outside_quotes(text: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    text.split(move |c: char| {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            return true;
        }
        false
    })
}

/// The value of a token or quoted string; `None` when a quote is unbalanced.
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').filter(|v| !v.contains('"')),
        None => (!value.contains('"')).then_some(value),
    }
}

/// An RFC 7239 §6 node (`192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`, `[2001:db8::1]:4711`) or
/// a bare IPv6 address as `X-Forwarded-For` carries it; `None` for `unknown`, an obfuscated `_name`
/// or anything malformed.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        return port_ok
            .then(|| v6.parse::<std::net::Ipv6Addr>().ok())
            .flatten()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (v4, port) = node.split_once(':')?;
    valid_port(port)
        .then(|| v4.parse::<std::net::Ipv4Addr>().ok())
        .flatten()
        .map(IpAddr::V4)
}

/// A port number or an obfuscated port (RFC 7239 §6.3: `_` followed by ALPHA / DIGIT / `.` `_` `-`).
fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok()
        || port.strip_prefix('_').is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// The key per-address limits count under: an IPv4 address as is, an IPv6 address as its /64
/// (`2001:db8:1:2::/64`).
pub fn limit_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = std::net::Ipv6Addr::from(mask_v6(u128::from(v6), IPV6_LIMIT_PREFIX));
            format!("{net}/{IPV6_LIMIT_PREFIX}")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn client(peer: &str, trusted: &str, pairs: &[(&str, &str)]) -> String {
        let trusted = TrustedProxies::parse(trusted).unwrap();
        client_addr(ip(peer), &headers(pairs), &trusted).to_string()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.0.2.1 ,2001:db8::/32,::1").unwrap();
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("192.0.2.1")));
        assert!(!t.contains(ip("192.0.2.2")));
        assert!(t.contains(ip("2001:db8:ffff::9")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("2001:db9::1")));
        assert!(
            t.contains(ip("::ffff:10.1.1.1")),
            "IPv4-mapped counts as IPv4"
        );
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "example.com",
            "10.0.0.0/8/8",
            "1.2.3",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peers_headers_are_ignored() {
        let xff = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(client("198.51.100.7", "", &xff), "198.51.100.7");
        assert_eq!(client("198.51.100.7", "10.0.0.0/8", &xff), "198.51.100.7");
        assert_eq!(client("10.0.0.1", "10.0.0.0/8", &xff), "203.0.113.9");
        assert_eq!(client("10.0.0.1", "10.0.0.0/8", &[]), "10.0.0.1");
    }

    #[test]
    fn forwarded_is_walked_right_to_left_over_trusted_hops() {
        let t = "10.0.0.0/8";
        let fwd = [(
            "forwarded",
            "for=198.51.100.1, for=203.0.113.9;proto=https, For=\"10.1.1.1:80\"",
        )];
        assert_eq!(client("10.0.0.1", t, &fwd), "203.0.113.9");
        let v6 = [("forwarded", "for=\"[2001:db8::1]:4711\";by=10.0.0.1")];
        assert_eq!(client("10.0.0.1", t, &v6), "2001:db8::1");
        let two_lines = [
            ("forwarded", "for=198.51.100.1"),
            ("forwarded", "for=10.2.2.2"),
        ];
        assert_eq!(client("10.0.0.1", t, &two_lines), "198.51.100.1");
        let all_trusted = [("forwarded", "for=10.3.3.3, for=10.2.2.2")];
        assert_eq!(client("10.0.0.1", t, &all_trusted), "10.3.3.3");
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let both = [
            ("x-forwarded-for", "203.0.113.1"),
            ("forwarded", "for=198.51.100.2"),
        ];
        assert_eq!(client("127.0.0.1", "127.0.0.1", &both), "198.51.100.2");
    }

    #[test]
    fn unknown_obfuscated_and_malformed_stop_at_the_last_trusted_hop() {
        let t = "10.0.0.0/8";
        for value in [
            "for=unknown",
            "for=_hidden",
            "for=198.51.100.1, for=_gateway",
            "for=\"[2001:db8::1\"",
            "proto=https",
            "for=\"unbalanced",
            "for=300.1.1.1",
            "garbage",
        ] {
            assert_eq!(
                client("10.0.0.1", t, &[("forwarded", value)]),
                "10.0.0.1",
                "{value}"
            );
        }
        let behind = [("forwarded", "for=198.51.100.1, for=nonsense, for=10.9.9.9")];
        assert_eq!(client("10.0.0.1", t, &behind), "10.9.9.9");
        for value in ["", "not-an-ip", "203.0.113.1, ", "1.2.3.4:99999"] {
            let xff = [("x-forwarded-for", value)];
            assert_eq!(client("10.0.0.1", t, &xff), "10.0.0.1", "{value:?}");
        }
        let ok = [("x-forwarded-for", "203.0.113.7, 192.0.2.4:8080, 10.0.0.5")];
        assert_eq!(client("10.0.0.1", t, &ok), "192.0.2.4");
        let v6 = [("x-forwarded-for", "2001:db8::7")];
        assert_eq!(client("10.0.0.1", t, &v6), "2001:db8::7");
    }

    #[test]
    fn ipv6_limits_count_per_64() {
        assert_eq!(limit_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("2001:db8:1:2::ffff")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }
}
