//! sproto's 0-packing (README "0 Packing"): the message, zero-padded to whole 8-byte
//! words, becomes per word a tag byte whose bit i says byte i is nonzero, followed by
//! the nonzero bytes. A word with no zero byte starts a raw run instead: `ff`, the
//! number of words less one, then the words as they are; words with six or seven
//! nonzero bytes extend a run already open, and a run holds at most 256 words.
//!
//! Both directions are pure functions over slices, so the Lua binding can hand them a
//! buffer Lua owns.

/// Words in the longest raw run.
const MAX_RUN: usize = 256;

/// An upper bound of `pack`'s output for `len` input bytes (upstream's: two bytes per
/// 2 KiB, plus two).
pub fn packed_bound(len: usize) -> usize {
    len.div_ceil(2048) * 2 + len + 2
}

/// The open raw run: where its count byte is and how many words it holds.
struct Run {
    count_at: usize,
    words: usize,
}

/// Packs `src` into `out`, which holds at least [`packed_bound`] bytes; returns the
/// packed length.
pub fn pack(src: &[u8], out: &mut [u8]) -> usize {
    let mut at = 0;
    let mut run: Option<Run> = None;
    for chunk in src.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        let nonzero = w.iter().filter(|&&b| b != 0).count();
        run = match run {
            Some(mut r) if nonzero >= 6 => {
                out[at..at + 8].copy_from_slice(&w);
                at += 8;
                r.words += 1;
                if r.words == MAX_RUN {
                    out[r.count_at] = (MAX_RUN - 1) as u8;
                    None
                } else {
                    Some(r)
                }
            }
            open => {
                if let Some(r) = open {
                    out[r.count_at] = (r.words - 1) as u8;
                }
                if nonzero == 8 {
                    out[at] = 0xff;
                    out[at + 2..at + 10].copy_from_slice(&w);
                    at += 10;
                    Some(Run {
                        count_at: at - 9,
                        words: 1,
                    })
                } else {
                    at = pack_word(&w, out, at);
                    None
                }
            }
        };
    }
    if let Some(r) = run {
        out[r.count_at] = (r.words - 1) as u8;
    }
    at
}

/// Writes one word as a tag byte and its nonzero bytes at `at`; returns the end.
fn pack_word(w: &[u8; 8], out: &mut [u8], mut at: usize) -> usize {
    let tag_at = at;
    let mut tag = 0u8;
    at += 1;
    for (i, &b) in w.iter().enumerate() {
        if b != 0 {
            tag |= 1 << i;
            out[at] = b;
            at += 1;
        }
    }
    out[tag_at] = tag;
    at
}

/// A packed stream that stops in the middle of a word or a run.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid;

/// The unpacked length of `src`, checking that the stream is whole.
pub fn unpacked_len(src: &[u8]) -> Result<usize, Invalid> {
    let mut len = 0;
    let mut at = 0;
    while at < src.len() {
        let tag = src[at];
        at += 1;
        if tag == 0xff {
            let words = usize::from(*src.get(at).ok_or(Invalid)?) + 1;
            at += 1 + words * 8;
            len += words * 8;
            if at > src.len() {
                return Err(Invalid);
            }
        } else {
            at += tag.count_ones() as usize;
            len += 8;
            if at > src.len() {
                return Err(Invalid);
            }
        }
    }
    Ok(len)
}

/// Unpacks a stream [`unpacked_len`] accepted into `out`, which holds exactly that
/// many bytes.
pub fn unpack(src: &[u8], out: &mut [u8]) {
    let mut at = 0;
    let mut o = 0;
    while at < src.len() {
        let tag = src[at];
        at += 1;
        if tag == 0xff {
            let n = (usize::from(src[at]) + 1) * 8;
            out[o..o + n].copy_from_slice(&src[at + 1..at + 1 + n]);
            at += 1 + n;
            o += n;
        } else {
            for i in 0..8 {
                out[o + i] = if tag & (1 << i) != 0 {
                    at += 1;
                    src[at - 1]
                } else {
                    0
                };
            }
            o += 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(src: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; packed_bound(src.len())];
        let n = pack(src, &mut out);
        out.truncate(n);
        out
    }

    fn unpacked(src: &[u8]) -> Result<Vec<u8>, Invalid> {
        let mut out = vec![0u8; unpacked_len(src)?];
        unpack(src, &mut out);
        Ok(out)
    }

    #[test]
    fn readme_examples() {
        let src = [
            0x08, 0, 0, 0, 0x03, 0, 0x02, 0, 0x19, 0, 0, 0, 0xaa, 0x01, 0, 0,
        ];
        assert_eq!(
            packed(&src),
            [0x51, 0x08, 0x03, 0x02, 0x31, 0x19, 0xaa, 0x01]
        );
        let src = [0x8a; 30];
        let mut want = vec![0xff, 0x03];
        want.extend_from_slice(&[0x8a; 30]);
        want.extend_from_slice(&[0, 0]);
        assert_eq!(packed(&src), want);
        assert_eq!(unpacked(&want).unwrap()[..30], src);
    }

    #[test]
    fn runs_take_dense_words_and_stop_at_256() {
        // 7 nonzero bytes extend a run but do not start one
        let mut src = vec![1u8; 8];
        src.extend_from_slice(&[1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(packed(&src)[..2], [0xff, 0x01]);
        let lone = [1, 1, 1, 1, 1, 1, 1, 0];
        assert_eq!(packed(&lone), [0x7f, 1, 1, 1, 1, 1, 1, 1]);
        let long = vec![7u8; 8 * 300];
        let p = packed(&long);
        assert_eq!(p[..2], [0xff, 0xff]);
        assert_eq!(p[2 + 256 * 8..2 + 256 * 8 + 2], [0xff, 43]);
        assert_eq!(p.len(), 4 + 300 * 8);
        assert_eq!(unpacked(&p).unwrap(), long);
    }

    #[test]
    fn cut_streams_are_invalid() {
        assert_eq!(unpacked(&[0x03, 1]), Err(Invalid));
        assert_eq!(unpacked(&[0xff]), Err(Invalid));
        assert_eq!(unpacked(&[0xff, 0, 1, 2, 3]), Err(Invalid));
        assert_eq!(unpacked(&[]).unwrap(), []);
        assert_eq!(unpacked(&[0]).unwrap(), [0; 8]);
    }

    #[test]
    fn round_trip_pads_to_words() {
        for n in 0..40usize {
            let src: Vec<u8> = (0..n).map(|i| (i * 37 % 5) as u8).collect();
            let mut back = unpacked(&packed(&src)).unwrap();
            assert_eq!(back.len(), n.div_ceil(8) * 8);
            back.truncate(n);
            assert_eq!(back, src);
        }
    }
}
