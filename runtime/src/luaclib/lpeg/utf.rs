//! UTF-8 code points for `lpeg.utfR`: how long a code point's encoding is, its first
//! byte, and decoding one (strictly: no overlong forms, nothing past U+10FFFF).

pub const MAX_CODE_POINT: u32 = 0x10FFFF;

pub fn encoded_len(cp: u32) -> u32 {
    match cp {
        0..=0x7F => 1,
        0x80..=0x7FF => 2,
        0x800..=0xFFFF => 3,
        _ => 4,
    }
}

/// The first byte of `cp`'s encoding; it grows with `cp`.
pub fn lead(cp: u32) -> u8 {
    match encoded_len(cp) {
        1 => cp as u8,
        2 => 0xC0 | (cp >> 6) as u8,
        3 => 0xE0 | (cp >> 12) as u8,
        _ => 0xF0 | (cp >> 18) as u8,
    }
}

/// The code point encoded at the start of `s` and its length.
#[inline]
pub fn decode(s: &[u8]) -> Option<(u32, usize)> {
    let c = *s.first()? as u32;
    let (len, init) = match c {
        0..=0x7F => return Some((c, 1)),
        0xC0..=0xDF => (2, c & 0x1F),
        0xE0..=0xEF => (3, c & 0x0F),
        0xF0..=0xF7 => (4, c & 0x07),
        _ => return None,
    };
    let tail = s.get(1..len)?;
    let mut cp = init;
    for &b in tail {
        if b & 0xC0 != 0x80 {
            return None;
        }
        cp = (cp << 6) | (b as u32 & 0x3F);
    }
    (encoded_len(cp) == len as u32 && cp <= MAX_CODE_POINT).then_some((cp, len))
}
