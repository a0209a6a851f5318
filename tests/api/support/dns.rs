//! A loopback DNS server for the verified-domain tests: answers TXT queries from a map that the test
//! changes while it runs, NXDOMAIN for every other name, over UDP and TCP on the same port of
//! 127.0.0.1 (the server under test gets `LATCHKEY_DNS_SERVER=<addr>`). Built on hickory-proto's
//! wire format only.

// Not every test module uses every method.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

type Zone = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A running loopback DNS server; stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Zone,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds 127.0.0.1 on a free port (UDP and TCP) and serves.
    pub async fn start() -> DnsServer {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp address");
        let zone: Zone = Arc::default();
        let udp_zone = zone.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&udp_zone, &buf[..n]) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let tcp_zone = zone.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    return;
                };
                let zone = tcp_zone.clone();
                tokio::spawn(async move {
                    // RFC 1035 §4.2.2: each message is preceded by its two-byte length.
                    loop {
                        let Ok(len) = stream.read_u16().await else {
                            return;
                        };
                        let mut query = vec![0u8; usize::from(len)];
                        if stream.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        let Some(reply) = answer(&zone, &query) else {
                            return;
                        };
                        let Ok(reply_len) = u16::try_from(reply.len()) else {
                            return;
                        };
                        if stream.write_u16(reply_len).await.is_err()
                            || stream.write_all(&reply).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        DnsServer {
            addr,
            zone,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes `values` as the TXT records of `name` (replacing what was there).
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        self.zone.lock().expect("zone").insert(
            normalise(name),
            values.iter().map(|v| (*v).to_owned()).collect(),
        );
    }

    /// Removes every TXT record of `name`.
    pub fn clear(&self, name: &str) {
        self.zone.lock().expect("zone").remove(&normalise(name));
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A UDP socket and a TCP listener on the same free loopback port.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let port = udp.local_addr().expect("udp address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free port for both UDP and TCP");
}

/// The response to one query message, `None` for something that is not a query.
fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let mut found = false;
    for q in &request.queries {
        response.add_query(q.clone());
        let name = normalise(&q.name().to_ascii());
        let values = zone.lock().ok()?.get(&name).cloned();
        if let Some(values) = values {
            found = true;
            if q.query_type() == RecordType::TXT {
                for value in values {
                    let record =
                        Record::from_rdata(q.name().clone(), 0, RData::TXT(TXT::new(vec![value])));
                    response.add_answer(record);
                }
            }
        }
    }
    if !found {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response.to_vec().ok()
}
