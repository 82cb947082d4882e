//! Addresses: the address arguments of `skynet.socketdriver` (`"host:port"`,
//! `"[ipv6]:port"`, or a host with a separate port), host name resolution for every
//! socket that is opened, bound or sent to, and the binary UDP address (socket.md §2.3).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why an address string was refused (upstream's texts).
#[derive(Debug, PartialEq, Eq)]
pub enum AddressError {
    Invalid(String),
    InvalidPort(String),
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddressError::Invalid(a) => write!(f, "Invalid address {a}."),
            AddressError::InvalidPort(a) => write!(f, "Invalid port in address {a}."),
        }
    }
}

/// Splits an address that carries its port.
pub fn parse_address(addr: &str) -> Result<(String, u16), AddressError> {
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| AddressError::Invalid(addr.to_owned()))?;
        let after = &rest[close + 1..];
        let colon = after
            .find(':')
            .ok_or_else(|| AddressError::Invalid(addr.to_owned()))?;
        let port = &after[colon + 1..];
        (&rest[..close], port)
    } else {
        let colon = addr
            .find(':')
            .ok_or_else(|| AddressError::Invalid(addr.to_owned()))?;
        (&addr[..colon], &addr[colon + 1..])
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::InvalidPort(addr.to_owned()));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| AddressError::InvalidPort(addr.to_owned()))?;
    Ok((host.to_owned(), port))
}

/// How std words a failed getaddrinfo, before gai_strerror's text.
const LOOKUP_PREFIX: &str = "failed to lookup address information: ";

/// Resolves `host` with getaddrinfo (AF_UNSPEC; an IP literal is taken as it is): the one
/// place the socket layer turns names into addresses. A failure carries gai_strerror's
/// text alone, as upstream reports it (`Name or service not known`).
fn lookup(host: &str, port: u16) -> io::Result<impl Iterator<Item = SocketAddr>> {
    (host, port).to_socket_addrs().map_err(|e| {
        let text = e.to_string();
        match text.strip_prefix(LOOKUP_PREFIX) {
            Some(gai) => io::Error::new(e.kind(), gai),
            None => e,
        }
    })
}

/// The first address of `host:port`, which is the one upstream uses.
pub fn resolve(host: &str, port: u16) -> io::Result<SocketAddr> {
    lookup(host, port)?.next().ok_or_else(|| {
        // getaddrinfo succeeds with at least one address; say what it says for none.
        io::Error::new(io::ErrorKind::NotFound, "Name or service not known")
    })
}

/// As [`resolve`], with an empty host meaning 0.0.0.0, as upstream's `do_bind` reads it:
/// for the listening and UDP sockets.
pub fn resolve_or_any(host: &str, port: u16) -> io::Result<SocketAddr> {
    resolve(if host.is_empty() { "0.0.0.0" } else { host }, port)
}

/// Every address of `host` (`socketdriver.resolve`).
pub fn resolve_all(host: &str) -> io::Result<Vec<IpAddr>> {
    Ok(lookup(host, 0)?.map(|a| a.ip()).collect())
}

/// The binary UDP address of socketdriver: protocol byte (1 IPv4, 2 IPv6), port
/// big-endian, then the address bytes.
pub fn encode_udp_address(addr: &SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr {
        SocketAddr::V4(a) => {
            out.push(1);
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(2);
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out
}

/// Decodes a binary UDP address; None unless it is a well-formed 7- or 19-byte one.
pub fn decode_udp_address(bytes: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]);
    match (bytes.first()?, bytes.len()) {
        (1, 7) => {
            let ip: [u8; 4] = bytes[3..7].try_into().ok()?;
            Some((Ipv4Addr::from(ip), port).into())
        }
        (2, 19) => {
            let ip: [u8; 16] = bytes[3..19].try_into().ok()?;
            Some((Ipv6Addr::from(ip), port).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse_address("127.0.0.1:8000"),
            Ok(("127.0.0.1".into(), 8000))
        );
        assert_eq!(parse_address("[::1]:80"), Ok(("::1".into(), 80)));
        assert_eq!(parse_address(":9"), Ok(("".into(), 9)));
        assert_eq!(
            parse_address("x").unwrap_err().to_string(),
            "Invalid address x."
        );
        assert_eq!(
            parse_address("[::1]80").unwrap_err().to_string(),
            "Invalid address [::1]80."
        );
        assert_eq!(parse_address("[::1]x:80"), Ok(("::1".into(), 80)));
        assert_eq!(
            parse_address("a:7x").unwrap_err().to_string(),
            "Invalid port in address a:7x."
        );
        assert_eq!(
            parse_address("a:70000").unwrap_err().to_string(),
            "Invalid port in address a:70000."
        );
    }

    #[test]
    fn udp_address_round_trip() {
        let a: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        let e = encode_udp_address(&a);
        assert_eq!(e, [1, 0x22, 0x3d, 127, 0, 0, 1]);
        assert_eq!(decode_udp_address(&e), Some(a));
        let b: SocketAddr = "[::1]:53".parse().unwrap();
        let e = encode_udp_address(&b);
        assert_eq!(e.len(), 19);
        assert_eq!(decode_udp_address(&e), Some(b));
        assert_eq!(decode_udp_address(&[3, 0, 0, 1, 2, 3, 4]), None);
        assert_eq!(decode_udp_address(&[1, 0, 0]), None);
    }

    #[test]
    fn resolve_literals() {
        assert_eq!(
            resolve("127.0.0.1", 80).expect("ipv4"),
            "127.0.0.1:80".parse::<SocketAddr>().expect("literal")
        );
        assert_eq!(
            resolve("::1", 443).expect("ipv6"),
            "[::1]:443".parse::<SocketAddr>().expect("literal")
        );
        assert_eq!(
            resolve_or_any("", 9).expect("any"),
            "0.0.0.0:9".parse::<SocketAddr>().expect("literal")
        );
        assert_eq!(
            resolve_or_any("::1", 9).expect("ipv6"),
            "[::1]:9".parse::<SocketAddr>().expect("literal")
        );
    }

    #[test]
    fn resolve_host_names() {
        let local = resolve("localhost", 8000).expect("localhost");
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 8000);
        let all = resolve_all("localhost").expect("localhost");
        assert!(
            !all.is_empty() && all.iter().all(IpAddr::is_loopback),
            "{all:?}"
        );
        assert_eq!(
            resolve_all("127.0.0.1").expect("literal"),
            [IpAddr::from([127, 0, 0, 1])]
        );
    }

    #[test]
    fn resolve_failures_say_what_getaddrinfo_says() {
        // An empty host is no name at all (only binds read it as 0.0.0.0); getaddrinfo
        // refuses it without asking any name server.
        let e = resolve("", 80).expect_err("empty host");
        assert_eq!(e.to_string(), "Name or service not known");
        let e = resolve_all("").expect_err("empty host");
        assert_eq!(e.to_string(), "Name or service not known");
    }
}
