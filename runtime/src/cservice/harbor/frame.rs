//! Framing between harbors (services.md §2.3): a u32 big-endian length, the payload, then
//! a 12-byte cookie of source, destination and session, each u32 big-endian. The
//! destination carries the message type in its top byte and the local id below it. The
//! length counts payload and cookie and its top byte must be 0, so a frame's payload is
//! at most [`MAX_PAYLOAD`] bytes.
//!
//! [`Reader`] cuts a byte stream into frames. A frame found whole in one read is copied
//! once, straight into the payload it is delivered in; one split over reads is gathered
//! first.

use crate::message::Payload;

const LENGTH: usize = 4;
pub const COOKIE: usize = 12;
/// The largest payload one frame carries.
pub const MAX_PAYLOAD: usize = 0xff_ffff - COOKIE;

/// Who a remote message is from and for: `destination` is `(type << 24) | local id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cookie {
    pub source: u32,
    pub destination: u32,
    pub session: u32,
}

/// A message on its way to another harbor.
pub struct Outgoing {
    pub cookie: Cookie,
    pub payload: Payload,
}

/// The whole frame for `out`, or None when its payload is over [`MAX_PAYLOAD`].
pub fn encode(out: &Outgoing) -> Option<Vec<u8>> {
    let payload = out.payload.bytes();
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    let c = &out.cookie;
    let mut frame = Vec::with_capacity(LENGTH + payload.len() + COOKIE);
    frame.extend_from_slice(&((payload.len() + COOKIE) as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    for word in [c.source, c.destination, c.session] {
        frame.extend_from_slice(&word.to_be_bytes());
    }
    Some(frame)
}

/// Why a stream is given up.
#[derive(Debug, PartialEq, Eq)]
pub enum BadFrame {
    /// The length's top byte is not 0.
    TooLong,
    /// The length cannot even hold the cookie.
    TooShort(usize),
}

/// Reassembles frames from a stream.
#[derive(Default)]
pub struct Reader {
    length: [u8; LENGTH],
    length_read: usize,
    /// The frame's length, once its length field is complete.
    frame: Option<usize>,
    gathered: Vec<u8>,
}

fn split(frame: &[u8]) -> (Cookie, Payload) {
    let (payload, cookie) = frame.split_at(frame.len() - COOKIE);
    let word =
        |i: usize| u32::from_be_bytes([cookie[i], cookie[i + 1], cookie[i + 2], cookie[i + 3]]);
    let cookie = Cookie {
        source: word(0),
        destination: word(4),
        session: word(8),
    };
    (cookie, Payload::copy_of(payload))
}

impl Reader {
    /// Reads `data`, handing every completed frame to `deliver`. After an error the
    /// stream is not in step any more and must be dropped.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        deliver: &mut impl FnMut(Cookie, Payload),
    ) -> Result<(), BadFrame> {
        while !data.is_empty() {
            let Some(length) = self.frame else {
                let take = (LENGTH - self.length_read).min(data.len());
                self.length[self.length_read..self.length_read + take]
                    .copy_from_slice(&data[..take]);
                self.length_read += take;
                data = &data[take..];
                if self.length_read == LENGTH {
                    self.length_read = 0;
                    self.frame = Some(self.frame_length()?);
                }
                continue;
            };
            if self.gathered.is_empty() && data.len() >= length {
                let (cookie, payload) = split(&data[..length]);
                deliver(cookie, payload);
                data = &data[length..];
                self.frame = None;
                continue;
            }
            let take = (length - self.gathered.len()).min(data.len());
            self.gathered.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.gathered.len() == length {
                let gathered = std::mem::take(&mut self.gathered);
                let (cookie, payload) = split(&gathered);
                deliver(cookie, payload);
                self.frame = None;
            }
        }
        Ok(())
    }

    fn frame_length(&self) -> Result<usize, BadFrame> {
        let [top, a, b, c] = self.length;
        if top != 0 {
            return Err(BadFrame::TooLong);
        }
        let length = u32::from_be_bytes([0, a, b, c]) as usize;
        if length < COOKIE {
            return Err(BadFrame::TooShort(length));
        }
        Ok(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(payload: &[u8]) -> Outgoing {
        Outgoing {
            cookie: Cookie {
                source: 0x0100_0008,
                destination: 0x0300_000a,
                session: 0xffff_fffe,
            },
            payload: Payload::copy_of(payload),
        }
    }

    fn read_all(reader: &mut Reader, chunks: &[&[u8]]) -> Vec<(Cookie, Vec<u8>)> {
        let mut got = Vec::new();
        for chunk in chunks {
            reader
                .feed(chunk, &mut |c, p| got.push((c, p.bytes().to_vec())))
                .expect("good frames");
        }
        got
    }

    #[test]
    fn a_frame_is_length_payload_cookie_big_endian() {
        let frame = encode(&out(b"hi")).expect("small");
        assert_eq!(
            frame,
            [
                &[0, 0, 0, 14][..],
                b"hi",
                &[1, 0, 0, 8, 3, 0, 0, 0xa, 0xff, 0xff, 0xff, 0xfe]
            ]
            .concat()
        );
    }

    #[test]
    fn frames_come_back_whole_or_split_at_any_byte() {
        let big = vec![7u8; 70_000];
        let stream = [encode(&out(b"")), encode(&out(b"abc")), encode(&out(&big))]
            .into_iter()
            .map(|f| f.expect("small"))
            .collect::<Vec<_>>()
            .concat();
        let whole = read_all(&mut Reader::default(), &[&stream]);
        for cut in [1, 3, 4, 5, 16, 20, 33, 40_000] {
            let (a, b) = stream.split_at(cut);
            assert_eq!(read_all(&mut Reader::default(), &[a, b]), whole);
        }
        let bytes: Vec<&[u8]> = stream[..40].chunks(1).collect();
        let mut reader = Reader::default();
        let mut got = read_all(&mut reader, &bytes);
        got.extend(read_all(&mut reader, &[&stream[40..]]));
        assert_eq!(got, whole);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[1].1, b"abc");
        assert_eq!(whole[2].1.len(), 70_000);
        assert_eq!(whole[0].0, out(b"").cookie);
    }

    #[test]
    fn a_length_over_16m_or_under_the_cookie_is_refused() {
        let mut ignore = |_: Cookie, _: Payload| {};
        let mut r = Reader::default();
        assert_eq!(r.feed(&[1, 0, 0, 0], &mut ignore), Err(BadFrame::TooLong));
        let mut r = Reader::default();
        assert_eq!(
            r.feed(&[0, 0, 0, 5], &mut ignore),
            Err(BadFrame::TooShort(5))
        );
        assert!(encode(&out(&vec![0; MAX_PAYLOAD + 1])).is_none());
    }
}
