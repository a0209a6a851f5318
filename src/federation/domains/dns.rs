//! The DNS TXT check of a claimed domain, with hickory-resolver: the system's resolver, or
//! `LATCHKEY_DNS_SERVER` when set.
//!
//! A new resolver is built for every check, so no answer (positive or negative, RFC 2308) is
//! cached across checks: an administrator who publishes the record after a failed check sees the
//! next check succeed at once. The timeout is short because a person waits on the API call.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// How long one query waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Queries per name server before giving up (hickory's "attempts").
const ATTEMPTS: usize = 1;

/// What a TXT lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The TXT strings published at the name, each the concatenation of its character-strings
    /// (RFC 7208 §3.3 reads a TXT record the same way).
    Found(Vec<String>),
    /// The name has no TXT record (NXDOMAIN or no data).
    NoRecord,
    /// The lookup failed (timeout, refused, unreachable server); the text is for the audit log.
    Failed(String),
}

/// Looks up the TXT records at `name` (a fully qualified name without the trailing dot), through
/// `server` alone (UDP, then TCP) when given, else through the system's resolver configuration.
pub async fn lookup_txt(server: Option<SocketAddr>, name: &str) -> TxtAnswer {
    let mut options = ResolverOpts::default();
    options.timeout = TIMEOUT;
    options.attempts = ATTEMPTS;
    options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    let builder = match server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut ns.connections {
                connection.port = addr.port();
            }
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                TokioRuntimeProvider::default(),
            )
        }
        None => match Resolver::builder_tokio() {
            Ok(builder) => builder,
            Err(e) => return TxtAnswer::Failed(format!("no system resolver: {e}")),
        },
    };
    let resolver = match builder.with_options(options).build() {
        Ok(resolver) => resolver,
        Err(e) => return TxtAnswer::Failed(format!("resolver: {e}")),
    };
    // The trailing dot makes the name fully qualified: no search domains are tried.
    match resolver.txt_lookup(format!("{name}.")).await {
        Ok(lookup) => {
            let values: Vec<String> = lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::TXT(txt) => Some(
                        txt.txt_data
                            .iter()
                            .map(|part| String::from_utf8_lossy(part))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect();
            if values.is_empty() {
                TxtAnswer::NoRecord
            } else {
                TxtAnswer::Found(values)
            }
        }
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => TxtAnswer::NoRecord,
        Err(e) => TxtAnswer::Failed(e.to_string()),
    }
}
