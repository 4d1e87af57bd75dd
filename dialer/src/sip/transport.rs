//! SIP over UDP for every call of the process: one shared socket per local address, served by
//! a receive loop that hands each datagram to the call it belongs to.
//!
//! Routing follows RFC 3261: a response goes to the client transaction named by its top Via
//! branch (§17.1.3), a request to the dialog named by its Call-ID (the call then checks the
//! tags, §12.2.2). A response whose transaction already ended is still answered: INVITE
//! transactions that ended with a failure linger for Timer D (32 s), re-ACKing retransmitted
//! final responses. Requests for no known call get 481 (OPTIONS: 200).
//!
//! There is one endpoint per tokio runtime and local address: its receive loop is a task of
//! the runtime whose calls it serves (so handing a datagram to a call is a local wake-up),
//! and it closes when the last call holding it ends.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rsip::SipMessage;
use tokio::net::UdpSocket;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{demux, message};

/// RFC 3261 Timer D for unreliable transports.
pub const TIMER_D: Duration = Duration::from_secs(32);
/// Socket buffers asked for (the kernel caps them at `net.core.rmem_max`/`wmem_max`).
const SOCKET_BUFFER: usize = 4 << 20;
/// Datagrams queued for one call before further ones are dropped (as UDP would).
const CALL_QUEUE: usize = 32;

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

/// A datagram for one call.
#[derive(Debug)]
pub struct Inbound {
    pub data: Bytes,
    pub from: SocketAddr,
}

/// A call's queue of datagrams (lighter than a channel: most calls see two or three).
#[derive(Default)]
struct Inbox {
    queue: Mutex<VecDeque<Inbound>>,
    ready: Notify,
}

impl Inbox {
    fn push(&self, inbound: Inbound) -> bool {
        let mut q = lock(&self.queue);
        if q.len() >= CALL_QUEUE {
            return false;
        }
        q.push_back(inbound);
        drop(q);
        self.ready.notify_one();
        true
    }

    async fn pop(&self) -> Inbound {
        loop {
            if let Some(inbound) = lock(&self.queue).pop_front() {
                return inbound;
            }
            // notify_one keeps a permit when nobody waits, so no push is missed here.
            self.ready.notified().await;
        }
    }
}

type CallTx = Arc<Inbox>;

/// Who gets what: live transactions and dialogs, and the ACKs of ended ones (Timer D).
#[derive(Default)]
struct Table {
    branches: HashMap<Box<str>, CallTx>,
    dialogs: HashMap<Box<str>, CallTx>,
    lingering: HashMap<Box<str>, (Bytes, SocketAddr)>,
    linger_order: VecDeque<(Instant, Box<str>)>,
}

impl Table {
    fn prune(&mut self, now: Instant) {
        while let Some((until, _)) = self.linger_order.front() {
            if *until > now {
                break;
            }
            if let Some((_, branch)) = self.linger_order.pop_front() {
                self.lingering.remove(&branch);
            }
        }
    }
}

/// One shared SIP socket and its receive loop.
pub struct SipEndpoint {
    socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    table: Arc<Mutex<Table>>,
    reader: JoinHandle<()>,
}

impl std::fmt::Debug for SipEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipEndpoint")
            .field("local", &self.local)
            .finish()
    }
}

type Registry = HashMap<(tokio::runtime::Id, IpAddr), Weak<SipEndpoint>>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain maps behind: still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SipEndpoint {
    /// The current runtime's endpoint on `ip`, bound now if no call currently holds one.
    pub fn shared(ip: IpAddr) -> std::io::Result<Arc<Self>> {
        let runtime = Handle::try_current().map_err(std::io::Error::other)?.id();
        let mut reg = lock(registry());
        if let Some(ep) = reg.get(&(runtime, ip)).and_then(Weak::upgrade) {
            return Ok(ep);
        }
        reg.retain(|_, w| w.strong_count() > 0);
        let ep = Arc::new(Self::bind(ip)?);
        reg.insert((runtime, ip), Arc::downgrade(&ep));
        Ok(ep)
    }

    /// Binds a fresh endpoint on `ip` (any port) and starts its receive loop on the current
    /// runtime.
    pub fn bind(ip: IpAddr) -> std::io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let addr = SocketAddr::new(ip, 0);
        let raw = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if let Err(e) = raw.set_recv_buffer_size(SOCKET_BUFFER) {
            tracing::debug!(error = %e, "SIP socket receive buffer left at default");
        }
        if let Err(e) = raw.set_send_buffer_size(SOCKET_BUFFER) {
            tracing::debug!(error = %e, "SIP socket send buffer left at default");
        }
        raw.set_nonblocking(true)?;
        raw.bind(&addr.into())?;
        let handle = Handle::try_current().map_err(std::io::Error::other)?;
        let socket = {
            let _ctx = handle.enter();
            Arc::new(UdpSocket::from_std(raw.into())?)
        };
        let local = socket.local_addr()?;
        let table = Arc::new(Mutex::new(Table::default()));
        let reader = handle.spawn(receive_loop(socket.clone(), table.clone()));
        tracing::debug!(%local, "SIP endpoint bound");
        Ok(Self {
            socket,
            local,
            table,
            reader,
        })
    }

    pub async fn send(&self, data: &Bytes, to: SocketAddr) -> std::io::Result<()> {
        tracing::trace!(%to, msg = %String::from_utf8_lossy(data), "SIP out");
        self.socket.send_to(data, to).await.map(|_| ())
    }
}

impl Drop for SipEndpoint {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads datagrams and routes them until the endpoint is dropped.
async fn receive_loop(socket: Arc<UdpSocket>, table: Arc<Mutex<Table>>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
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
        let Some(keys) = demux::keys(data) else {
            tracing::warn!(%from, "dropping malformed SIP message");
            continue;
        };
        let reply = route(&table, &keys, data, from);
        if let Some((bytes, to)) = reply {
            if let Err(e) = socket.send_to(&bytes, to).await {
                tracing::debug!(error = %e, "SIP send failed");
            }
        }
    }
}

/// Hands a datagram to its call; returns what the endpoint itself must send back, if anything.
fn route(
    table: &Mutex<Table>,
    keys: &demux::Keys<'_>,
    data: &[u8],
    from: SocketAddr,
) -> Option<(Bytes, SocketAddr)> {
    let deliver = |tx: &CallTx| {
        let inbound = Inbound {
            data: Bytes::copy_from_slice(data),
            from,
        };
        if !tx.push(inbound) {
            tracing::debug!(%from, "call queue full; SIP datagram dropped");
        }
    };
    let mut t = lock(table);
    if let Some(code) = keys.status {
        if let Some(tx) = keys.branch.and_then(|b| t.branches.get(b)) {
            deliver(tx);
            return None;
        }
        if let Some((ack, to)) = keys.branch.and_then(|b| t.lingering.get(b)) {
            // Timer D: the peer missed our ACK of its final failure response.
            return (code >= 300).then(|| (ack.clone(), *to));
        }
        if let Some(tx) = keys.call_id.and_then(|c| t.dialogs.get(c)) {
            deliver(tx);
        } else {
            tracing::debug!(%from, code, "response for no transaction; dropped");
        }
        return None;
    }
    if let Some(tx) = keys.call_id.and_then(|c| t.dialogs.get(c)) {
        deliver(tx);
        return None;
    }
    t.prune(Instant::now());
    drop(t);
    if keys.method == "ACK" {
        return None;
    }
    let code = if keys.method == "OPTIONS" { 200 } else { 481 };
    let request = message::parse(data).ok()?;
    match message::response_to(&request, code, &message::random_token(10)) {
        Ok(bytes) => Some((bytes, from)),
        Err(e) => {
            tracing::debug!(error = %e, "cannot answer a request for no dialog");
            None
        }
    }
}

/// The CSeq method of a response, as far as calls care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CSeqMethod {
    Invite,
    Cancel,
    Bye,
    Other,
}

impl CSeqMethod {
    pub fn from_name(name: &str) -> Self {
        match name {
            m if m.eq_ignore_ascii_case("INVITE") => Self::Invite,
            m if m.eq_ignore_ascii_case("CANCEL") => Self::Cancel,
            m if m.eq_ignore_ascii_case("BYE") => Self::Bye,
            _ => Self::Other,
        }
    }
}

/// A response read without a full parse: provisional ones and failures (except digest
/// challenges), which is most of what calls get and all they need of those.
#[derive(Debug, Clone)]
pub struct Status {
    pub code: u16,
    pub cseq: u32,
    pub method: CSeqMethod,
    branch: Bytes,
    to: Bytes,
    reason: Bytes,
}

impl Status {
    /// Reads `data` as such a response, when it is one with a branch, a CSeq and a To.
    fn read(data: &Bytes) -> Option<Self> {
        let keys = demux::keys(data)?;
        let code = keys.status.filter(|c| {
            (100..200).contains(c) || ((300..700).contains(c) && *c != 401 && *c != 407)
        })?;
        let (cseq, method) = keys.cseq?;
        let part = |s: &str| data.slice_ref(s.as_bytes());
        Some(Self {
            code,
            cseq,
            method: CSeqMethod::from_name(method),
            branch: part(keys.branch?),
            to: part(keys.to?),
            reason: part(keys.reason),
        })
    }

    fn text(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap_or_default()
    }

    /// The top Via branch, naming the client transaction.
    pub fn branch(&self) -> &str {
        Self::text(&self.branch)
    }

    /// The To header's value.
    pub fn to(&self) -> &str {
        Self::text(&self.to)
    }

    /// The reason phrase as the peer wrote it.
    pub fn reason(&self) -> &str {
        Self::text(&self.reason)
    }
}

/// What a call receives.
#[derive(Debug)]
pub enum Received {
    Status(Status),
    Message(SipMessage),
}

/// One call's view of the shared endpoint: its Call-ID and client transactions are routed to
/// it until it is dropped.
pub struct CallLeg {
    endpoint: Arc<SipEndpoint>,
    call_id: Box<str>,
    inbox: CallTx,
    branches: Vec<Box<str>>,
    linger: Option<(Box<str>, Bytes, SocketAddr)>,
}

impl CallLeg {
    /// Registers the dialog `call_id` and the transaction `branch` on `endpoint`.
    pub fn open(endpoint: Arc<SipEndpoint>, call_id: &str, branch: &str) -> Self {
        let inbox = Arc::new(Inbox::default());
        let call_id: Box<str> = call_id.into();
        let branch: Box<str> = branch.into();
        {
            let mut t = lock(&endpoint.table);
            t.dialogs.insert(call_id.clone(), inbox.clone());
            t.branches.insert(branch.clone(), inbox.clone());
        }
        Self {
            endpoint,
            call_id,
            inbox,
            branches: vec![branch],
            linger: None,
        }
    }

    /// Where the shared socket is bound (for Via and Contact).
    pub fn local(&self) -> SocketAddr {
        self.endpoint.local
    }

    /// Routes responses carrying `branch` (a new client transaction) to this call.
    pub fn add_branch(&mut self, branch: &str) {
        let branch: Box<str> = branch.into();
        lock(&self.endpoint.table)
            .branches
            .insert(branch.clone(), self.inbox.clone());
        self.branches.push(branch);
    }

    /// After this leg is dropped, keep re-ACKing final responses on `branch` for Timer D.
    pub fn linger(&mut self, branch: &str, ack: Bytes, to: SocketAddr) {
        self.linger = Some((branch.into(), ack, to));
    }

    pub async fn send(&self, data: &Bytes, to: SocketAddr) -> std::io::Result<()> {
        self.endpoint.send(data, to).await
    }

    /// The next SIP message for this call (malformed ones are logged and skipped).
    pub async fn recv(&mut self) -> (Received, SocketAddr) {
        loop {
            let inbound = self.inbox.pop().await;
            if let Some(status) = Status::read(&inbound.data) {
                return (Received::Status(status), inbound.from);
            }
            match message::parse(&inbound.data) {
                Ok(msg) => return (Received::Message(msg), inbound.from),
                Err(e) => {
                    tracing::warn!(from = %inbound.from, error = %e, "dropping malformed SIP message")
                }
            }
        }
    }
}

impl Drop for CallLeg {
    fn drop(&mut self) {
        let mut t = lock(&self.endpoint.table);
        t.dialogs.remove(&self.call_id);
        for b in &self.branches {
            t.branches.remove(b);
        }
        let now = Instant::now();
        t.prune(now);
        if let Some((branch, ack, to)) = self.linger.take() {
            t.linger_order.push_back((now + TIMER_D, branch.clone()));
            t.lingering.insert(branch, (ack, to));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(code: u16, branch: &str, call_id: &str) -> String {
        format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch={branch}\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    }

    async fn answer(peer: &UdpSocket, buf: &mut [u8]) -> usize {
        tokio::time::timeout(Duration::from_secs(5), peer.recv_from(buf))
            .await
            .expect("an answer from the endpoint")
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn routes_by_branch_then_call_id_and_lingers_for_timer_d() {
        let ep = Arc::new(SipEndpoint::bind("127.0.0.1".parse().unwrap()).unwrap());
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();

        let mut a = CallLeg::open(ep.clone(), "call-a", "z9hG4bKa");
        let mut b = CallLeg::open(ep.clone(), "call-b", "z9hG4bKb");
        // By branch, even when the Call-ID belongs to the other call (the branch decides).
        peer.send_to(response(180, "z9hG4bKa", "call-b").as_bytes(), ep.local)
            .await
            .unwrap();
        let (Received::Status(p), _) = a.recv().await else {
            panic!("a 180 is read without a full parse")
        };
        assert_eq!(
            (p.code, p.method, p.branch()),
            (180, CSeqMethod::Invite, "z9hG4bKa")
        );
        assert_eq!((p.cseq, p.to(), p.reason()), (1, "<sip:b@h>;tag=2", "X"));
        // Unknown branch: the dialog gets it.
        peer.send_to(response(200, "z9hG4bKold", "call-b").as_bytes(), ep.local)
            .await
            .unwrap();
        let (Received::Message(msg), _) = b.recv().await else {
            panic!("a 200 is parsed in full")
        };
        assert_eq!(message::top_branch(&msg).as_deref(), Some("z9hG4bKold"));
        // An ended failed INVITE re-ACKs retransmitted finals from the endpoint itself.
        a.linger(
            "z9hG4bKa",
            Bytes::from_static(b"ACK again"),
            peer.local_addr().unwrap(),
        );
        drop(a);
        peer.send_to(response(486, "z9hG4bKa", "call-a").as_bytes(), ep.local)
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let n = answer(&peer, &mut buf).await;
        assert_eq!(&buf[..n], b"ACK again");
        // A BYE for no dialog gets 481.
        let bye = "BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKq\r\n\
                   From: <sip:b@h>;tag=2\r\nTo: <sip:a@h>;tag=1\r\nCall-ID: gone\r\nCSeq: 2 BYE\r\n\
                   Content-Length: 0\r\n\r\n";
        peer.send_to(bye.as_bytes(), ep.local).await.unwrap();
        let n = answer(&peer, &mut buf).await;
        assert!(
            buf[..n].starts_with(b"SIP/2.0 481"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        drop(b);
    }

    #[tokio::test]
    async fn shared_endpoint_is_reused_while_held() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let one = SipEndpoint::shared(ip).unwrap();
        let two = SipEndpoint::shared(ip).unwrap();
        assert_eq!(one.local, two.local);
        assert!(Arc::ptr_eq(&one, &two));
    }
}
