-- launcher (.launcher): creates services on behalf of skynet.newservice and
-- answers the caller only once the new service reports LAUNCHOK or ERROR.
-- It also keeps the table of live services used by the debug console
-- (LIST/STAT/MEM/GC/KILL) and accepts the text protocol native services and
-- snlua use to report their start-up result.
local skynet = require "skynet"
local core = require "skynet.core"
require "skynet.manager"

-- handle -> "module args" command line, for every service started here
local services = {}
-- handle -> response closure of the newservice call still waiting for it
local pending = {}
-- handle -> session of that newservice call (service_mgr's LIST asks for it)
local pending_session = {}

-- Returned by a command that answers later (or never) instead of right now.
local NO_REPLY = {}

local command = {}

local function forget_pending(handle)
	pending[handle] = nil
	pending_session[handle] = nil
end

-- Ask every known service the same debug question, wait at most `ti`
-- (centiseconds, nil = forever) and describe each one with `describe`.
-- A failed call is described as "ERROR", an unanswered one as "TIMEOUT".
local function survey(ti, describe, ...)
	local unanswered = {}
	local batch = skynet.request()
	for handle in pairs(services) do
		local req = { handle, "debug", ... }
		batch:add(req)
		unanswered[req] = handle
	end
	local report = {}
	for req, resp in batch:select(ti) do
		local handle = req[1]
		local answer = "ERROR"
		if resp then
			answer = resp[1]
		end
		report[skynet.address(handle)] = describe(answer, handle)
		unanswered[req] = nil
	end
	for _, handle in pairs(unanswered) do
		report[skynet.address(handle)] = describe("TIMEOUT", handle)
	end
	return report
end

function command.LIST()
	local list = {}
	for handle, cmdline in pairs(services) do
		list[skynet.address(handle)] = cmdline
	end
	return list
end

function command.STAT(_, ti)
	return survey(ti, function(stat) return stat end, "STAT")
end

function command.MEM(_, ti)
	return survey(ti, function(kb, handle)
		if type(kb) == "string" then
			return string.format("%s (%s)", kb, services[handle])
		end
		return string.format("%.2f Kb (%s)", kb, services[handle])
	end, "MEM")
end

function command.GC(source, ti)
	for handle in pairs(services) do
		skynet.send(handle, "debug", "GC")
	end
	return command.MEM(source, ti)
end

function command.KILL(_, handle)
	skynet.kill(handle)
	local killed = { [skynet.address(handle)] = tostring(services[handle]) }
	services[handle] = nil
	return killed
end

-- Sent by a service that exits (killed = false) or by skynet.kill (killed =
-- true). A newservice caller still waiting gets nil for a service that quit
-- by itself during start-up, and an error for one that was killed.
function command.REMOVE(_, handle, killed)
	services[handle] = nil
	local reply = pending[handle]
	if reply then
		reply(not killed)
		forget_pending(handle)
	end
	-- no reply: the sender may already be gone
	return NO_REPLY
end

local function launch(module, ...)
	local args = table.concat({ ... }, " ")
	local handle = skynet.launch(module, args)
	local session = skynet.context()
	local reply = skynet.response()
	if not handle then
		reply(false)
		return
	end
	services[handle] = module .. " " .. args
	pending[handle] = reply
	pending_session[handle] = session
	return handle
end

function command.LAUNCH(_, module, ...)
	launch(module, ...)
	return NO_REPLY
end

-- Like LAUNCH, but also turns on the per-service message log.
function command.LOGLAUNCH(_, module, ...)
	local handle = launch(module, ...)
	if handle then
		core.command("LOGON", skynet.address(handle))
	end
	return NO_REPLY
end

-- The new service failed to start (skynet.init_service, or snlua's loader).
function command.ERROR(handle)
	local reply = pending[handle]
	if reply then
		reply(false)
		forget_pending(handle)
	end
	services[handle] = nil
	return NO_REPLY
end

-- The new service finished its start function.
function command.LAUNCHOK(handle)
	local reply = pending[handle]
	if reply then
		reply(true, handle)
		forget_pending(handle)
	end
	return NO_REPLY
end

-- Which service is being started for the newservice call with this session?
function command.QUERY(_, session)
	for handle, s in pairs(pending_session) do
		if s == session then
			return handle
		end
	end
end

-- Native code (snlua's loader failure path, C services) reports with plain
-- text: an empty message means started, "ERROR" means failed.
skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	unpack = skynet.tostring,
	dispatch = function(_, source, text)
		if text == "" then
			command.LAUNCHOK(source)
		elseif text == "ERROR" then
			command.ERROR(source)
		else
			error("Invalid text command " .. text)
		end
	end,
}

skynet.dispatch("lua", function(_, source, cmd, ...)
	local f = command[string.upper(cmd)]
	if not f then
		skynet.ret(skynet.pack { "Unknown command" })
		return
	end
	local result = f(source, ...)
	if result ~= NO_REPLY then
		skynet.ret(skynet.pack(result))
	end
end)

skynet.start(function() end)
