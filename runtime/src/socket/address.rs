//! Address arguments of `skynet.socketdriver`: `"host:port"`, `"[ipv6]:port"`, or a host
//! with a separate port.

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
}

/// The binary UDP address of socketdriver: protocol byte (1 IPv4, 2 IPv6), port
/// big-endian, then the address bytes.
pub fn encode_udp_address(addr: &std::net::SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr {
        std::net::SocketAddr::V4(a) => {
            out.push(1);
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.ip().octets());
        }
        std::net::SocketAddr::V6(a) => {
            out.push(2);
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out
}

/// Decodes a binary UDP address; None unless it is a well-formed 7- or 19-byte one.
pub fn decode_udp_address(bytes: &[u8]) -> Option<std::net::SocketAddr> {
    let port = u16::from_be_bytes([*bytes.get(1)?, *bytes.get(2)?]);
    match (bytes.first()?, bytes.len()) {
        (1, 7) => {
            let ip: [u8; 4] = bytes[3..7].try_into().ok()?;
            Some((std::net::Ipv4Addr::from(ip), port).into())
        }
        (2, 19) => {
            let ip: [u8; 16] = bytes[3..19].try_into().ok()?;
            Some((std::net::Ipv6Addr::from(ip), port).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod udp_tests {
    use super::*;

    #[test]
    fn udp_address_round_trip() {
        let a: std::net::SocketAddr = "127.0.0.1:8765".parse().unwrap();
        let e = encode_udp_address(&a);
        assert_eq!(e, [1, 0x22, 0x3d, 127, 0, 0, 1]);
        assert_eq!(decode_udp_address(&e), Some(a));
        let b: std::net::SocketAddr = "[::1]:53".parse().unwrap();
        let e = encode_udp_address(&b);
        assert_eq!(e.len(), 19);
        assert_eq!(decode_udp_address(&e), Some(b));
        assert_eq!(decode_udp_address(&[3, 0, 0, 1, 2, 3, 4]), None);
        assert_eq!(decode_udp_address(&[1, 0, 0]), None);
    }
}
