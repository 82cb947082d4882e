//! C's `strtol` for the text protocols skynet inherited from C: command arguments,
//! `:hex` addresses, config numbers and bson keys parse as upstream's C parses them.

/// `strtol(s, &end, base)` for base 0 (decimal, `0x` hex or leading-0 octal), 8, 10 or
/// 16: leading blanks, a sign, then as many digits as there are. Returns the value
/// (clamped to the `i64` range, as C clamps to `LONG_MIN`/`LONG_MAX`) and how many bytes were
/// used; 0 bytes when there were no digits, as C leaves `end` at the start.
pub fn strtol(s: &[u8], base: u32) -> (i64, usize) {
    let blanks = s
        .iter()
        .take_while(|b| b" \t\n\r\x0b\x0c".contains(b))
        .count();
    let mut at = blanks;
    let neg = match s.get(at) {
        Some(b'-') => {
            at += 1;
            true
        }
        Some(b'+') => {
            at += 1;
            false
        }
        _ => false,
    };
    let has_hex_prefix = s.get(at) == Some(&b'0')
        && matches!(s.get(at + 1), Some(b'x' | b'X'))
        && s.get(at + 2).is_some_and(|b| b.is_ascii_hexdigit());
    let radix = match base {
        0 if has_hex_prefix => 16,
        0 if s.get(at) == Some(&b'0') => 8,
        0 => 10,
        b => b,
    };
    if radix == 16 && has_hex_prefix {
        at += 2;
    }
    let start = at;
    let mut v: i128 = 0;
    while let Some(d) = s.get(at).and_then(|&b| (b as char).to_digit(radix)) {
        v = (v * radix as i128 + d as i128).min(1 << 64);
        at += 1;
    }
    if at == start {
        return (0, 0);
    }
    let v = if neg { -v } else { v };
    (v.clamp(i64::MIN as i128, i64::MAX as i128) as i64, at)
}

/// The whole of `s` as a C integer (base 0); None if anything is left over or empty.
pub fn whole(s: &[u8]) -> Option<i64> {
    match strtol(s, 0) {
        (v, n) if n == s.len() && n > 0 => Some(v),
        _ => None,
    }
}

/// `strtoul(s, NULL, 16)` as skynet reads `:hex` addresses (junk after the digits is
/// ignored; 0 when there are none).
pub fn hex_handle(s: &[u8]) -> u32 {
    strtol(s, 16).0 as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_signs_and_junk_as_c() {
        assert_eq!(strtol(b"  42abc", 10), (42, 4));
        assert_eq!(strtol(b"-17", 10), (-17, 3));
        assert_eq!(strtol(b"+5", 0), (5, 2));
        assert_eq!(strtol(b"0x1F", 0), (31, 4));
        assert_eq!(strtol(b"0X1f", 16), (31, 4));
        assert_eq!(strtol(b"017", 0), (15, 3));
        assert_eq!(strtol(b"0", 0), (0, 1));
        assert_eq!(strtol(b"08", 0), (0, 1));
        assert_eq!(strtol(b"0x", 0), (0, 1));
        assert_eq!(strtol(b"abc", 10), (0, 0));
        assert_eq!(strtol(b"", 0), (0, 0));
        assert_eq!(strtol(b"-", 10), (0, 0));
        assert_eq!(strtol(b"99999999999999999999", 10).0, i64::MAX);
        assert_eq!(strtol(b"-99999999999999999999", 10).0, i64::MIN);
    }

    #[test]
    fn whole_strings_and_handles() {
        assert_eq!(whole(b"0x10"), Some(16));
        assert_eq!(whole(b"-8"), Some(-8));
        assert_eq!(whole(b"12 "), None);
        assert_eq!(whole(b""), None);
        assert_eq!(hex_handle(b"ff000001"), 0xff00_0001);
        assert_eq!(hex_handle(b"1a:junk"), 0x1a);
        assert_eq!(hex_handle(b"zz"), 0);
    }
}
