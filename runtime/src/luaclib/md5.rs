//! `md5.core`, the native half of `lualib/md5.lua` (keplerproject md5): `sum` (raw
//! 16-byte MD5), `exor` (byte-wise XOR of two equal-length strings) and the MD5
//! cipher-feedback stream cipher `crypt` / `decrypt`. `md5.lua` adds `sumhexa` and
//! `hmacmd5` in Lua on top of `sum`.
//!
//! The digest comes from the `md-5` crate; the stream cipher keeps the historical format:
//! the ciphertext starts with one byte giving the seed length, then the seed, then the
//! message XORed with a key stream where each 16-byte block is the MD5 of
//! `seed-block ‖ key`, the seed block being replaced by the previous ciphertext block.

use crate::lua::raise::{arg_bytes, lua_fn, raise, try_push_bytes, Raise};
use crate::lua::stack::{check_bytes, new_lib, push_bytes};
use md5::{Digest, Md5};
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// Cipher block size (one MD5 digest).
const BLOCK: usize = 16;
/// Longest key `crypt` / `decrypt` accept.
const MAX_KEY: usize = 256;

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// The working block: `seed` zero-padded to 16 bytes, then `key`.
fn init_block(seed: &[u8], key: &[u8]) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK + key.len()];
    block[..seed.len()].copy_from_slice(seed);
    block[BLOCK..].copy_from_slice(key);
    block
}

/// Runs the cipher-feedback stream over `input`. When `encrypt`, the feedback is the
/// output; otherwise it is the input (so decryption inverts encryption).
fn stream(input: &[u8], mut block: Vec<u8>, encrypt: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for chunk in input.chunks(BLOCK) {
        let pad = md5(&block);
        let start = out.len();
        out.extend(chunk.iter().zip(pad.iter()).map(|(a, b)| a ^ b));
        let feedback = if encrypt { &out[start..] } else { chunk };
        block[..feedback.len()].copy_from_slice(feedback);
    }
    out
}

/// Encrypts `msg` with `key` and a seed of at most 16 bytes.
fn encrypt(msg: &[u8], key: &[u8], seed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + seed.len() + msg.len());
    out.push(seed.len() as u8);
    out.extend_from_slice(seed);
    out.extend(stream(msg, init_block(seed, key), true));
    out
}

/// Decrypts the output of [`encrypt`]; `None` when the seed header is malformed.
fn decrypt(cipher: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    let (&lseed, rest) = cipher.split_first()?;
    let lseed = usize::from(lseed);
    if lseed > BLOCK || rest.len() < lseed {
        return None;
    }
    let (seed, body) = rest.split_at(lseed);
    Some(stream(body, init_block(seed, key), false))
}

/// The key argument (#2) of `crypt` / `decrypt`, length-checked.
///
/// # Safety
/// `l` must be a valid Lua state.
unsafe fn check_key<'a>(l: *mut lua_State) -> Result<&'a [u8], Raise> {
    // SAFETY: forwarded.
    let key = unsafe { arg_bytes(l, 2) }?;
    if key.len() > MAX_KEY {
        return Err(raise!("key too long (> {MAX_KEY})"));
    }
    Ok(key)
}

unsafe extern "C-unwind" fn l_sum(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    unsafe {
        let text = check_bytes(l, 1);
        push_bytes(l, &md5(text));
    }
    1
}

unsafe fn l_exor(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the strings stay on the stack while they are read; the result is owned
    // here, so it is pushed without raising.
    unsafe {
        let a = arg_bytes(l, 1)?;
        let b = arg_bytes(l, 2)?;
        if a.len() != b.len() {
            return Err(Raise::arg(2, format_args!("lengths must be equal")));
        }
        let out: Vec<u8> = a.iter().zip(b).map(|(x, y)| x ^ y).collect();
        try_push_bytes(l, &out)?;
    }
    Ok(1)
}

unsafe fn l_crypt(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the strings stay on the stack while they are read; the result is owned
    // here, so it is pushed without raising.
    unsafe {
        let msg = arg_bytes(l, 1)?;
        if ffi::lua_type(l, 3) == ffi::LUA_TNONE {
            let now = libc::time(std::ptr::null_mut());
            push_bytes(l, &now.to_ne_bytes());
        }
        let seed = arg_bytes(l, 3)?;
        if seed.len() > BLOCK {
            return Err(raise!("seed too long (> {BLOCK})"));
        }
        let key = check_key(l)?;
        try_push_bytes(l, &encrypt(msg, key, seed))?;
    }
    Ok(1)
}

unsafe fn l_decrypt(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the strings stay on the stack while they are read; the result is owned
    // here, so it is pushed without raising.
    unsafe {
        let cipher = arg_bytes(l, 1)?;
        let lseed = cipher.first().map_or(0, |&b| usize::from(b));
        if cipher.len() < lseed + 1 || lseed > BLOCK {
            return Err(Raise::arg(1, format_args!("invalid cyphered string")));
        }
        let key = check_key(l)?;
        match decrypt(cipher, key) {
            Some(plain) => try_push_bytes(l, &plain)?,
            None => ffi::lua_pushnil(l),
        }
    }
    Ok(1)
}

/// `require "md5.core"`: the function table plus the historical `_VERSION` fields.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state; the names are NUL-terminated literals.
    unsafe {
        new_lib(
            l,
            &[
                (c"sum", l_sum),
                (c"exor", lua_fn!(l_exor)),
                (c"crypt", lua_fn!(l_crypt)),
                (c"decrypt", lua_fn!(l_decrypt)),
            ],
        );
        for (k, v) in [
            (c"_COPYRIGHT", "Copyright (C) 2003-2013 PUC-Rio"),
            (c"_DESCRIPTION", "Basic cryptographic facilities"),
            (c"_VERSION", "MD5 1.2"),
        ] {
            push_bytes(l, v.as_bytes());
            ffi::lua_setfield(l, -2, k.as_ptr());
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::{TestVm, CHECKS};

    fn vm() -> TestVm {
        TestVm::new(CHECKS, &[]).with_module(c"md5", open)
    }

    #[test]
    fn sum_vectors() {
        vm().check(
            r#"
            eq('d41d8cd98f00b204e9800998ecf8427e', hex(md5.sum('')))
            eq('900150983cd24fb0d6963f7d28e17f72', hex(md5.sum('abc')))
            eq('9e107d9d372bb6826bd81d3542a419d6',
               hex(md5.sum('The quick brown fox jumps over the lazy dog')))
            eq(16, #md5.sum(string.rep('x', 1000)))
            eq(md5.sum('123'), md5.sum(123), 'number argument')
            fails('bad argument #1', md5.sum)
            eq('MD5 1.2', md5._VERSION)
            "#,
        );
    }

    #[test]
    fn hmac_from_sum_and_exor() {
        // RFC 2104 test vector, HMAC built the way md5.lua's hmacmd5 uses `sum`.
        vm().check(
            r#"
            local key = 'Jefe' .. string.rep('\0', 60)
            local ipad, opad = string.rep('\x36', 64), string.rep('\x5c', 64)
            local inner = md5.sum(md5.exor(key, ipad) .. 'what do ya want for nothing?')
            eq('750c783e6ab0b503eaa86e310a5db738', hex(md5.sum(md5.exor(key, opad) .. inner)))
            "#,
        );
    }

    #[test]
    fn exor_rules() {
        vm().check(
            r#"
            eq('\3\3', md5.exor('\1\2', '\2\1'))
            eq('', md5.exor('', ''))
            fails('lengths must be equal', md5.exor, 'a', 'ab')
            "#,
        );
    }

    #[test]
    fn crypt_round_trip() {
        vm().check(
            r#"
            for n = 0, 70 do
              local msg = string.rep('m', n)
              local c = md5.crypt(msg, 'key', 'seed')
              eq(1 + 4 + n, #c, 'length')
              eq('\4seed', c:sub(1, 5))
              eq(msg, md5.decrypt(c, 'key'), 'round trip ' .. n)
              assert(n == 0 or md5.decrypt(c, 'other') ~= msg)
            end
            -- the first block is md5(seed padded ‖ key) xor message
            local c = md5.crypt('\0\0\0\0', 'k', 's')
            eq(md5.sum('s' .. string.rep('\0', 15) .. 'k'):sub(1, 4), c:sub(3))
            local t = md5.crypt('hello', 'key')
            eq('hello', md5.decrypt(t, 'key'))
            fails('seed too long', md5.crypt, 'x', 'k', string.rep('s', 17))
            fails('key too long', md5.crypt, 'x', string.rep('k', 257), 's')
            fails('invalid cyphered string', md5.decrypt, '', 'k')
            fails('invalid cyphered string', md5.decrypt, '\5ab', 'k')
            fails('invalid cyphered string', md5.decrypt, '\17' .. string.rep('x', 20), 'k')
            "#,
        );
    }
}
