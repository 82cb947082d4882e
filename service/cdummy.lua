-- cdummy (.cslave on a harbor 0 node): the single-node stand-in for cslave.
-- It owns the global name table, starts the native `harbor` router and tells
-- it about every global name, so sends to a global name work without any
-- other node. Requests come from lualib/skynet/harbor.lua.
local skynet = require "skynet"
require "skynet.manager"

-- global name -> handle
local names = {}
-- global name -> array of response closures waiting for it to be registered
local waiting = {}
local router

-- Both directions between us and the native router carry raw text:
-- "N name" control messages go out, "Q name" notifications come in.
local function passthrough(...)
	return ...
end
for name, id in pairs { harbor = skynet.PTYPE_HARBOR, text = skynet.PTYPE_TEXT } do
	skynet.register_protocol { name = name, id = id, pack = passthrough, unpack = skynet.tostring }
end

local request = {}

function request.REGISTER(name, handle)
	assert(names[name] == nil)
	names[name] = handle
	local queue = waiting[name]
	if queue then
		waiting[name] = nil
		for _, reply in ipairs(queue) do
			reply(true, handle)
		end
	end
	-- The router binds the name to the source of this message.
	skynet.redirect(router, handle, "harbor", 0, "N " .. name)
end

-- Answers at once for local (".name") and known global names; an unknown
-- global name is answered when somebody registers it.
function request.QUERYNAME(name)
	if string.sub(name, 1, 1) == "." then
		skynet.ret(skynet.pack(skynet.localname(name)))
		return
	end
	local handle = names[name]
	if handle then
		skynet.ret(skynet.pack(handle))
		return
	end
	local queue = waiting[name]
	if not queue then
		queue = {}
		waiting[name] = queue
	end
	table.insert(queue, skynet.response())
end

-- There is no other harbor to wait for.
function request.LINK()
	skynet.ret()
end

-- Never answered: there is nothing to connect to.
function request.CONNECT()
	skynet.error("Can't connect to other harbor in single node mode")
end

skynet.start(function()
	local harbor_id = tonumber(skynet.getenv "harbor")
	assert(harbor_id == 0)
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = assert(request[cmd])
		f(...)
	end)
	-- "Q name" needs no action: the router keeps the message queued until
	-- the name is registered.
	skynet.dispatch("text", function() end)

	router = assert(skynet.launch("harbor", harbor_id, skynet.self()))
end)
