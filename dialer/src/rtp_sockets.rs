//! RTP sockets for calls: the port goes into the SDP offer before anyone answers, so a socket
//! is bound per call; calls that end without media hand theirs back for the next call, and
//! only answered calls keep (and close) their own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Mutex, OnceLock};

/// Idle sockets kept per local address.
const MAX_IDLE: usize = 4096;

type Idle = HashMap<IpAddr, Vec<(UdpSocket, u16)>>;

fn idle() -> &'static Mutex<Idle> {
    static IDLE: OnceLock<Mutex<Idle>> = OnceLock::new();
    IDLE.get_or_init(Default::default)
}

/// A bound, not yet used RTP socket; back to the pool on drop unless taken for media.
#[derive(Debug)]
pub struct RtpSocket {
    socket: Option<UdpSocket>,
    ip: IpAddr,
    port: u16,
}

impl RtpSocket {
    /// An idle socket on `ip`, or a newly bound one (any port).
    pub fn take(ip: IpAddr) -> std::io::Result<Self> {
        let reused = idle()
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&ip).and_then(Vec::pop));
        let (socket, port) = match reused {
            Some((s, port)) => {
                // Whatever reached it since (late media of the call before) is not ours. It is
                // drained now, before the port is offered: the next call's callee may send
                // media as soon as it answers, even before our ACK.
                let mut buf = [0u8; 2048];
                while s.recv_from(&mut buf).is_ok() {}
                (s, port)
            }
            None => {
                let s = UdpSocket::bind(SocketAddr::new(ip, 0))?;
                s.set_nonblocking(true)?;
                let port = s.local_addr()?.port();
                (s, port)
            }
        };
        Ok(Self {
            socket: Some(socket),
            ip,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Takes the (non-blocking) socket for the call's media; it is closed when the call is
    /// done with it, never reused.
    pub fn into_std(mut self) -> std::io::Result<UdpSocket> {
        self.socket
            .take()
            .ok_or_else(|| std::io::Error::other("RTP socket already taken"))
    }
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        if let Ok(mut m) = idle().lock() {
            let list = m.entry(self.ip).or_default();
            if list.len() < MAX_IDLE {
                list.push((socket, self.port));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_sockets_are_reused_and_drained_taken_ones_are_not() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = RtpSocket::take(ip).unwrap();
        let port = first.port();
        // A stray packet lands on it before it goes back to the pool.
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"late media", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(first);
        let mut ports = Vec::new();
        let mut again = None;
        // Other tests may share the pool: look for ours among a few.
        for _ in 0..64 {
            let s = RtpSocket::take(ip).unwrap();
            if s.port() == port {
                again = Some(s);
                break;
            }
            ports.push(s);
        }
        let again = again.expect("the returned socket was reused");
        let media = again.into_std().unwrap();
        let mut buf = [0u8; 64];
        // Drained: nothing from the previous call is waiting...
        let stale = media.recv_from(&mut buf);
        assert_eq!(
            stale.map(|(n, _)| n).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "stale media was not drained"
        );
        // ...while new media still arrives.
        peer.send_to(b"new media", ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (n, _) = media.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"new media");
        drop(media);
        drop(ports);
    }
}
