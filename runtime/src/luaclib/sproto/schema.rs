//! A sproto schema: the binary bundle `sprotoparser` produces, read into types, fields
//! and protocols (sproto's README, "A schema text can be self-described").
//!
//! The bundle is itself a sproto message of type `.group { type 0 : *type  protocol 1 :
//! *protocol }`, so reading it walks sproto structs ([`records`]) the same way the
//! message decoder does. What upstream accepts is accepted here, field by field; what
//! upstream would accept and then crash on (a map whose value type has fewer than two
//! fields, a struct index past the types) is refused, so `newproto` returns nothing.
//!
//! A [`Schema`] never changes once built. Lua holds it, and each of its types, as light
//! userdata; a type finds its schema through `owner`, which [`Schema::boxed`] sets once
//! the schema has its final address.

use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Field kinds, as the wire and the bundle number them.
pub const INTEGER: u8 = 0;
pub const BOOLEAN: u8 = 1;
pub const STRING: u8 = 2;
pub const DOUBLE: u8 = 3;
pub const STRUCT: u8 = 4;

/// `extra` of a string field that holds binary data.
const BINARY: i32 = 1;

pub struct Field {
    pub name: CString,
    pub tag: i32,
    pub kind: u8,
    pub array: bool,
    /// The struct type (an index into [`Schema::types`]) when `kind` is [`STRUCT`].
    pub subtype: usize,
    /// The main index tag of an array of structs, or -1.
    pub key: i32,
    /// An array of two-field structs read and written as a Lua map.
    pub map: bool,
    /// Integer: the decimal multiplier (0 for a plain integer). String: 1 for binary.
    pub extra: i32,
    /// The field's position among all fields of the schema, counted from 1: where a
    /// VM's table of field-name strings has its name ([`super::names`]).
    pub slot: i32,
}

pub struct Type {
    pub name: CString,
    /// In ascending tag order.
    pub fields: Box<[Field]>,
    /// The tag of `fields[0]` when the tags are contiguous, else -1 (find by search).
    base: i32,
    /// Field records a message of this type can need: one per field plus one per gap.
    pub maxn: usize,
    /// The schema this type belongs to.
    pub owner: *const Schema,
}

pub struct Protocol {
    pub name: CString,
    pub tag: i32,
    pub request: Option<usize>,
    pub response: Option<usize>,
    /// `response nil`: the protocol answers, with no content.
    pub confirm: bool,
}

pub struct Schema {
    /// Unique in the process (a schema freed and another made at its address differ).
    pub id: u64,
    pub types: Box<[Type]>,
    /// In the bundle's order, which the parser sorts by tag.
    pub protocols: Box<[Protocol]>,
}

/// Little-endian 16-bit word at `at`.
pub fn word(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// Little-endian 32-bit word at `at`.
pub fn dword(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// One field record of a sproto struct.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// A small value stored in the record: `record / 2 - 1`.
    Small(i32),
    /// A value in the data part.
    Data(&'a [u8]),
}

struct Record<'a> {
    /// Position among the records, skips included.
    index: usize,
    tag: i32,
    value: Value<'a>,
}

/// The records of the struct `body`, skips left out. Like upstream, the body must hold
/// at least four bytes and every data value must fit.
fn records(body: &[u8]) -> Option<Vec<Record<'_>>> {
    if body.len() < 4 {
        return None;
    }
    let n = usize::from(word(body, 0)?);
    let mut data = body.get(2 + 2 * n..)?;
    let mut out = Vec::with_capacity(n);
    let mut tag = -1i32;
    for index in 0..n {
        let v = i32::from(word(body, 2 + 2 * index)?);
        tag += 1;
        if v & 1 != 0 {
            tag += v / 2;
            continue;
        }
        let value = if v == 0 {
            let (chunk, rest) = split_chunk(data)?;
            data = rest;
            Value::Data(chunk)
        } else {
            Value::Small(v / 2 - 1)
        };
        out.push(Record { index, tag, value });
    }
    Some(out)
}

/// A length-prefixed chunk and what follows it.
fn split_chunk(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = dword(bytes, 0)? as usize;
    let rest = &bytes[4..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The elements of an array of structs (each one length-prefixed).
fn elements(mut array: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !array.is_empty() {
        let (chunk, rest) = split_chunk(array)?;
        out.push(chunk);
        array = rest;
    }
    Some(out)
}

/// A name as C code sees it: up to its first NUL.
fn name(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap_or_default()
}

/// `base ^ n` in C `int` arithmetic (it wraps where upstream's would overflow).
fn power(base: i32, n: i32) -> i32 {
    if n == 0 {
        return 1;
    }
    let r = power(base.wrapping_mul(base), n / 2);
    if n & 1 != 0 {
        r.wrapping_mul(base)
    } else {
        r
    }
}

/// `.field { name 0 : string  buildin 1 : integer  type 2 : integer  tag 3 : integer
/// array 4 : boolean  key 5 : integer  map 6 : boolean }`
fn read_field(body: &[u8], ntypes: usize) -> Option<Field> {
    let mut f = Field {
        name: CString::default(),
        tag: -1,
        kind: u8::MAX,
        array: false,
        subtype: 0,
        key: -1,
        map: false,
        extra: 0,
        slot: 0,
    };
    let mut named = false;
    let mut kind = -1i32;
    for r in records(body)? {
        let v = match (r.tag, r.value) {
            (0, Value::Data(bytes)) => {
                f.name = name(bytes);
                named = true;
                continue;
            }
            (_, Value::Small(v)) if r.tag != 0 => v,
            _ => return None,
        };
        match r.tag {
            1 if v < i32::from(STRUCT) => kind = v,
            1 => return None,
            2 if kind == i32::from(INTEGER) => f.extra = power(10, v),
            2 if kind == i32::from(STRING) => f.extra = v,
            2 => {
                if v as usize >= ntypes || kind >= 0 {
                    return None;
                }
                kind = i32::from(STRUCT);
                f.subtype = v as usize;
            }
            3 => f.tag = v,
            4 => f.array = v != 0,
            5 => f.key = v,
            6 => f.map = v != 0,
            _ => return None,
        }
    }
    if f.tag < 0 || kind < 0 || !named {
        return None;
    }
    f.kind = kind as u8;
    Some(f)
}

/// `.type { name 0 : string  fields 1 : *field }`
fn read_type(body: &[u8], ntypes: usize) -> Option<Type> {
    let recs = records(body)?;
    if recs.is_empty() || recs.len() > 2 || recs.iter().any(|r| r.index >= recs.len()) {
        return None;
    }
    let mut chunks = recs.iter().map(|r| match r.value {
        Value::Data(bytes) => Some(bytes),
        Value::Small(_) => None,
    });
    let type_name = name(chunks.next()??);
    let fields = match chunks.next() {
        Some(list) => elements(list?)?
            .into_iter()
            .map(|f| read_field(f, ntypes))
            .collect::<Option<Vec<_>>>()?,
        None => Vec::new(),
    };
    let mut maxn = fields.len();
    let mut last = -1;
    for f in &fields {
        if f.tag <= last {
            return None;
        }
        if f.tag > last + 1 {
            maxn += 1;
        }
        last = f.tag;
    }
    let base = match (fields.first(), fields.last()) {
        (Some(first), Some(last)) if (last.tag - first.tag + 1) as usize == fields.len() => {
            first.tag
        }
        (Some(_), _) => -1,
        (None, _) => 0,
    };
    Some(Type {
        name: type_name,
        fields: fields.into_boxed_slice(),
        base,
        maxn,
        owner: std::ptr::null(),
    })
}

/// `.protocol { name 0 : string  tag 1 : integer  request 2 : integer  response 3 :
/// integer  confirm 4 : boolean }`. As upstream, a record's meaning is its position,
/// not its tag.
fn read_protocol(body: &[u8], ntypes: usize) -> Option<Protocol> {
    let mut p = Protocol {
        name: CString::default(),
        tag: -1,
        request: None,
        response: None,
        confirm: false,
    };
    let mut named = false;
    let type_index = |v: i32| (v >= 0 && (v as usize) < ntypes).then_some(v as usize);
    for r in records(body)? {
        match (r.index, r.value) {
            (0, Value::Data(bytes)) => {
                p.name = name(bytes);
                named = true;
            }
            (1, Value::Small(v)) if v >= 0 => p.tag = v,
            (2, Value::Small(v)) => p.request = Some(type_index(v)?),
            (3, Value::Small(v)) => p.response = Some(type_index(v)?),
            (4, Value::Small(v)) => p.confirm = v != 0,
            (4, Value::Data(_)) => p.confirm = true,
            _ => return None,
        }
    }
    (named && p.tag >= 0).then_some(p)
}

/// Upstream dereferences a map's first two fields without checking them, and reads a
/// map without a key field from a stack slot that is gone; here such a schema is
/// refused (the parser never makes one).
fn consistent(types: &[Type]) -> bool {
    types.iter().flat_map(|t| t.fields.iter()).all(|f| {
        !f.map
            || f.kind == STRUCT
                && f.array
                && f.key >= 0
                && types.get(f.subtype).is_some_and(|st| st.fields.len() >= 2)
    })
}

impl Schema {
    /// Reads a bundle; `None` where upstream's `sproto_create` fails (and where it would
    /// build a schema it then crashes on).
    pub fn parse(bundle: &[u8]) -> Option<Schema> {
        let recs = records(bundle)?;
        if recs.len() > 2 || recs.iter().any(|r| r.index >= recs.len()) {
            return None;
        }
        let mut lists = Vec::with_capacity(2);
        for r in &recs {
            match r.value {
                Value::Data(bytes) => lists.push(elements(bytes)?),
                Value::Small(_) => return None,
            }
        }
        let mut lists = lists.into_iter();
        let type_bodies = lists.next().unwrap_or_default();
        let protocol_bodies = lists.next().unwrap_or_default();
        let ntypes = type_bodies.len();
        let types = type_bodies
            .into_iter()
            .map(|b| read_type(b, ntypes))
            .collect::<Option<Vec<_>>>()?;
        if !consistent(&types) {
            return None;
        }
        let protocols = protocol_bodies
            .into_iter()
            .map(|b| read_protocol(b, ntypes))
            .collect::<Option<Vec<_>>>()?;
        static IDS: AtomicU64 = AtomicU64::new(1);
        Some(Schema {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            types: types.into_boxed_slice(),
            protocols: protocols.into_boxed_slice(),
        })
    }

    /// Moves the schema to the heap and points each type at it.
    pub fn boxed(self) -> Box<Schema> {
        let mut b = Box::new(self);
        let owner: *const Schema = &*b;
        let mut slot = 0;
        for t in b.types.iter_mut() {
            t.owner = owner;
            for f in t.fields.iter_mut() {
                slot += 1;
                f.slot = slot;
            }
        }
        b
    }

    /// Every field, in slot order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.types.iter().flat_map(|t| t.fields.iter())
    }

    /// The first type called `name`.
    pub fn find_type(&self, name: &[u8]) -> Option<&Type> {
        self.types.iter().find(|t| t.name.as_bytes() == name)
    }

    /// The first protocol called `name`.
    pub fn find_protocol(&self, name: &[u8]) -> Option<&Protocol> {
        self.protocols.iter().find(|p| p.name.as_bytes() == name)
    }

    /// The protocol with `tag`, by bisection (the bundle sorts protocols by tag).
    pub fn protocol_by_tag(&self, tag: i32) -> Option<&Protocol> {
        let (mut lo, mut hi) = (0, self.protocols.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let p = &self.protocols[mid];
            match tag.cmp(&p.tag) {
                std::cmp::Ordering::Equal => return Some(p),
                std::cmp::Ordering::Greater => lo = mid + 1,
                std::cmp::Ordering::Less => hi = mid,
            }
        }
        None
    }

    /// The listing `sproto.core.dumpproto` prints.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "=== {} types ===", self.types.len());
        for t in self.types.iter() {
            let _ = writeln!(out, "{}", t.name.to_string_lossy());
            for f in t.fields.iter() {
                let _ = write!(
                    out,
                    "\t{} ({}) {}{}",
                    f.name.to_string_lossy(),
                    f.tag,
                    if f.array { "*" } else { "" },
                    self.kind_name(f)
                );
                if f.kind == INTEGER && f.extra > 0 {
                    let _ = write!(out, "({})", f.extra);
                }
                if f.key >= 0 {
                    let _ = write!(out, " key[{}]", f.key);
                    if f.map {
                        let value_tag = self.types[f.subtype].fields[1].tag;
                        let _ = write!(out, " value[{value_tag}]");
                    }
                }
                out.push('\n');
            }
        }
        let _ = writeln!(out, "=== {} protocol ===", self.protocols.len());
        for p in self.protocols.iter() {
            let type_name = |i: usize| self.types[i].name.to_string_lossy();
            let request = p.request.map_or("(null)".into(), type_name);
            let _ = write!(
                out,
                "\t{} ({}) request:{request}",
                p.name.to_string_lossy(),
                p.tag
            );
            if let Some(r) = p.response {
                let _ = write!(out, " response:{}", type_name(r));
            } else if p.confirm {
                out.push_str(" response nil");
            }
            out.push('\n');
        }
        out
    }

    fn kind_name(&self, f: &Field) -> std::borrow::Cow<'_, str> {
        match f.kind {
            INTEGER if f.extra != 0 => "decimal".into(),
            INTEGER => "integer".into(),
            BOOLEAN => "boolean".into(),
            STRING if f.extra == BINARY => "binary".into(),
            STRING => "string".into(),
            DOUBLE => "double".into(),
            _ => self.types[f.subtype].name.to_string_lossy(),
        }
    }
}

impl Type {
    /// The field with `tag`.
    pub fn field(&self, tag: i32) -> Option<&Field> {
        if self.base >= 0 {
            let i = tag.checked_sub(self.base)?;
            return usize::try_from(i).ok().and_then(|i| self.fields.get(i));
        }
        let i = self.fields.binary_search_by_key(&tag, |f| f.tag).ok()?;
        Some(&self.fields[i])
    }
}
