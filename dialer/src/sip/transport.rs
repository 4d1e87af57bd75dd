//! SIP over tokio UDP: one socket per call, a reader task that parses datagrams and drops
//! (with a log line) anything that is not valid SIP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use rsip::SipMessage;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::message;

/// The local address the OS would use to reach `peer` (no packet is sent).
pub async fn local_ip_towards(peer: SocketAddr) -> std::io::Result<IpAddr> {
    let bind: SocketAddr = if peer.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let probe = UdpSocket::bind(bind).await?;
    probe.connect(peer).await?;
    Ok(probe.local_addr()?.ip())
}

#[derive(Debug)]
pub struct SipTransport {
    socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    reader: JoinHandle<()>,
}

impl SipTransport {
    /// Binds on `ip` (any port) and starts the reader; messages arrive on the returned channel.
    pub async fn bind(
        ip: IpAddr,
    ) -> std::io::Result<(Self, mpsc::Receiver<(SipMessage, SocketAddr)>)> {
        let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
        let local = socket.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let reader_socket = socket.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                let (n, from) = match reader_socket.recv_from(&mut buf).await {
                    Ok(v) => v,
                    Err(e) => {
                        // ICMP port unreachable surfaces here on some systems; keep reading.
                        tracing::debug!(error = %e, "SIP socket receive error");
                        continue;
                    }
                };
                let data = &buf[..n];
                if data.iter().all(|b| b.is_ascii_whitespace()) {
                    continue; // keep-alive CRLFs
                }
                match message::parse(data) {
                    Ok(msg) => {
                        if tx.send((msg, from)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!(%from, error = %e, "dropping malformed SIP message"),
                }
            }
        });
        Ok((
            Self {
                socket,
                local,
                reader,
            },
            rx,
        ))
    }

    pub async fn send(&self, data: &Bytes, to: SocketAddr) -> std::io::Result<()> {
        tracing::trace!(%to, msg = %String::from_utf8_lossy(data), "SIP out");
        self.socket.send_to(data, to).await.map(|_| ())
    }
}

impl Drop for SipTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
