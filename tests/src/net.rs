//! Loopback UDP ports for SIP peers: a free port (with its media neighbour), and waiting
//! until a peer process has bound its port before the first packet is sent to it.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// A free UDP port on loopback below 60,000 whose `+2` neighbour (SIPp's default media
/// port) is free too. Bind-and-release, so another process could still take it.
pub fn free_udp_port() -> u16 {
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        let port = s.local_addr().expect("a bound socket's address").port();
        drop(s);
        if port < 60_000 && UdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return port;
        }
    }
}

/// Waits until something listens on UDP `port` on loopback (read from /proc/net/udp), at
/// most `timeout`: a SIPp under load can take longer than a fixed pause to bind, and an
/// INVITE sent before that is lost. Returns whether the port was bound in time.
pub fn wait_udp_bound(port: u16, timeout: Duration) -> bool {
    let needle = format!(":{port:04X}");
    let start = Instant::now();
    while start.elapsed() < timeout {
        let bound = std::fs::read_to_string("/proc/net/udp").is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(&needle))
            })
        });
        if bound {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
