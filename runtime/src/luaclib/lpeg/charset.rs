//! A set of bytes as a 256-bit bitmap: the one representation the tree, the compiler's
//! first-set analysis and the matcher's set instructions share.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Charset(pub [u64; 4]);

impl Charset {
    pub const EMPTY: Charset = Charset([0; 4]);
    pub const FULL: Charset = Charset([u64::MAX; 4]);

    pub fn single(c: u8) -> Charset {
        let mut s = Charset::EMPTY;
        s.add(c);
        s
    }

    pub fn range(lo: u8, hi: u8) -> Charset {
        let mut s = Charset::EMPTY;
        for c in lo..=hi {
            s.add(c);
        }
        s
    }

    #[inline(always)]
    pub fn has(&self, c: u8) -> bool {
        self.0[(c >> 6) as usize] & (1u64 << (c & 63)) != 0
    }

    pub fn add(&mut self, c: u8) {
        self.0[(c >> 6) as usize] |= 1u64 << (c & 63);
    }

    pub fn union(&self, o: &Charset) -> Charset {
        Charset(std::array::from_fn(|i| self.0[i] | o.0[i]))
    }

    pub fn inter(&self, o: &Charset) -> Charset {
        Charset(std::array::from_fn(|i| self.0[i] & o.0[i]))
    }

    pub fn minus(&self, o: &Charset) -> Charset {
        Charset(std::array::from_fn(|i| self.0[i] & !o.0[i]))
    }

    pub fn complement(&self) -> Charset {
        Charset(std::array::from_fn(|i| !self.0[i]))
    }

    pub fn disjoint(&self, o: &Charset) -> bool {
        self.inter(o) == Charset::EMPTY
    }

    pub fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// The only byte of a one-byte set.
    pub fn only(&self) -> Option<u8> {
        if self.count() != 1 {
            return None;
        }
        (0..=255u8).find(|&c| self.has(c))
    }
}
