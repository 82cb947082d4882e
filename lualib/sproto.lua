-- sproto: schema objects and the RPC host over sproto.core.
--
--   sproto.new(bin) / sproto.parse(text) / sproto.sharenew(core_schema)
--   sp:encode(type, t) / sp:decode(type, bin [, sz]) / sp:pencode / sp:pdecode
--   sp:default(type_or_proto [, "REQUEST" | "RESPONSE"])
--   sp:request_encode / response_encode / request_decode / response_decode
--   sp:host([package]) -> host;  host:dispatch(bin [, sz]);  host:attach(sp2)
--
-- An RPC message is the package header (type = protocol tag, session, ud) followed by
-- the request or response content, 0-packed as a whole.

local core = require "sproto.core"

local sproto = {}
sproto.__index = sproto

local host = {}
host.__index = host

-- schemas made here are freed with their object; shared ones (sharenew) are not
local owned = { __index = sproto, __gc = function(self) core.deleteproto(self.__cobj) end }

local function wrap(cobj, mt)
	local weak = { __mode = "kv" }
	return setmetatable({
		__cobj = cobj,
		__tcache = setmetatable({}, weak),
		__pcache = setmetatable({}, weak),
	}, mt)
end

function sproto.new(bin)
	return wrap(assert(core.newproto(bin)), owned)
end

function sproto.sharenew(cobj)
	return wrap(cobj, sproto)
end

function sproto.parse(text)
	return sproto.new(require("sprotoparser").parse(text))
end

local function typeof(self, name)
	local st = self.__tcache[name]
	if not st then
		st = assert(core.querytype(self.__cobj, name), "type not found")
		self.__tcache[name] = st
	end
	return st
end

-- { name, tag, request, response } of a protocol, by name or tag
local function protocol(self, key)
	local p = self.__pcache[key]
	if p then
		return p
	end
	local found, request, response = core.protocol(self.__cobj, key)
	assert(found, key .. " not found")
	local name, tag = found, key
	if not tonumber(key) then
		name, tag = key, found
	end
	p = { name = name, tag = tag, request = request, response = response }
	self.__pcache[name] = p
	self.__pcache[tag] = p
	return p
end
sproto.queryproto = protocol

function sproto:exist_type(name)
	return self.__tcache[name] ~= nil or core.querytype(self.__cobj, name) ~= nil
end

function sproto:exist_proto(key)
	return self.__pcache[key] ~= nil or core.protocol(self.__cobj, key) ~= nil
end

function sproto:encode(name, t)
	return core.encode(typeof(self, name), t)
end

function sproto:decode(name, ...)
	return core.decode(typeof(self, name), ...)
end

function sproto:pencode(name, t)
	return core.pack(core.encode(typeof(self, name), t))
end

function sproto:pdecode(name, ...)
	return core.decode(typeof(self, name), core.unpack(...))
end

function sproto:request_encode(key, t)
	local p = protocol(self, key)
	return p.request and core.encode(p.request, t) or "", p.tag
end

function sproto:response_encode(key, t)
	local p = protocol(self, key)
	return p.response and core.encode(p.response, t) or ""
end

function sproto:request_decode(key, ...)
	local p = protocol(self, key)
	if p.request then
		return core.decode(p.request, ...), p.name
	end
	return nil, p.name
end

function sproto:response_decode(key, ...)
	local p = protocol(self, key)
	if p.response then
		return core.decode(p.response, ...)
	end
end

sproto.pack = core.pack
sproto.unpack = core.unpack

function sproto:default(name, kind)
	if kind == nil then
		return core.default(typeof(self, name))
	end
	local p = protocol(self, name)
	local st
	if kind == "REQUEST" then
		st = p.request
	elseif kind == "RESPONSE" then
		st = p.response
	else
		error "Invalid type"
	end
	if st then
		return core.default(st)
	end
end

---------------------------------------------------------------------------
-- RPC

-- one header table reused for every message (fields absent from a message are
-- cleared before decoding into it)
local header = {}

local function set_header(type_tag, session, ud)
	header.type, header.session, header.ud = type_tag, session, ud
end

function sproto:host(package)
	return setmetatable({
		__proto = self,
		__package = assert(core.querytype(self.__cobj, package or "package"), "type package not found"),
		__session = {},
	}, host)
end

local function responder(self, response, session)
	return function(args, ud)
		set_header(nil, session, ud)
		local head = core.encode(self.__package, header)
		if response then
			return core.pack(head .. core.encode(response, args))
		end
		return core.pack(head)
	end
end

-- "REQUEST", name, args, respond (nil without a session), ud
-- "RESPONSE", session, args, ud
function host:dispatch(...)
	local bin = core.unpack(...)
	set_header(nil, nil, nil)
	local head, used = core.decode(self.__package, bin, header)
	local body = bin:sub(used + 1)
	if head.type then
		local p = protocol(self.__proto, head.type)
		local args = p.request and core.decode(p.request, body) or nil
		local session = header.session
		if session then
			return "REQUEST", p.name, args, responder(self, p.response, session), head.ud
		end
		return "REQUEST", p.name, args, nil, head.ud
	end
	local session = assert(header.session, "session not found")
	local expect = assert(self.__session[session], "Unknown session")
	self.__session[session] = nil
	if expect == true then
		return "RESPONSE", session, nil, head.ud
	end
	return "RESPONSE", session, core.decode(expect, body), head.ud
end

-- a function(name, args, session, ud) -> packed request for protocols of `sp`
function host:attach(sp)
	return function(name, args, session, ud)
		local p = protocol(sp, name)
		set_header(p.tag, session, ud)
		local head = core.encode(self.__package, header)
		if session then
			self.__session[session] = p.response or true
		end
		if p.request then
			return core.pack(head .. core.encode(p.request, args))
		end
		return core.pack(head)
	end
end

return sproto
