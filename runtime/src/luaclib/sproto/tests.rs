//! `sproto.core` against C sproto: every field type's encoding and 0-packing compared
//! byte for byte with golden bytes C sproto produced (golden.txt), the schema listing
//! and defaults, upstream's error texts, and a seeded fuzz of decode and unpack.

use super::schema::Schema;
use crate::lua::testvm::{TestVm, CHECKS};

const GOLDEN: &str = include_str!("golden.txt");
const GOLDEN_DUMP: &str = include_str!("golden_dump.txt");

/// The golden value called `name`, as hex.
fn golden(name: &str) -> &'static str {
    GOLDEN
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no golden {name}"))
}

fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A VM with `core` (sproto.core), `sp` (the golden schema) and `Person`.
fn vm() -> TestVm {
    let prelude = format!(
        r#"{CHECKS}
local function unhex(h) return (h:gsub('%x%x', function(x) return string.char(tonumber(x, 16)) end)) end
local golden = {{}}
for name, value in ([==[{GOLDEN}]==]):gmatch('\n([%w_]+) ([^\n]*)') do golden[name] = value end
local sp = core.newproto(unhex(golden.schema))
local Person = core.querytype(sp, "Person")
"#
    );
    TestVm::new(&prelude, &[]).with_module(c"core", super::open)
}

/// The messages of golden.txt, as the generator wrote them.
const CASES: &str = r#"
local cases = {
  {"empty", {}},
  {"alice", { name = "Alice", id = 13, alive = false }},
  {"ints", { id = 0x7ffe, big = 0x7fff }},
  {"negative", { id = -1, big = -10000000000 }},
  {"big32", { id = 0x7fffffff, big = 0x80000000 }},
  {"double", { weight = 0.01171875 }},
  {"decimal", { height = 1.82 }},
  {"decimalneg", { height = -0.005 }},
  {"binary", { data = "\0\1\2\255" }},
  {"nums4", { nums = {1,2,3,4,5} }},
  {"nums8", { nums = {1, -1, 1<<40, -5} }},
  {"numsempty", { nums = {} }},
  {"bools", { bools = {false, true, false} }},
  {"reals", { reals = {0.01171875, 23, 4} }},
  {"names", { names = {"a", "", "bcd"} }},
  {"phones", { phone = { {number = "123", type = 1}, {number = "456"} } }},
  {"byid", { byid = { [7] = {number = "x", type = 7} } }},
  {"dict", { dict = { k = 5 } }},
  {"rates", { rates = {1.5, -0.001, 2} }},
  {"nested", { name = "Bob", child = { name = "Kid", child = { id = 3 } }, inner = { x = 100000 } }},
  {"everything", { name = "Z", id = 40, email = "z@x", height = 1.5, data = "bin", weight = -2.5, alive = true,
      nums = {7}, bools = {true}, reals = {1}, names = {"n"}, phone = {{number="1"}}, big = 1 << 62 }},
}
"#;

#[test]
fn encodings_and_packing_match_c_sproto() {
    vm().check(&(CASES.to_owned()
        + r#"
for _, c in ipairs(cases) do
  local name, msg = c[1], c[2]
  local enc = core.encode(Person, msg)
  eq(golden["enc_" .. name], hex(enc), "encode " .. name)
  local packed = core.pack(enc)
  eq(golden["pack_" .. name], hex(packed), "pack " .. name)
  local unpacked = core.unpack(packed)
  eq(hex(enc), hex(unpacked:sub(1, #enc)), "unpack " .. name)
  local back, used = core.decode(Person, enc)
  eq(#enc, used, "bytes used " .. name)
  eq(hex(enc), hex(core.encode(Person, back)), "round trip " .. name)
  -- trailing bytes (the padding of unpack) are not the message's
  local _, used2 = core.decode(Person, unpacked)
  eq(#enc, used2, "bytes used after unpack " .. name)
end
eq(golden.packdense, hex(core.pack(string.rep("\138", 30))), "dense")
eq(golden.packlong, hex(core.pack(string.rep("\1\2\3\4\5\6\7\0", 3) .. string.rep("\9", 2100))), "long")
local _, req, resp = core.protocol(sp, "foobar")
eq(req, Person, "request type")
eq(golden.resp, hex(core.encode(resp, { ok = true })), "response")
"#));
}

#[test]
fn decoded_values_keep_their_lua_types() {
    vm().check(
        r#"
local function dec(name) return (core.decode(Person, unhex(golden["enc_" .. name]))) end
local t = dec "decimal"
eq(1.82, t.height, "decimal")
eq("float", math.type(t.height), "decimal type")
t = dec "nums8"
eq(4, #t.nums, "n") eq(1 << 40, t.nums[3], "wide") eq(-5, t.nums[4], "negative")
t = dec "byid"
eq("x", t.byid[7].number, "keyed by main index")
t = dec "dict"
eq(5, t.dict.k, "map")
t = dec "numsempty"
eq(0, #t.nums, "empty array is a table")
t = dec "big32"
eq(0x80000000, t.big, "big") eq(0x7fffffff, t.id, "id")
t = dec "double"
eq(0.01171875, t.weight, "double")
t = dec "nested"
eq(3, t.child.child.id, "nested")
eq(100000, t.inner.x, "inner")
-- decode into a given table, as sproto.lua's host:dispatch does
local into = { keep = 1 }
local r = core.decode(Person, unhex(golden.enc_alice), into)
eq(into, r, "given table") eq(1, into.keep, "kept") eq("Alice", into.name, "set")
-- a nil type (a protocol without content) decodes to nothing and encodes nil only
eq(0, select('#', core.decode(nil, "")), "nil type decodes to nothing")
eq("", core.encode(nil, nil), "nil type")
fails("nil expected, got table", core.encode, nil, {})
"#,
    );
}

#[test]
fn schema_listing_and_defaults_match_c_sproto() {
    let schema = Schema::parse(&bytes(golden("schema"))).unwrap();
    assert_eq!(schema.dump(), GOLDEN_DUMP);
    vm().check(
        r#"
local function ser(v)
  if type(v) ~= "table" then return math.type(v) and (math.type(v) .. ":" .. tostring(v)) or (type(v) .. ":" .. tostring(v)) end
  local keys = {}
  for k in pairs(v) do keys[#keys+1] = k end
  table.sort(keys)
  local out = {}
  for _, k in ipairs(keys) do out[#out+1] = k .. "=" .. ser(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end
eq(golden.default, ser(core.default(Person)), "default")
local tag, req, resp = core.protocol(sp, "confirm")
eq(3, tag, "tag") eq(nil, req, "no request")
eq("userdata", type(resp), "response nil is a null pointer")
local name, req2, resp2 = core.protocol(sp, 2)
eq("empty", name, "name") eq(nil, req2, "req") eq(nil, resp2, "resp")
eq(0, select('#', core.protocol(sp, 9)), "unknown tag")
eq(0, select('#', core.protocol(sp, "nope")), "unknown name")
eq(0, select('#', core.querytype(sp, "Nope")), "unknown type")
core.saveproto(sp, 15)
eq(sp, core.loadproto(15), "slot")
"#,
    );
}

#[test]
fn errors_are_upstreams() {
    vm().check(
        r#"
fails("Person.id[0] is not an integer (Is a string)", core.encode, Person, { id = "x" })
fails("Person.id[0] is not an integer (Is a number)", core.encode, Person, { id = 1.5 })
fails("Person.alive[0] is not a boolean (Is a number)", core.encode, Person, { alive = 1 })
fails("Person.name[0] is not a string (Is a number)", core.encode, Person, { name = 1 })
fails("Person.nums[2] is not an integer (Is a string)", core.encode, Person, { nums = { 1, "a" } })
fails("Person.nums(1) should be a table or an userdata with metamethods (Is a number)", core.encode, Person, { nums = 3 })
fails("decode error", core.decode, Person, "\1")
fails("Invalid unpack stream", core.unpack, "\255")
fails("Invalid global slot index 16", core.loadproto, 16)
fails("Invalid global slot index -1", core.saveproto, sp, -1)
fails("nil sproto at index 5", core.loadproto, 5)
fails("(Need a sproto object)", core.querytype, nil, "x")
fails("(Need a string or userdata)", core.decode, Person, {})
local deep, t = {}, nil
t = deep
for i = 1, 70 do t.child = {}; t = t.child end
fails("The table is too deep", core.encode, Person, deep)
-- 63 levels below the top are fine
deep, t = {}, nil
t = deep
for i = 1, 63 do t.child = { id = i }; t = t.child end
local back = core.decode(Person, core.encode(Person, deep))
for i = 1, 63 do back = back.child end
eq(63, back.id, "deepest")
-- a bad schema is refused, not crashed on
eq(nil, core.newproto("\1\0\0\0"), "short")
eq(nil, core.newproto(""), "empty")
eq(nil, core.newproto(unhex(golden.schema):sub(1, 40)), "cut")
"#,
    );
}

/// A seeded generator's inputs: random bytes, and golden encodings cut, lengthened and
/// with bytes changed. Nothing may crash; every failure must be upstream's text.
#[test]
fn fuzz_decode_and_unpack() {
    const RUNS: usize = 1_000_000;
    let vm = vm();
    vm.check(&format!(
        r#"
local seeds = {{}}
for name, value in pairs(golden) do
  if name:match "^enc_" or name:match "^pack_" then seeds[#seeds + 1] = unhex(value) end
end
table.sort(seeds)
local state = 0x2545F4914F6CDD1D
local function rand(n)
  state = state ~ (state << 13); state = state ~ (state >> 7); state = state ~ (state << 17)
  return (state >> 1) % n
end
local decode, unpack, char = core.decode, core.unpack, string.char
local decoded, unpacked = 0, 0
for i = 1, {RUNS} do
  local input
  local kind = rand(4)
  if kind == 0 then
    local b = {{}}
    for j = 1, rand(40) do b[j] = rand(256) end
    input = char(table.unpack(b))
  else
    local s = seeds[rand(#seeds) + 1]
    if kind == 1 then
      input = s:sub(1, rand(#s + 1))
    elseif kind == 2 then
      input = s .. char(rand(256), rand(256), rand(256))
    else
      local at = rand(#s) + 1
      input = s:sub(1, at - 1) .. char(rand(256)) .. s:sub(at + 1)
    end
  end
  local ok, err = pcall(decode, Person, input)
  if ok then decoded = decoded + 1
  elseif not (err:find("decode error", 1, true) or err:find("Can't find", 1, true)
      or err:find("too deep", 1, true)) then
    error("decode of " .. hex(input) .. ": " .. err)
  end
  ok, err = pcall(unpack, input)
  if ok then unpacked = unpacked + 1
  elseif not err:find("Invalid unpack stream", 1, true) then
    error("unpack of " .. hex(input) .. ": " .. err)
  end
end
assert(decoded > 0 and decoded < {RUNS}, "decode accepted " .. decoded)
assert(unpacked > 0 and unpacked < {RUNS}, "unpack accepted " .. unpacked)
"#
    ));
}
