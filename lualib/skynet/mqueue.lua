-- skynet/mqueue.lua: deprecated message queue over the "queue" protocol
-- (PTYPE_QUEUE). Messages are handled one at a time, in arrival order, by a
-- single worker task; prefer skynet.queue for new code.
--
-- mqueue.register(f)     f(...) handles each message; for calls its results
--                        (after a success flag) are the reply
-- mqueue.call(addr, ...) / mqueue.send(addr, ...) / mqueue.size()

local skynet = require "skynet"
local core = require "skynet.core"

local mqueue = {}
local inbox = {}
local idle_worker	-- the worker task while it waits for messages
local registered = false

skynet.register_protocol {
	name = "queue",
	id = skynet.PTYPE_QUEUE,
	pack = skynet.pack,
	unpack = skynet.unpack,
	dispatch = function(session, source, ...)
		-- the worker answers later with the raw session
		skynet.ignoreret()
		inbox[#inbox + 1] = { session = session, source = source, args = table.pack(...) }
		if idle_worker then
			skynet.wakeup(idle_worker)
			idle_worker = nil
		end
	end,
}

local function worker(f)
	while true do
		local msg = table.remove(inbox, 1)
		if msg == nil then
			idle_worker = coroutine.running()
			skynet.wait()
		else
			local args = msg.args
			local results = table.pack(pcall(f, table.unpack(args, 1, args.n)))
			if msg.session ~= 0 then
				core.send(msg.source, skynet.PTYPE_RESPONSE, msg.session,
					skynet.pack(table.unpack(results, 1, results.n)))
			elseif not results[1] then
				-- keep the queue served before reporting the failure
				skynet.fork(worker, f)
				error(string.format("[:%x] send a message to [:%x] throw an error : %s",
					msg.source, skynet.self(), tostring(results[2])))
			elseif results[2] then
				skynet.fork(worker, f)
				error(string.format("[:%x] send a message to [:%x] return something",
					msg.source, skynet.self()))
			end
		end
	end
end

function mqueue.register(f)
	assert(not registered)
	registered = true
	skynet.fork(worker, f)
end

local function unwrap(ok, ...)
	if ok then
		return ...
	end
	error(...)
end

function mqueue.call(addr, ...)
	return unwrap(skynet.call(addr, "queue", ...))
end

function mqueue.send(addr, ...)
	return skynet.send(addr, "queue", ...)
end

function mqueue.size()
	return #inbox
end

return mqueue
