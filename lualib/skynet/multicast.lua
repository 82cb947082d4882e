-- skynet.multicast: publish/subscribe channels, served by the multicastd service.
--
--   local mc = require "skynet.multicast"
--   local ch = mc.new()                         -- a new channel of this node
--   local ch = mc.new { channel = id, dispatch = function(ch, source, ...) end }
--   ch:subscribe()  ch:publish(...)  ch:unsubscribe()  ch:delete()
--
-- A channel id is a number whose low 8 bits are the harbor id of the node that
-- made it. publish packs the message once (conf.pack, default skynet.pack) and
-- hands the payload to multicastd inside a refcounted package
-- (skynet.multicast.core). multicastd delivers that one package to every
-- subscriber of its node as a PTYPE_MULTICAST message whose session is the
-- channel id; each subscriber unpacks it (conf.unpack, default skynet.unpack),
-- runs conf.dispatch and closes the package, and the last close frees it. So a
-- message is never copied per subscriber, only an 8-byte cell.
local skynet = require "skynet"
local mc = require "skynet.multicast.core"

local multicastd

-- channel id -> the channel object subscribed to it in this service
local subscribed = {}

local channel = {}
local channel_meta = {
	__index = channel,
	__tostring = function(self)
		return string.format("[Multicast:%x]", self.channel)
	end,
	-- a forgotten channel object leaves its subscription behind it
	__gc = function(self)
		self:unsubscribe()
	end,
}

local multicast = {}

-- new([conf]): conf.channel joins an existing channel, otherwise multicastd
-- makes one; conf.pack, conf.unpack and conf.dispatch as described above.
function multicast.new(conf)
	assert(multicastd, "Init first")
	conf = conf or {}
	local self = {
		channel = conf.channel or skynet.call(multicastd, "lua", "NEW"),
		__pack = conf.pack or skynet.pack,
		__unpack = conf.unpack or skynet.unpack,
		__dispatch = conf.dispatch,
	}
	return setmetatable(self, channel_meta)
end

function channel:publish(...)
	local id = assert(self.channel)
	skynet.call(multicastd, "lua", "PUB", id, mc.pack(self.__pack(...)))
end

function channel:subscribe()
	local id = assert(self.channel)
	if self.__subscribe then
		return
	end
	skynet.call(multicastd, "lua", "SUB", id)
	self.__subscribe = true
	subscribed[id] = self
end

function channel:unsubscribe()
	if not self.__subscribe then
		return
	end
	local id = assert(self.channel)
	skynet.send(multicastd, "lua", "USUB", id)
	self.__subscribe = nil
	subscribed[id] = nil
end

-- Deletes the channel for every subscriber on every node.
function channel:delete()
	local id = assert(self.channel)
	skynet.send(multicastd, "lua", "DEL", id)
	self.channel = nil
	self.__subscribe = nil
end

local function run_dispatch(self, source, msg, sz)
	return self.__dispatch(self, source, self.__unpack(msg, sz))
end

-- A PTYPE_MULTICAST message: the session is the channel id, the payload the
-- package's cell. The package is closed whatever happens to the message: it
-- may arrive after an unsubscribe that crossed it, and dispatch may fail.
local function deliver(id, source, package, msg, sz)
	skynet.ignoreret()
	local self = subscribed[id]
	if self == nil then
		mc.close(package)
		return
	end
	local ok, err = pcall(run_dispatch, self, source, msg, sz)
	mc.close(package)
	if not ok then
		error(err)
	end
end

skynet.init(function()
	multicastd = skynet.uniqueservice "multicastd"
	skynet.register_protocol {
		name = "multicast",
		id = skynet.PTYPE_MULTICAST,
		unpack = mc.unpack,
		dispatch = deliver,
	}
end)

return multicast
